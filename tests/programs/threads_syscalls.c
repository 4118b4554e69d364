/* Four threads making many small syscalls (getppid, clock_gettime, a write to /dev/null)
 * around a mutex-protected counter: with the syscall buffer they do not trap. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static int null_fd;

static void *work(void *unused)
{
    long sum = 0;
    (void)unused;
    for (int i = 0; i < 2000; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sum += getppid() > 0;
        if (write(null_fd, "x", 1) != 1)
            return NULL;
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)sum;
}

int main(void)
{
    pthread_t threads[4];
    null_fd = open("/dev/null", O_WRONLY);
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, work, NULL);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *sum;
        pthread_join(threads[i], &sum);
        total += (long)sum;
    }
    printf("counter %ld, calls %ld\n", counter, total);
    return 0;
}
