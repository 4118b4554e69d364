/* The main thread calls exit while 8 threads sleep in syscalls: 4 in pause (traced), 4 in
 * a read of a pipe nobody writes (buffered; it sleeps in the untraced stub). exit_group
 * kills them all; the kernel reports their deaths in any order. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int pipe_fds[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started = PTHREAD_COND_INITIALIZER;
static int running;

static void *sleeper(void *arg)
{
    pthread_mutex_lock(&lock);
    running++;
    pthread_cond_signal(&started);
    pthread_mutex_unlock(&lock);
    if ((long)arg % 2) {
        pause();
    } else {
        char byte;
        if (read(pipe_fds[0], &byte, 1) < 0)
            perror("read");
    }
    return NULL;
}

int main(void)
{
    if (pipe(pipe_fds) != 0)
        return 1;
    pthread_t threads[8];
    for (long i = 0; i < 8; i++)
        pthread_create(&threads[i], NULL, sleeper, (void *)i);
    pthread_mutex_lock(&lock);
    while (running < 8)
        pthread_cond_wait(&started, &lock);
    pthread_mutex_unlock(&lock);
    usleep(20 * 1000); /* they are asleep by now */
    printf("exiting with %d threads asleep\n", running);
    exit(0);
}
