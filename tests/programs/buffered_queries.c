/* Calls the syscall buffer answers without a ptrace stop: signal-state queries
 * (sigaction without a new action, sigprocmask without a new set, and libc's own in
 * sigsetjmp, which saves the mask), gettimeofday and getpid (also libc's own, in raise).
 * Every round also changes a disposition (traced) and the mask (buffered too): the
 * queries must see each change. Usage: buffered_queries [ROUNDS]; prints a summary (what may
 * differ between runs in parentheses). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_signal(int sig)
{
    (void)sig;
    handled++;
}

/* Whether sigsetjmp saved sig as blocked. */
static int saved_blocked(int sig)
{
    sigjmp_buf env;
    sigsetjmp(env, 1);
    return sigismember((sigset_t *)&env[0].__saved_mask, sig);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    long handlers = 0, ignored = 0, blocked = 0, saved = 0, same_pid = 0, odd_usec = 0;
    pid_t pid = getpid();
    struct timeval tv = {0, 0};
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    for (int i = 0; i < rounds; i++) {
        struct sigaction change = {0};
        change.sa_handler = i % 2 ? SIG_IGN : on_signal;
        sigaction(SIGUSR1, &change, NULL);
        sigprocmask(i % 2 ? SIG_UNBLOCK : SIG_BLOCK, &usr2, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction now;
            if (sigaction(sig, NULL, &now) != 0)
                continue; /* libc's own signals */
            handlers += now.sa_handler == on_signal;
            ignored += now.sa_handler == SIG_IGN;
        }
        sigset_t mask;
        sigprocmask(SIG_SETMASK, NULL, &mask);
        blocked += sigismember(&mask, SIGUSR2);
        saved += saved_blocked(SIGUSR2);
        gettimeofday(&tv, NULL);
        odd_usec += tv.tv_usec % 2;
        same_pid += getpid() == pid;
    }
    struct sigaction catch = {0};
    catch.sa_handler = on_signal;
    sigaction(SIGUSR1, &catch, NULL);
    raise(SIGUSR1);
    printf("pid (%d), %d rounds: %ld handled, %ld ignored, %ld blocked, %ld saved, "
           "%ld same pid\n", (int)pid, rounds, handlers, ignored, blocked, saved, same_pid);
    printf("time (%ld.%06ld, %ld odd microseconds), %d signal handled\n", (long)tv.tv_sec,
           (long)tv.tv_usec, odd_usec, (int)handled);
    return 0;
}
