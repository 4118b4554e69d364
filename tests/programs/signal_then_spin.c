/* A handled signal, then a loop without syscalls that only a timer signal ends: the
 * recorder must preempt the loop to deliver SIGALRM, and replay must find that moment
 * again by registers and memory hash, after a signal frame was written below the stack. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t fired;

static void on_signal(int sig) { (void)sig; fired++; }

int main(void) {
    signal(SIGUSR1, on_signal);
    signal(SIGALRM, on_signal);
    raise(SIGUSR1);
    fired = 0;
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (!fired)
        ; /* no syscall, no state change */
    printf("spin ended by SIGALRM\n");
    return 0;
}
