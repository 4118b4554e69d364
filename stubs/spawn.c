/* The spawn helper: fork a child that becomes a tracee and execs PROGRAM.
 *
 * Nothing Python runs between fork and execve: the child asks to be traced,
 * disables address-space randomisation, makes rdtsc/rdtscp fault (so the
 * recorder can emulate and record them), applies the requested resource limits
 * and working directory, stops itself so the tracer can set its ptrace options,
 * and finally execs.  If execve fails the child exits with status 127 after
 * writing errno to err_fd (if err_fd >= 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "spawn.h"

int rrgdb_spawn(const char *path, char *const argv[], char *const envp[],
                const char *cwd, const struct rrgdb_spawn_options *options,
                int err_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* parent: child pid, or -1 with errno */

    if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
        _exit(126);
    personality(ADDR_NO_RANDOMIZE);
    prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0);
    if (options->stack_hard) { /* 0 = leave the stack limit alone */
        struct rlimit stack = {options->stack_soft, options->stack_hard};
        setrlimit(RLIMIT_STACK, &stack);
    }
    if (options->no_core) {
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
    }
    if (cwd && chdir(cwd) < 0) {
        int e = errno;
        if (err_fd >= 0 && write(err_fd, &e, sizeof e) < 0) {
        }
        _exit(127);
    }
    /* Reset the signal state the tracer may have (Python ignores SIGPIPE, rrgdb record
     * SIGINT), but for the signals the program must inherit ignored (as under nohup). */
    for (int sig = 1; sig < 65; sig++)
        signal(sig, options->ignored >> (sig - 1) & 1 ? SIG_IGN : SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    raise(SIGSTOP);
    execve(path, argv, envp);
    int e = errno;
    if (err_fd >= 0 && write(err_fd, &e, sizeof e) < 0) {
    }
    _exit(127);
}
