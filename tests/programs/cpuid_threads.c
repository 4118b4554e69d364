/* Three threads each run cpuid (leaf 1, whose EBX holds the APIC id, and leaf 0) between
 * stretches of computation without syscalls, so that cpuid traps of different threads
 * and preemptions interleave; each prints what it summed. */
#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 3
#define ROUNDS 300

static uint64_t sums[THREADS];

static void *work(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    uint64_t x = t * 0x9E3779B97F4A7C15ull + 1, sum = 0;
    for (int round = 0; round < ROUNDS; round++) {
        unsigned int a, b, c, d;
        __cpuid_count(round & 1, 0, a, b, c, d);
        sum += a ^ b ^ c ^ d;
        for (int i = 0; i < 400000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        sum += x >> 60;
    }
    sums[t] = sum;
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
        printf("thread %d: %llu\n", t, (unsigned long long)sums[t]);
    return 0;
}
