/* Four threads increment a shared counter under a mutex and append their id to a shared
 * log; the order of the log depends on scheduling. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static char order[THREADS * ROUNDS + 1];
static int used;

static void *work(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ROUNDS; i++) { /* L:loop */
        pthread_mutex_lock(&lock);
        counter += id + 1; /* L:add */
        order[used++] = (char)('a' + id);
        pthread_mutex_unlock(&lock);
        if (i % 50 == 0)
            usleep(100); /* L:nap */
    }
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, work, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    printf("counter=%ld\norder=%.80s...\n", counter, order); /* L:report */
    return 0;
}
