/* Threads whose loop keeps its count in memory far above the stack pointer of the leaf
 * function they spend their time in, where the registers are the same at every call:
 * only that word tells one visit of the leaf from the next (as in a JIT's code, whose
 * loop counters live some frames up). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 2
#define CALLS 2000000L

static uint64_t results[THREADS];

static __attribute__((noinline)) uint64_t leaf(const volatile uint64_t *seed)
{
    uint64_t x = *seed;
    for (int i = 0; i < 40; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x & 0xffff;
}

static void *work(void *arg)
{
    volatile uint64_t frame[96]; /* the count and sum at the far end, ~750 bytes above */
    frame[0] = (uintptr_t)arg + 1;
    frame[94] = frame[95] = 0;
    while (frame[95] < CALLS) {
        uint64_t got = leaf(&frame[0]);
        __asm__ volatile("" : : : "memory"); /* the sum is read after the call */
        frame[94] = frame[94] + got;
        frame[95] = frame[95] + 1;
    }
    results[(uintptr_t)arg] = frame[94] + frame[95];
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
    return 0;
}
