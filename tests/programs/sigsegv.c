/* Faults on purpose, twice, and recovers each time from a SIGSEGV handler with
 * siglongjmp; prints what the handler saw in si_addr. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf recover;
static void *volatile fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)context;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(recover, 1);
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        return 1;

    char *guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard == MAP_FAILED)
        return 1;

    for (volatile int round = 0; round < 2; round++) {
        volatile char *volatile target = round == 0 ? guard + 123 : (char *)(uintptr_t)0x10;
        if (sigsetjmp(recover, 1) == 0) {
            *target = 1;
            printf("round %d: no fault\n", round);
        } else {
            char *addr = fault_addr;
            int in_guard = addr >= guard && addr < guard + 4096;
            printf("round %d: fault at %p in_guard=%d offset=%ld code=%d\n", round,
                   (void *)addr, in_guard, in_guard ? (long)(addr - guard) : -1L, fault_code);
        }
    }
    printf("guard %p\n", (void *)guard);
    return 0;
}
