/* Threads that spend their time in generated code of short instructions only (no jump
 * may replace one of them) in a mapping of its own, returning to a loop in the program:
 * the recorder stops them in that code, and must step on out of it into the caller to
 * find instructions a jump may replace (as HotSpot's threads return from libjvm). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 2
#define CALLS 8000000L
#define ROUNDS 40

typedef uint64_t (*mix_fn)(uint64_t, uint64_t);

static uint64_t results[THREADS];
static mix_fn mix;

static mix_fn generate(void)
{
    static const uint8_t round[] = {
        0x48, 0x6b, 0xc0, 0x03, /* imul rax, rax, 3 */
        0x48, 0x01, 0xf0,       /* add rax, rsi */
        0x48, 0xc1, 0xc0, 0x07, /* rol rax, 7 */
    };
    uint8_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *p = code;
    memcpy(p, "\x48\x89\xf8", 3); /* mov rax, rdi */
    p += 3;
    for (int i = 0; i < ROUNDS; i++, p += sizeof round)
        memcpy(p, round, sizeof round);
    *p = 0xc3; /* ret */
    mprotect(code, 4096, PROT_READ | PROT_EXEC);
    return (mix_fn)code;
}

static void *work(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t x = id + 1;
    for (long i = 0; i < CALLS; i++)
        x = mix(x, (uint64_t)i);
    results[id] = x;
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    mix = generate();
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        printf("thread %d: %llu\n", t, (unsigned long long)results[t]);
    return 0;
}
