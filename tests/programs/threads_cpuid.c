/* Keeps what cpuid says about the CPU it runs on in memory, as HotSpot does at start
 * (leaf 1's EBX holds the CPU's APIC id), then has two threads compute without syscalls
 * so that they are preempted: preemption points hash the memory, so replay must give the
 * program the recording's answer (the trace's, or the same CPU's). */
#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 2
#define TURNS 150000000L

static volatile unsigned int cpu_info[4];
static uint64_t results[THREADS];

static void *work(void *arg)
{
    uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1, sum = 0;
    for (long i = 0; i < TURNS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x >> 60;
    }
    results[(uintptr_t)arg] = sum;
    return NULL;
}

int main(void)
{
    unsigned int a, b, c, d;
    __cpuid(1, a, b, c, d);
    cpu_info[0] = a, cpu_info[1] = b, cpu_info[2] = c, cpu_info[3] = d;
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        printf("thread %d: %llu\n", t, (unsigned long long)results[t]);
    return 0;
}
