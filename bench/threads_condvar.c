/* 4 threads: 2 producers hand N items (argv[1], default 20000) to 2 consumers through a
 * bounded queue guarded by a mutex and two condition variables; every consumed item also
 * bumps a mutex-protected counter. Lock handoffs and futex waits make it syscall- and
 * switch-heavy. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define PRODUCERS 2
#define CONSUMERS 2
#define CAPACITY 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long queue[CAPACITY];
static int head, count, producers_left = PRODUCERS;
static long items, counter, sum;

static void *produce(void *arg) {
    long id = (long)arg;
    for (long i = id; i < items; i += PRODUCERS) {
        pthread_mutex_lock(&lock);
        while (count == CAPACITY)
            pthread_cond_wait(&not_full, &lock);
        queue[(head + count++) % CAPACITY] = i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consume(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &lock);
        if (count == 0) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        long item = queue[head];
        head = (head + 1) % CAPACITY;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
        pthread_mutex_lock(&counter_lock);
        counter++;
        sum += item;
        pthread_mutex_unlock(&counter_lock);
    }
}

int main(int argc, char **argv) {
    items = argc > 1 ? atol(argv[1]) : 20000;
    pthread_t threads[PRODUCERS + CONSUMERS];
    for (long i = 0; i < PRODUCERS; i++)
        pthread_create(&threads[i], NULL, produce, (void *)i);
    for (long i = 0; i < CONSUMERS; i++)
        pthread_create(&threads[PRODUCERS + i], NULL, consume, NULL);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(threads[i], NULL);
    printf("%ld items consumed, sum %ld\n", counter, sum);
    return counter == items && sum == items * (items - 1) / 2 ? 0 : 1;
}
