/* Two forked children add to counters in memory they share with their parent -- an
 * anonymous MAP_SHARED mapping and a MAP_SHARED mapping of a file -- without locks: each
 * reads a counter, makes a traced syscall, writes it back plus one. How many additions
 * are lost depends on how the processes interleave, which replay must reproduce. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 3000

int main(void)
{
    volatile long *anonymous = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char path[] = "/tmp/rrgdb-shared-XXXXXX";
    int fd = mkstemp(path);
    if (anonymous == MAP_FAILED || fd < 0 || ftruncate(fd, 4096) != 0)
        return 1;
    unlink(path);
    volatile long *file = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (file == MAP_FAILED)
        return 1;
    for (int child = 0; child < 2; child++) {
        if (fork() == 0) {
            for (int i = 0; i < ROUNDS; i++) {
                long a = *anonymous, f = *file;
                syscall(SYS_getpgid, 0); /* traced: a point where the other may run */
                *anonymous = a + 1;
                *file = f + 1;
            }
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    printf("anonymous %ld, file %ld of %d additions\n", *anonymous, *file, 2 * ROUNDS);
    return 0;
}
