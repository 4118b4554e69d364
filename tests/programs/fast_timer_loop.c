/* An interval timer (every argv[1] microseconds, 1000 by default) into a loop that
 * computes without syscalls (argv[2] million turns, 400 by default: ~0.5 s).
 * At 1 kHz: each expiry while the recorder holds the last one parked stops the thread
 * again; the recorder's single steps and probe, interrupted by every one of them, never
 * placed the signal (the recording of this 0.6 s program took over 2 minutes). A signal
 * that fires again while parked is dropped there, as the kernel would keep it pending
 * once. Every 150 us: a tick handled under the recorder took longer than the period, so every
 * rt_sigreturn returned into the next tick's handler and the loop never ran on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

static volatile unsigned long ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

int main(int argc, char **argv)
{
    long period = argc > 1 ? atol(argv[1]) : 1000;
    unsigned long turns = (argc > 2 ? strtoul(argv[2], NULL, 10) : 400) * 1000000UL;
    signal(SIGALRM, on_alarm);
    struct itimerval timer = {{0, period}, {0, period}};
    setitimer(ITIMER_REAL, &timer, NULL);
    unsigned long x = 1;
    for (unsigned long i = 0; i < turns; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("%lx, ticked: %s\n", x, ticks > 0 ? "yes" : "no");
    return 0;
}
