/* An interval timer every 10 ms into a loop without syscalls that runs until the handler
 * has run 60 times (~0.6 s natively). Each tick arrives in the loop, where the recorder
 * parks it and delivers it at a preemption point once it has waited long enough for a
 * syscall that never comes: 0.5 s each made this a 30 s recording. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

#define TICKS 60

static volatile unsigned long ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    struct itimerval timer = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &timer, NULL);
    unsigned long x = 1;
    while (ticks < TICKS) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    /* (one more may come before the timer is off) */
    printf("ticks: %s, state: %s\n", ticks >= TICKS ? "60 or more" : "too few", x ? "nonzero" : "zero");
    return 0;
}
