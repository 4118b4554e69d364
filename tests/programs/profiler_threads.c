/* A profiling timer (ITIMER_PROF, every 1 ms of CPU time) interrupts four threads that
 * compute without syscalls, as a sampling profiler's does; the handler counts. Without
 * the syscall buffer, the recorder's probe of a preempted loop once let a thread run
 * with PTRACE_CONT, and the syscalls it made meanwhile (leaving the handler, the
 * thread's exit) ran unrecorded: replay diverged. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

static volatile unsigned long samples;
static unsigned long results[4];

static void on_prof(int sig)
{
    (void)sig;
    __atomic_fetch_add(&samples, 1, __ATOMIC_RELAXED);
}

static void *work(void *arg)
{
    long k = (long)arg;
    unsigned long x = k + 1;
    for (unsigned long i = 0; i < 150000000UL; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    results[k] = x;
    return NULL;
}

int main(void)
{
    signal(SIGPROF, on_prof);
    struct itimerval timer = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &timer, NULL);
    pthread_t threads[4];
    for (long k = 0; k < 4; k++)
        pthread_create(&threads[k], NULL, work, (void *)k);
    for (int k = 0; k < 4; k++)
        pthread_join(threads[k], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    printf("%lx %lx %lx %lx, sampled: %s\n", results[0], results[1], results[2], results[3],
           samples > 0 ? "yes" : "no");
    return 0;
}
