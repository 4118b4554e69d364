/* Sends itself signals that have handlers: raise(SIGUSR1), kill(getpid(), SIGUSR2), and
 * a SIGUSR1 that waits blocked until sigprocmask unblocks it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count;
static volatile sig_atomic_t usr2_count;

static void on_signal(int sig)
{
    const char *msg = sig == SIGUSR1 ? "handler: SIGUSR1\n" : "handler: SIGUSR2\n";
    if (sig == SIGUSR1)
        usr1_count++;
    else
        usr2_count++;
    write(STDOUT_FILENO, msg, strlen(msg));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_signal);
    signal(SIGUSR2, on_signal);
    printf("pid %d\n", (int)getpid());

    raise(SIGUSR1);
    printf("after raise: usr1=%d\n", (int)usr1_count);
    kill(getpid(), SIGUSR2);
    printf("after kill: usr2=%d\n", (int)usr2_count);

    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("blocked: pending=%d usr1=%d\n", sigismember(&pending, SIGUSR1), (int)usr1_count);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("unblocked: usr1=%d\n", (int)usr1_count);
    return 0;
}
