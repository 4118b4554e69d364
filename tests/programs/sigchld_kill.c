/* A SIGCHLD handler reaps several children that exit at the same moment (SIGCHLD is not
 * queued, so the handler loops on waitpid(WNOHANG)); then parent and child play
 * ping-pong with kill(): SIGUSR1 to the child, SIGUSR2 back, five rounds. Every line is
 * the same on every run except how many times the SIGCHLD handler ran. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 4
#define ROUNDS 5

static volatile sig_atomic_t reaped, handler_runs, usr1, usr2;
static volatile sig_atomic_t statuses[CHILDREN];

static void on_child(int sig) {
    (void)sig;
    handler_runs++;
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0)
        if (reaped < CHILDREN)
            statuses[reaped++] = WEXITSTATUS(status);
}

static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_usr2(int sig) { (void)sig; usr2++; }

static int by_value(const void *a, const void *b) {
    return *(const sig_atomic_t *)a - *(const sig_atomic_t *)b;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    int barrier[2];
    if (pipe(barrier) != 0)
        return 1;
    for (int i = 0; i < CHILDREN; i++) {
        if (fork() == 0) {
            char byte;
            close(barrier[1]);
            _exit(read(barrier[0], &byte, 1) == 0 ? 10 + i : 1); /* waits for the close */
        }
    }
    close(barrier[0]);
    close(barrier[1]); /* every child exits now */
    while (reaped < CHILDREN)
        usleep(1000);
    qsort((void *)statuses, CHILDREN, sizeof statuses[0], by_value);
    printf("reaped %d children, exit statuses", (int)reaped);
    for (int i = 0; i < CHILDREN; i++)
        printf(" %d", (int)statuses[i]);
    printf("\nSIGCHLD handler ran %d time(s)\n", (int)handler_runs);

    signal(SIGCHLD, SIG_DFL);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    pid_t child = fork();
    if (child == 0) {
        for (int round = 1; round <= ROUNDS; round++) {
            while (usr1 < round)
                usleep(1000);
            kill(getppid(), SIGUSR2);
        }
        _exit(usr1 == ROUNDS ? 0 : 1);
    }
    for (int round = 1; round <= ROUNDS; round++) {
        kill(child, SIGUSR1);
        while (usr2 < round)
            usleep(1000);
    }
    int status;
    waitpid(child, &status, 0);
    printf("ping-pong: parent got %d SIGUSR2, child exit status %d\n", (int)usr2,
           WEXITSTATUS(status));
    return 0;
}
