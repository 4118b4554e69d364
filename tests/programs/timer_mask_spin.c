/* Perl's safe signals in C (perl -e 'setitimer(ITIMER_REAL, 0.01, 0.01)' with a loop):
 * a 10 ms interval timer whose handler only sets a flag, and a loop that spins on the flag
 * and counts each tick between two sigprocmask calls, which the syscall buffer makes
 * without a ptrace stop. The loop keeps its state in memory, so its registers come back
 * the same at every turn. A tick delivered where the recorder preempted the loop returns
 * there with rt_sigreturn, a traced syscall; the next tick then stopped the thread at
 * those same registers after the two buffered calls, and the recorder took the stop for
 * one at rt_sigreturn's exit: replay diverged (the buffered calls used no records). */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

#define TICKS 5

static volatile sig_atomic_t pending;
static volatile int ticks;

static void on_alarm(int sig)
{
    (void)sig;
    pending = 1;
}

/* What perl's despatch_signals does: the signal blocked while the tick is counted. */
__attribute__((noinline)) static void despatch(void)
{
    sigset_t alarm, old;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alarm, &old);
    pending = 0;
    ticks++;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    struct sigaction action = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &action, NULL);
    struct itimerval timer = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &timer, NULL);
    while (ticks < TICKS)
        if (pending)
            despatch();
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("ticks %d\n", ticks);
    return 0;
}
