/* Signal-mask changes the syscall buffer answers (rt_sigprocmask with a new set), and the
 * signals they let through. Usage: buffered_masks [ROUNDS]; prints a summary (what may
 * differ between runs in parentheses).
 * - rounds of block, query, unblock: the queries must see each change;
 * - a signal raised while blocked runs its handler before the unblocking call returns
 *   (POSIX), every time;
 * - a signal sent (a traced kill) after an unblocking call must find it unblocked, in
 *   replay too, where the buffered calls make no syscall;
 * - the handler's saved mask (the one sigreturn restores) is the mask of the moment;
 * - a timer's signals arrive during buffered changes (how many varies). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled, ticks;

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

static sigset_t just(int sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return set;
}

static int blocked(int sig)
{
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, sig);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    sigset_t usr1 = just(SIGUSR1), usr2 = just(SIGUSR2), alarm = just(SIGALRM), old;
    struct sigaction catch = {0};
    catch.sa_handler = on_usr1;
    sigaction(SIGUSR1, &catch, NULL);

    long seen_blocked = 0, seen_unblocked = 0;
    for (int i = 0; i < rounds; i++) {
        sigprocmask(SIG_BLOCK, &usr2, &old);
        seen_blocked += blocked(SIGUSR2) && !sigismember(&old, SIGUSR2);
        sigprocmask(i % 2 ? SIG_UNBLOCK : SIG_SETMASK, i % 2 ? &usr2 : &old, NULL);
        seen_unblocked += !blocked(SIGUSR2);
    }

    long before_return = 0, held = 0;
    for (int i = 0; i < 20; i++) {
        int at_start = handled;
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        raise(SIGUSR1);
        held += handled == at_start;
        sigprocmask(SIG_UNBLOCK, &usr1, NULL);
        before_return += handled == at_start + 1;
    }

    long after_unblock = 0;
    for (int i = 0; i < 20; i++) {
        int at_start = handled;
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        sigprocmask(SIG_UNBLOCK, &usr1, NULL);
        kill(getpid(), SIGUSR1);
        after_unblock += handled == at_start + 1;
    }

    struct sigaction tick = {0};
    tick.sa_handler = on_alarm;
    sigaction(SIGALRM, &tick, NULL);
    struct itimerval every = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &every, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long changes = 0;
    do {
        sigprocmask(SIG_BLOCK, &alarm, NULL);
        sigprocmask(SIG_UNBLOCK, &alarm, NULL);
        changes += 2;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec
             < 50000000L);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigprocmask(SIG_BLOCK, &alarm, NULL);

    printf("%d rounds: %ld blocked, %ld unblocked; 20 raised: %ld held, %ld handled before "
           "unblocking returned; 20 sent: %ld handled; (%ld changes, %d ticks)\n",
           rounds, seen_blocked, seen_unblocked, held, before_return, after_unblock, changes,
           (int)ticks);
    return 0;
}
