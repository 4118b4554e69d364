/* A parent that forks a child which runs child_side(), then execs this program again as
 * "kid": the kid calls work() three times and exits with its counter. The parent waits and
 * calls work() too, so a breakpoint there tells the processes apart. For `rrgdb replay
 * -p/-f` (gdb follows a chosen process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int counter;

int work(int x)
{
    counter += x; /* L:store */
    return counter * 2;
}

int child_side(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += i;
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "kid") == 0) {
        for (int i = 1; i <= 3; i++)
            work(i);
        printf("kid counter %d\n", counter);
        return counter;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child sum %d\n", child_side(10)); /* L:child */
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "kid", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("parent saw %d, work %d\n", WEXITSTATUS(status), work(100));
    return 0;
}
