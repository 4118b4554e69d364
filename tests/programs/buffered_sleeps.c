/* Sleeps the syscall buffer records without a ptrace stop: nanosleep and usleep (libc
 * makes clock_nanosleep calls for both), clock_nanosleep for a time and to a deadline,
 * and one 20 ms sleep. Then a thread's 30 ms sleep while the main thread keeps making
 * syscalls (the recorder stops the sleeper so that the main thread can have its turn),
 * and, with SIGALRM every 2 ms, a 30 ms sleep resumed for the time left after each
 * interruption: both must end, and not late. Usage: buffered_sleeps [ROUNDS]; prints a
 * summary (what may differ between runs in parentheses). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* nanosleep for ms, resumed for the time left after each interruption. */
static int sleep_through(long ms)
{
    struct timespec left = {0, ms * 1000000};
    int interrupted = 0;
    while (nanosleep(&left, &left) == -1 && errno == EINTR)
        interrupted++;
    return interrupted;
}

static int sleeper_done;

static void *sleeper(void *slept)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    sleep_through(30);
    *(long *)slept = elapsed_ms(&start);
    __atomic_store_n(&sleeper_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    struct timespec start, tiny = {0, 1000}, left;
    long failures = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < rounds; i++) {
        failures += nanosleep(&tiny, NULL) != 0;
        failures += usleep(1) != 0;
        failures += clock_nanosleep(CLOCK_MONOTONIC, 0, &tiny, &left) != 0;
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += 1000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        failures += clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) != 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    sleep_through(20);
    long blocked = elapsed_ms(&start);

    long slept = 0, calls = 0;
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, &slept);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!__atomic_load_n(&sleeper_done, __ATOMIC_ACQUIRE) && elapsed_ms(&start) < 1000)
        calls += getppid() > 0;
    pthread_join(thread, NULL);

    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &every, NULL);
    clock_gettime(CLOCK_MONOTONIC, &start);
    int interrupted = sleep_through(30);
    long alarmed = elapsed_ms(&start);
    setitimer(ITIMER_REAL, &off, NULL);

    printf("%d rounds, %ld failed; 20 ms sleep took %s\n", rounds, failures,
           blocked >= 20 ? ">= 20 ms" : "less");
    printf("thread's 30 ms sleep: %s (%ld ms, %ld calls meanwhile)\n",
           slept >= 30 && slept < 200 ? "30 ms to 200 ms" : "wrong length", slept, calls);
    printf("30 ms sleep with alarms: %s, %s (%d interruptions, %d alarms, %ld ms)\n",
           interrupted > 0 ? "interrupted" : "not interrupted",
           alarmed >= 30 && alarmed < 200 ? "30 ms to 200 ms" : "wrong length", interrupted,
           (int)alarms, alarmed);
    return 0;
}
