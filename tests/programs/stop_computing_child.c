/* A parent stops (SIGSTOP) and continues (SIGCONT) a child 100 times, seeing each stop
 * with waitpid(WUNTRACED), while the child computes without syscalls. The SIGSTOP
 * arrives while the child runs user code, where the recorder parks asynchronous signals
 * until a syscall or, after 0.5 s, a preemption point: natively the child stops at once
 * (the recording took 50 s), and the recorder's own SIGSTOPs must not be taken for the
 * parent's, nor be flushed by the parent's SIGCONT while the recorder still waits for
 * them. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    pid_t child = fork();
    if (child == 0) {
        static volatile unsigned long count;
        for (;;)
            count++;
    }
    int stopped = 0, status;
    for (int i = 0; i < 100; i++) {
        usleep(2000);
        kill(child, SIGSTOP);
        waitpid(child, &status, WUNTRACED);
        stopped += WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP;
        kill(child, SIGCONT);
        waitpid(child, &status, WCONTINUED);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    printf("stopped %d times, then killed by %d\n", stopped, WTERMSIG(status));
    return 0;
}
