/* Handlers installed with SA_ONSTACK run on the alternate signal stack: for a signal sent
 * to itself (raise), for SIGALRM from a timer while blocked in pause() and while computing
 * (with a syscall now and then), and for the SIGSEGV of a stack overflow (which could not
 * run on the overflowed stack at all): by default on a 256 KiB stack of its own (a
 * ucontext) with a guard page, with the argument "rlimit" on the main stack after
 * setrlimit(RLIMIT_STACK, 256 KiB). Each handler checks that one of its locals lies inside
 * the alternate stack and that sigaltstack reports SS_ONSTACK; the "yes/no" lines are the
 * same on every run, the loop and recursion counts are not. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)
#define SMALL_STACK (256 * 1024)
#define GUARD 4096

static char *alt_base;
static volatile sig_atomic_t on_alt, fired;
static volatile unsigned long depth;
static sigjmp_buf overflow_exit;

/* 1 if this frame runs on the alternate stack (checked by address and by the kernel). */
static int running_on_alt_stack(void) {
    char local;
    uintptr_t here = (uintptr_t)&local;
    stack_t now;
    if (sigaltstack(NULL, &now) != 0)
        return 0;
    return here >= (uintptr_t)alt_base && here < (uintptr_t)alt_base + ALT_SIZE &&
           (now.ss_flags & SS_ONSTACK);
}

static void on_signal(int sig) {
    (void)sig;
    on_alt = running_on_alt_stack();
    fired++;
}

static void on_segv(int sig) {
    (void)sig;
    on_alt = running_on_alt_stack();
    siglongjmp(overflow_exit, 1);
}

static void install(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Recurses with a large frame until the stack limit is hit. */
static unsigned long recurse(unsigned long n) {
    volatile char frame[1024];
    frame[0] = (char)n;
    depth = n;
    if (n > (1UL << 40))
        return frame[0];
    return recurse(n + 1) + frame[0];
}

static void overflow(void) { recurse(1); }

/* Runs recurse() until the stack overflows: on a small stack of its own, or on the main
 * stack with a small stack limit. Returns normally only if it never overflowed. */
static void overflow_stack(int use_rlimit) {
    if (use_rlimit) {
        struct rlimit small = {SMALL_STACK, SMALL_STACK};
        setrlimit(RLIMIT_STACK, &small);
        recurse(1);
        return;
    }
    static ucontext_t main_ctx, small_ctx;
    char *region = mmap(NULL, GUARD + SMALL_STACK, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED || mprotect(region, GUARD, PROT_NONE) != 0 ||
        getcontext(&small_ctx) != 0)
        return;
    small_ctx.uc_stack.ss_sp = region + GUARD;
    small_ctx.uc_stack.ss_size = SMALL_STACK;
    small_ctx.uc_link = &main_ctx;
    makecontext(&small_ctx, overflow, 0);
    swapcontext(&main_ctx, &small_ctx);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alt_base = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt_base, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (alt_base == NULL || sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    install(SIGUSR1, on_signal);
    install(SIGALRM, on_signal);
    install(SIGSEGV, on_segv);

    printf("main on alternate stack: %s\n", running_on_alt_stack() ? "yes" : "no");

    raise(SIGUSR1);
    printf("raise(SIGUSR1): handler on alternate stack: %s\n", on_alt ? "yes" : "no");

    on_alt = 0;
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    pause();
    printf("SIGALRM in pause(): handler on alternate stack: %s\n", on_alt ? "yes" : "no");

    on_alt = 0;
    fired = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long n = 0, x = 1;
    while (!fired) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        if ((++n & 0xffff) == 0)
            getppid();
    }
    printf("SIGALRM while computing: handler on alternate stack: %s\n", on_alt ? "yes" : "no");
    printf("busy loop: %lu iterations (x=%lu)\n", n, x & 0xff);

    on_alt = 0;
    if (sigsetjmp(overflow_exit, 1) == 0) {
        overflow_stack(argc > 1 && strcmp(argv[1], "rlimit") == 0);
        printf("no overflow?\n");
        return 1;
    }
    printf("stack overflow: SIGSEGV handler on alternate stack: %s\n", on_alt ? "yes" : "no");
    printf("stack overflow after %lu frames\n", depth);
    printf("main on alternate stack: %s\n", running_on_alt_stack() ? "yes" : "no");
    return 0;
}
