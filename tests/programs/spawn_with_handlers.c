/* posix_spawn from a process with signal handlers, as make runs its recipes. The child,
 * which shares the parent's memory until it execs, blocks every signal and resets the
 * dispositions of the blocked ones by querying each: replay, whose injected syscalls end
 * in a trap, must leave SIGTRAP blocked as the recording had it. Then the same check in
 * the parent, with every signal blocked around a call replay runs for real (mmap). */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void on_signal(int sig)
{
    (void)sig;
}

int main(void)
{
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGUSR1, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    for (int i = 0; i < 3; i++) {
        pid_t child;
        char *argv[] = {"true", NULL};
        if (posix_spawn(&child, "/bin/true", NULL, NULL, argv, environ) != 0)
            return 1;
        int status;
        waitpid(child, &status, 0);
        printf("spawned /bin/true: status %d\n", status);
    }
    sigset_t all, now;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("SIGTRAP %s after mmap (%s)\n", sigismember(&now, SIGTRAP) ? "blocked" : "unblocked",
           page == MAP_FAILED ? "failed" : "mapped");
    return 0;
}
