/* As `timeout -s INT 0.2 PROGRAM` runs a computing PROGRAM: the child counts in a stack
 * word until a SIGINT handler sets a flag; the parent sleeps, then sends the child SIGINT
 * and SIGCONT, and reports how it ended. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    (void)signo;
    interrupted = 1;
}

int main(void)
{
    pid_t child = fork();
    if (child == 0) {
        signal(SIGINT, on_interrupt);
        volatile unsigned long turns = 0;
        while (!interrupted)
            turns++;
        printf("interrupted after %s turns\n", turns > 1000000 ? "many" : "few");
        fflush(stdout);
        _exit(3);
    }
    usleep(200000);
    kill(child, SIGINT);
    kill(child, SIGCONT);
    int status;
    waitpid(child, &status, 0);
    printf("child status %d\n", WEXITSTATUS(status));
    return 0;
}
