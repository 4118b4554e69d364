/* Writes to stdout and stderr in alternation, through stdio with fflush and through
 * raw write(2), including partial lines, so the order of the two streams matters. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void raw(int fd, const char *text)
{
    write(fd, text, strlen(text));
}

int main(void)
{
    struct timespec now;

    for (int i = 0; i < 5; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        printf("out %d at %ld", i, now.tv_nsec);
        fflush(stdout);
        raw(STDERR_FILENO, " | err ");
        fprintf(stderr, "%d\n", i);
        raw(STDOUT_FILENO, "out continues\n");
    }
    fputs("stderr last line\n", stderr);
    printf("stdout last line\n");
    return 0;
}
