/* Two threads whose loop keeps its state in memory: at the loop's head their registers
 * are the same at every turn (the count is on the stack, the limit in a register, the
 * flags those of the last compare or decrement). Each is preempted several times mid-loop with the
 * same registers as at its previous preemption, and must not be taken for a thread that
 * did not move since (gcc -O0 code has loops like this). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 2
#define TURNS 8000000UL

static unsigned long results[THREADS];

static void *work(void *arg)
{
    /* a delay of 100 turns of an inner loop, which ends with the same registers every
     * time, keeps the turns of the outer loop few: replay runs them through its stub */
    unsigned long counts[2] = {0, 0}, *at = counts, limit = TURNS;
    __asm__ volatile("1: addq $1, 8(%1)\n\t"
                     "mov $100, %%ecx\n\t"
                     "2: dec %%ecx\n\t"
                     "jnz 2b\n\t"
                     "cmpq %2, 8(%1)\n\t"
                     "jb 1b"
                     : "+m"(counts)
                     : "r"(at), "r"(limit)
                     : "cc", "rcx");
    results[(uintptr_t)arg] = counts[1];
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
        printf("thread %d: %lu\n", t, results[t]);
    return 0;
}
