/* Buffered calls that write into the program's memory: a pipe's read() into buf, and
 * fstat() (the preload library's own wrapper when buffered) into st. A watchpoint there
 * must stop where the call returns, and reverse execution go back to where it was made,
 * with the syscall buffer as without it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[16];
    struct stat st;
    int p[2];
    int file = argc > 1 ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
    if (file < 0 || pipe(p) != 0)
        return 1;
    long total = 0;
    for (int round = 0; round < 3; round++) {
        char msg[16];
        memset(msg, 'a' + round, sizeof msg);
        if (write(p[1], msg, sizeof msg) != sizeof msg || write(file, msg, sizeof msg) != sizeof msg)
            return 2;
        buf[3] = '.'; /* L:store */
        ssize_t got = read(p[0], buf, sizeof buf); /* L:read */
        if (fstat(file, &st) != 0) /* L:fstat */
            return 3;
        total += got + st.st_size + buf[3]; /* L:sum */
    }
    printf("total %ld\n", total);
    return 0;
}
