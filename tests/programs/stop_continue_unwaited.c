/* A parent stops (SIGSTOP) and continues (SIGCONT) a child whose three threads compute
 * without syscalls, 100 times, each SIGCONT soon after its SIGSTOP (0 to 0.7 ms),
 * without waiting for the stop; then it ends the child with a SIGTERM whose handler
 * tells the threads to finish (the child exits 3). Natively the child always ends:
 * a SIGCONT discards the stop signals still pending, and a stop signal already taken
 * but not yet acted on. Recorded, the child stayed stopped for good in about half the
 * runs: the recorder held the taken SIGSTOP (parked, to be delivered at a preemption
 * point) and its own SIGSTOP, sent to make that point, discarded the pending SIGCONT
 * (the kernel discards a pending SIGCONT at any stop signal), so the held SIGSTOP was
 * delivered after the SIGCONT. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 2
#define PAIRS 100

static volatile sig_atomic_t done;
static volatile unsigned long counter; /* the main thread's */

static void finish(int signo)
{
    (void)signo;
    done = 1;
}

static void *work(void *arg)
{
    uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    while (!done) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return (void *)(uintptr_t)(x == 0); /* never 0: xorshift keeps a nonzero state */
}

static int child(void)
{
    pthread_t threads[WORKERS];
    for (uintptr_t t = 0; t < WORKERS; t++)
        pthread_create(&threads[t], NULL, work, (void *)(t + 1));
    while (!done)
        counter++;
    int zeros = 0;
    for (int t = 0; t < WORKERS; t++) {
        void *result;
        pthread_join(threads[t], &result);
        zeros += result != NULL;
    }
    return 3 + zeros;
}

int main(void)
{
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        /* the handler is in place before the parent may send SIGTERM */
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = finish;
        sigaction(SIGTERM, &action, NULL);
        if (write(ready[1], "", 1) != 1)
            _exit(1);
        close(ready[1]);
        _exit(child());
    }
    close(ready[1]);
    char byte;
    if (read(ready[0], &byte, 1) != 1)
        return 1;
    for (int i = 0; i < PAIRS; i++) {
        usleep(2000);
        kill(pid, SIGSTOP);
        usleep(i % 8 * 100);
        kill(pid, SIGCONT);
    }
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        printf("%d pairs sent, then exited %d\n", PAIRS, WEXITSTATUS(status));
    else
        printf("%d pairs sent, then killed by %d\n", PAIRS, WTERMSIG(status));
    return 0;
}
