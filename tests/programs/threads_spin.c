/* A thread spins on an atomic flag, with no syscall, until another thread sets it: the
 * recorder must preempt the spinner, and replay must find the preemption point again. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_int flag;
static long spins;

static void *setter(void *arg) {
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store(&flag, (int)(ts.tv_nsec % 1000) + 1);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, setter, NULL);
    while (!atomic_load_explicit(&flag, memory_order_acquire))
        ;
    pthread_join(t, NULL);
    printf("flag=%d\n", atomic_load(&flag));
    return (int)(spins & 0);
}
