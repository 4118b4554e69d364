/* sigsuspend() waits for a signal with a temporary mask: the usual race-free way to wait
 * for a signal that is otherwise blocked. First a signal already pending (raise while
 * blocked), then a timer signal that arrives while the program waits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t handled;

static void on_signal(int sig) { (void)sig; handled++; }

int main(void) {
    sigset_t blocked, empty;
    sigemptyset(&empty);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    sigaddset(&blocked, SIGALRM);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    signal(SIGUSR1, on_signal);
    signal(SIGALRM, on_signal);

    raise(SIGUSR1);
    int r = sigsuspend(&empty);
    printf("pending SIGUSR1: sigsuspend %d %s, handled %d\n", r,
           errno == EINTR ? "EINTR" : strerror(errno), (int)handled);

    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (handled < 2)
        sigsuspend(&empty);
    printf("SIGALRM: handled %d\n", (int)handled);

    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("still blocked afterwards: %d %d\n", sigismember(&now, SIGUSR1),
           sigismember(&now, SIGALRM));
    return 0;
}
