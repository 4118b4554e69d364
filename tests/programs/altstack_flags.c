/* Prints the alternate-stack flags the kernel puts in a signal frame (uc_stack.ss_flags):
 * natively 0 in a process that never set an alternate stack, 2 (SS_DISABLE) in one made
 * by a clone with CLONE_VM but without CLONE_VFORK, and kept across exec; under rrgdb 2,
 * the alternate stack being turned off at exec. */
#include <signal.h>
#include <stdio.h>
#include <ucontext.h>

static volatile int flags = -1;

static void on_usr1(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    flags = ((ucontext_t *)context)->uc_stack.ss_flags;
}

int main(void)
{
    struct sigaction action = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &action, NULL);
    raise(SIGUSR1);
    printf("uc_stack.ss_flags in a handler: %d\n", flags);
    return 0;
}
