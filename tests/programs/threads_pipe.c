/* Two threads hand a byte back and forth through two pipes: every read blocks until the
 * other thread writes. Under the syscall buffer each read is a buffered call that blocks
 * while its thread holds the process's turn. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int to_worker[2], to_main[2];
static int rounds;

static void *worker(void *arg)
{
    (void)arg;
    unsigned char c;
    for (int i = 0; i < rounds; i++) {
        if (read(to_worker[0], &c, 1) != 1)
            abort();
        c = (unsigned char)(c * 7 + 1);
        if (write(to_main[1], &c, 1) != 1)
            abort();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 1000;
    if (pipe(to_worker) || pipe(to_main))
        return 1;
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    unsigned char c = 1;
    unsigned sum = 0;
    for (int i = 0; i < rounds; i++) {
        if (write(to_worker[1], &c, 1) != 1 || read(to_main[0], &c, 1) != 1)
            return 1;
        sum = sum * 31 + c;
    }
    pthread_join(thread, NULL);
    printf("rounds %d, sum %u\n", rounds, sum);
    return 0;
}
