/* Loops that keep their counts in the heap, with the same registers at every turn.
 *
 * The first is ended by a timer signal that arrives while it computes: the recorder
 * parks the signal, stops the loop after 0.5 s and delivers the signal there; replay
 * must find that turn among the ~10^7 before it with the same registers and stack, which
 * only the count in memory tells apart (record/preemption.py's probe finds the count,
 * and PreemptFrame.watched holds it). The same with an inner loop whose registers come
 * back only every 100 visits, inside an outer one that counts in memory. Then a thread counts to a limit while the main
 * thread counts how long it waits: the scheduler preempts each of them mid-loop, and
 * replay must find those turns the same way. Prints the counts; replay must print them
 * too. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define LIMIT 2000000UL

static volatile sig_atomic_t done;

static void on_alarm(int sig)
{
    (void)sig;
    done = 1;
}

/* Adds 1 to *count until done is set; nothing but the count changes from turn to turn.
 * (The pause keeps turns few: replay runs each of them through its search's stub.) */
static void count_until_done(unsigned long *count)
{
    __asm__ volatile("1: addq $1, (%1)\n\t"
                     "pause\n\t"
                     "cmpl $0, %2\n\t"
                     "je 1b"
                     : "+m"(*count)
                     : "r"(count), "m"(done)
                     : "cc");
}

/* Adds 1 to *count, then runs an inner loop of 100 turns, until done is set: at the
 * inner loop's movabs the registers come back only every 100 visits (its count is in
 * rcx), and the outer count tells the turns of the outer loop apart. */
static void count_outer_turns_until_done(unsigned long *count)
{
    __asm__ volatile("1: addq $1, (%1)\n\t"
                     "mov $100, %%ecx\n\t"
                     "2: movabs $0x1122334455667788, %%rdx\n\t"
                     "dec %%ecx\n\t"
                     "jnz 2b\n\t"
                     "cmpl $0, %2\n\t"
                     "je 1b"
                     : "+m"(*count)
                     : "r"(count), "m"(done)
                     : "cc", "rcx", "rdx");
}

/* Adds 1 to *count until *watched reaches LIMIT. */
static void count_until(unsigned long *count, volatile unsigned long *watched)
{
    __asm__ volatile("1: addq $1, (%1)\n\t"
                     "pause\n\t"
                     "cmpq %3, (%2)\n\t"
                     "jb 1b"
                     : "+m"(*count)
                     : "r"(count), "r"(watched), "r"(LIMIT), "m"(*watched)
                     : "cc");
}

static void *count_to_limit(void *arg)
{
    count_until(arg, arg);
    return NULL;
}

int main(void)
{
    unsigned long *counts = calloc(3, sizeof *counts);
    signal(SIGALRM, on_alarm);
    struct itimerval timer = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &timer, NULL);
    count_until_done(&counts[0]);
    printf("alarm after %s turns\n", counts[0] > 1000 ? "many" : "few");
    printf("count %lu\n", counts[0]);
    done = 0;
    setitimer(ITIMER_REAL, &timer, NULL);
    count_outer_turns_until_done(&counts[0]);
    printf("outer turns %lu\n", counts[0]);

    pthread_t thread;
    pthread_create(&thread, NULL, count_to_limit, &counts[1]);
    count_until(&counts[2], &counts[1]);
    pthread_join(thread, NULL);
    printf("thread counted %lu, main waited %lu turns\n", counts[1], counts[2]);
    return 0;
}
