/* A parent stops (SIGSTOP) and continues (SIGCONT) a child whose threads all compute
 * without syscalls, seeing each stop with waitpid(WUNTRACED), then ends it: with a
 * SIGTERM whose handler tells the threads to finish (the child exits 3), or with
 * "kill" as argv[1], SIGKILL. The parent's waitpid returns only once every thread of
 * the child has entered the group stop. Under ptrace each thread's group-stop is
 * reported to the recorder, which leaves it there until the process is continued: a
 * SIGCONT, taken by one thread, continues them all. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WORKERS
#define WORKERS 2
#endif
#ifndef PAUSE
#define PAUSE 20000
#endif
#ifndef STOPS
#define STOPS 5
#endif

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

int main(int argc, char **argv)
{
    int kill_it = argc > 1 && strcmp(argv[1], "kill") == 0;
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
    int stopped = 0, continued = 0, status;
    for (int i = 0; i < STOPS; i++) {
        usleep(PAUSE);
        kill(pid, SIGSTOP);
        if (waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status))
            stopped += WSTOPSIG(status) == SIGSTOP;
        kill(pid, SIGCONT);
        if (waitpid(pid, &status, WCONTINUED) == pid && WIFCONTINUED(status))
            continued++;
    }
    kill(pid, kill_it ? SIGKILL : SIGTERM);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        printf("stopped %d, continued %d, then exited %d\n", stopped, continued,
               WEXITSTATUS(status));
    else
        printf("stopped %d, continued %d, then killed by %d\n", stopped, continued,
               WTERMSIG(status));
    return 0;
}
