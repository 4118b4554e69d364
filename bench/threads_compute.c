/* Compute-bound threads: 4 threads each run N turns of an xorshift loop (N = argv[1],
 * default 100000000) with no syscall, adding into a shared counter every 10^7 turns. The
 * recorder preempts them in turn (they run one at a time); replay must find each
 * preemption point again among millions of visits of its pc. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4

static atomic_ulong shared;
static long turns;

static void *work(void *arg)
{
    uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1, sum = 0;
    for (long i = 1; i <= turns; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x >> 60;
        if (i % 10000000 == 0)
            atomic_fetch_add(&shared, sum);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    turns = argc > 1 ? atol(argv[1]) : 100000000L;
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    printf("%lu\n", (unsigned long)atomic_load(&shared));
    return 0;
}
