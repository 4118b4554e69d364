/* An interval timer firing every 2 ms into a loop without syscalls, and into its own
 * handler, which computes a little and has SIGALRM blocked meanwhile: the recorder must
 * not deliver a signal the thread blocks (it parked one while the loop ran and forced it
 * at a preemption point inside the handler), and a standard signal that fires again
 * before delivery is pending only once. The handler sees the timer's si_code. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;
static volatile int code = -1;

static void on_alarm(int sig, siginfo_t *info, void *context) {
    (void)sig, (void)context;
    code = info->si_code;
    for (volatile int i = 0; i < 200000; i++)
        ;
    ticks++;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long spins = 0;
    while (ticks < 6)
        spins++;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("6 ticks, si_code %d, spun %s\n", code, spins ? "yes" : "no");
    return 0;
}
