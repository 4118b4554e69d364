/* Futex waits, made by the program itself: waits on a word that no longer holds the
 * expected value (EAGAIN: buffered), with FUTEX_WAIT and FUTEX_WAIT_BITSET; waits that
 * time out (they would sleep: traced); and a ping-pong of two threads that wait for and
 * wake each other (the waits that sleep are traced, the wakes buffered). Usage:
 * buffered_futexes [ROUNDS]; prints a summary. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic int turn; /* whose turn in the ping-pong: 0 or 1 */
static int rounds;

static long futex(_Atomic int *word, int op, int value, const struct timespec *timeout,
                  int bits)
{
    return syscall(SYS_futex, word, op, value, timeout, NULL, bits);
}

/* Waits until it is `me`'s turn, then gives the turn to the other. */
static void play(int me)
{
    for (int i = 0; i < rounds; i++) {
        int now;
        while ((now = atomic_load(&turn)) != me)
            futex(&turn, FUTEX_WAIT_PRIVATE, now, NULL, 0);
        atomic_store(&turn, !me);
        futex(&turn, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
    }
}

static void *partner(void *unused)
{
    (void)unused;
    play(1);
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 50;
    _Atomic int word = 7;
    long again = 0, timed_out = 0;
    for (int i = 0; i < 4 * rounds; i++) {
        int op = i % 2 ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT_BITSET_PRIVATE;
        again += futex(&word, op, 8, NULL, FUTEX_BITSET_MATCH_ANY) == -1 && errno == EAGAIN;
    }
    struct timespec brief = {0, 100 * 1000};
    for (int i = 0; i < 5; i++)
        timed_out += futex(&word, FUTEX_WAIT_PRIVATE, 7, &brief, 0) == -1 && errno == ETIMEDOUT;
    pthread_t thread;
    pthread_create(&thread, NULL, partner, NULL);
    play(0);
    pthread_join(thread, NULL);
    printf("%ld waits failed with EAGAIN, %ld timed out, %d rounds played\n", again,
           timed_out, rounds);
    return 0;
}
