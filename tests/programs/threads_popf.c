/* Threads computing in a loop that loads the flags with push and popf, as V8's double
 * modulo does (fprem, fnstsw, then push rax; popf; jp), followed by short instructions
 * only, then one that a jump may replace: the recorder, stopping a thread to let another
 * run, single-steps it over the popf to that window. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 2
#define TURNS 20000000L

static uint64_t results[THREADS];

static void *work(void *arg)
{
    uint64_t x = (uintptr_t)arg + 1, flags = 0x202; /* IF, no TF */
    for (long i = 0; i < TURNS; i++) {
        uint64_t mixed = (uint64_t)i;
        __asm__ volatile("add %%rcx, %%rbx\n\t"
                         "xor %%rbx, %%rcx\n\t"
                         "add %%rcx, %%rbx\n\t"
                         "ror $7, %%rbx\n\t"
                         "add $-128, %%rsp\n\t" /* past the red zone */
                         "push %[flags]\n\t"
                         "popfq\n\t"
                         "sub $-128, %%rsp\n\t"
                         "mov $0x12345, %%eax\n\t" /* the only instruction of 5 bytes */
                         "add %%rax, %%rbx"
                         : "+b"(x), "+c"(mixed)
                         : [flags] "r"(flags)
                         : "rax", "cc", "memory");
    }
    results[(uintptr_t)arg] = x;
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
        printf("thread %d: %llx\n", t, (unsigned long long)results[t]);
    return 0;
}
