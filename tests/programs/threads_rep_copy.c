/* Threads that spend their time inside `rep movsb` copies of a few MB: the recorder
 * stops them part-way through one (rcx counted down, rip still at the instruction), a
 * moment replay never sees, since a visit is the start of an instruction. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 3
#define COPIES 600
#define SIZE (4L << 20)

static uint64_t results[THREADS];

static void copy(char *dst, const char *src, long n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void *work(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    char *a = malloc(SIZE), *b = malloc(SIZE);
    for (long i = 0; i < SIZE; i++)
        a[i] = (char)(i * (id + 3));
    uint64_t sum = 0;
    for (int k = 0; k < COPIES; k++) {
        copy(k & 1 ? a : b, k & 1 ? b : a, SIZE - k);
        sum = sum * 31 + (unsigned char)(k & 1 ? a : b)[k * 4099 % SIZE];
    }
    results[id] = sum;
    free(a);
    free(b);
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
