/* The main thread waits in pthread_join while one worker makes 2000 traced syscalls
 * (umask: never buffered) and then the main thread makes 2000 of its own: no sibling runs
 * user code in between, so none of those syscalls needs a scheduling (entry) event. */
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

static long calls(void)
{
    long sum = 0;
    for (int i = 0; i < 2000; i++)
        sum += umask(022) == 022;
    return sum;
}

static void *work(void *unused)
{
    (void)unused;
    return (void *)calls();
}

int main(void)
{
    umask(022);
    pthread_t worker;
    void *sum;
    pthread_create(&worker, NULL, work, NULL);
    pthread_join(worker, &sum);
    printf("worker %ld, main %ld\n", (long)sum, calls());
    return 0;
}
