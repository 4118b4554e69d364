/* A process that vforks three times and makes buffered calls after each child exits:
 * gdb stops it between its return from vfork and its next syscall, where the buffer is
 * about to come back (at that syscall's entry), then runs to the end of the recording
 * and back to there, and on to the end again. */
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static long stats(void)
{
    struct stat st;
    long found = 0;
    for (int i = 0; i < 500; i++)
        found += stat("/", &st) == 0;
    return found;
}

int main(void)
{
    long total = 0;
    for (int round = 0; round < 3; round++) {
        pid_t child = vfork();
        if (child == 0)
            _exit(round);
        total += round * 1000; /* L:after-vfork */
        int status;
        waitpid(child, &status, 0);
        total += WEXITSTATUS(status) + stats();
    }
    printf("total %ld\n", total);
    return 0;
}
