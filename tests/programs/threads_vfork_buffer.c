/* A multi-threaded process that spawns children the way posix_spawn and Python's
 * subprocess do (clone with CLONE_VM | CLONE_VFORK: the child shares the parent's memory,
 * and so its syscall buffer, until it execs), from two threads at once, while two other
 * threads make buffered calls all along; then the main thread makes 5000 getuid calls,
 * which must be buffered again. A multi-threaded process used to stay unbuffered for
 * good after its first vfork (every syscall traced: 20000 getppid after one posix_spawn
 * took 2.6 s to record instead of 0.13 s), because a sibling could be between the
 * library's check of the buffer's switch and its syscall when the child execs. */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SPAWNS 8

static volatile int done;

static void *busy(void *arg)
{
    long calls = 0;
    struct timespec ts;
    (void)arg;
    while (!done) {
        calls += getppid() > 0;
        calls += clock_gettime(CLOCK_MONOTONIC, &ts) == 0;
    }
    return (void *)calls;
}

static void *spawner(void *arg)
{
    long ok = 0;
    char *argv[] = {"/bin/true", NULL};
    (void)arg;
    for (int i = 0; i < SPAWNS; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0
                && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
            ok++;
    }
    return (void *)ok;
}

int main(void)
{
    pthread_t busy_threads[2], second_spawner;
    for (int i = 0; i < 2; i++)
        pthread_create(&busy_threads[i], NULL, busy, NULL);
    pthread_create(&second_spawner, NULL, spawner, NULL);
    long spawned = (long)spawner(NULL);
    void *result;
    pthread_join(second_spawner, &result);
    spawned += (long)result;
    long uids = 0;
    for (int i = 0; i < 5000; i++)
        uids += getuid() == getuid();
    done = 1;
    long calls = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(busy_threads[i], &result);
        calls += (long)result;
    }
    printf("spawned %ld, getuid pairs %ld, busy threads made calls: %d\n", spawned, uids,
           calls > 0);
    return 0;
}
