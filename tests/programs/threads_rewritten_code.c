/* Threads computing in code they generated and keep rewriting, as a JIT does (HotSpot
 * writes a resolved method's address into the immediate of a `movabs` in its compiled
 * code): each thread's loop runs from a private read-write-execute mapping, and before
 * each run the thread writes a new immediate into the loop's first instruction, the
 * 10-byte `movabs` where the recorder leaves a preempted thread. Replay must let that
 * store change the code it has patched over while it searches for the preemption point. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 2
#define RUNS 2000
#define TURNS 100000

static const unsigned char LOOP[] = {
    0x31, 0xd2,                         /* xor %edx, %edx */
    0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, /* 1: movabs $IMMEDIATE, %rax */
    0x48, 0x01, 0xc2,                   /* add %rax, %rdx */
    0x48, 0xd1, 0xca,                   /* ror %rdx */
    0x48, 0xff, 0xcf,                   /* dec %rdi */
    0x75, 0xeb,                         /* jnz 1b */
    0x48, 0x89, 0xd0,                   /* mov %rdx, %rax */
    0xc3,                               /* ret */
};
#define IMMEDIATE 4

static uint64_t results[THREADS];

static void *work(void *arg)
{
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return NULL;
    memcpy(code, LOOP, sizeof LOOP);
    uint64_t (*loop)(uint64_t) = (uint64_t (*)(uint64_t))code;
    uint64_t total = 0;
    for (uint64_t run = 1; run <= RUNS; run++) {
        uint64_t immediate = run * 0x9e3779b97f4a7c15ULL + (uintptr_t)arg;
        memcpy(code + IMMEDIATE, &immediate, sizeof immediate);
        total ^= loop(TURNS);
    }
    results[(uintptr_t)arg] = total;
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
        printf("thread %d: %016llx\n", t, (unsigned long long)results[t]);
    return 0;
}
