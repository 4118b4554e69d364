/* Calls a function three times with every signal blocked, then asks for its mask with a
 * call that also changes it (traced: replay runs it for real). A debugger's breakpoint on
 * the function traps: the replay must leave SIGTRAP blocked. */
#include <signal.h>
#include <stdio.h>

__attribute__((noinline)) void inside(int round)
{
    __asm__ volatile("" : : "r"(round) : "memory");
}

int main(void)
{
    sigset_t all, none, old;
    sigfillset(&all);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int i = 0; i < 3; i++)
        inside(i);
    sigprocmask(SIG_BLOCK, &none, &old);
    printf("SIGTRAP %s\n", sigismember(&old, SIGTRAP) ? "blocked" : "unblocked");
    return 0;
}
