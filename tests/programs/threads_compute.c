/* Threads that compute for a long time without a syscall, their registers changing at
 * every turn of a tight loop (at -O2 its instructions are all shorter than a jump), and
 * that share a counter: the recorder preempts them mid-loop, and replay must find each
 * preemption point again among millions of visits of its pc. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 3
#define ROUNDS 4
#define TURNS 25000000L

static atomic_long shared;
static uint64_t results[THREADS];
static volatile long progress[THREADS]; /* rounds done by each thread */

static void *work(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t x = id * 0x9E3779B97F4A7C15ull + 1, sum = 0;
    for (long round = 0; round < ROUNDS; round++) {
        for (long i = 0; i < TURNS; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sum += x >> 60;
        }
        atomic_fetch_add(&shared, (long)(sum & 0xff));
        progress[id] = round + 1; /* L:round */
    }
    results[id] = sum;
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        printf("thread %d: %llu\n", t, (unsigned long long)results[t]);
    printf("shared: %ld\n", atomic_load(&shared));
    return 0;
}
