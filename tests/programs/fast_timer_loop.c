/* An interval timer at 1 kHz into a loop that computes without syscalls for ~0.5 s.
 * Each expiry while the recorder holds the last one parked stops the thread again; the
 * recorder's single steps and probe, interrupted by every one of them, never placed the
 * signal (the recording of this 0.6 s program took over 2 minutes). A signal that fires
 * again while parked is dropped there, as the kernel would keep it pending once. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

static volatile unsigned long ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    struct itimerval timer = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &timer, NULL);
    unsigned long x = 1;
    for (unsigned long i = 0; i < 400000000UL; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("%lx, ticked: %s\n", x, ticks > 0 ? "yes" : "no");
    return 0;
}
