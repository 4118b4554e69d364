/* A worker stores to a shared variable while the main thread sleeps in a read of a pipe,
 * then wakes it with a write; main stores too. For reverse watchpoints across threads:
 * going back from main's store to the worker's, main is asleep in its read (inside the
 * syscall buffer's code, which the worker also runs through). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int pipe_fds[2];
static volatile long shared;

static void *worker(void *arg)
{
    (void)arg;
    usleep(20000); /* main is asleep in its read by now */
    for (int i = 0; i < 3; i++)
        shared = shared + 1; /* L:worker-store */
    if (write(pipe_fds[1], "x", 1) != 1)
        return NULL;
    return NULL;
}

int main(void)
{
    pthread_t thread;
    char byte;
    if (pipe(pipe_fds) != 0 || pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    if (read(pipe_fds[0], &byte, 1) != 1)
        return 1;
    shared = shared + 10; /* L:main-store */
    pthread_join(thread, NULL);
    printf("shared=%ld\n", shared);
    return 0;
}
