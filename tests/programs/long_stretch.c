/* A long computation without a syscall (about a hundred million instructions at -O0),
 * then a call, then another, then a raw syscall: going back one instruction from the
 * callee's entry, or from just after the syscall, must start near it, not single-step
 * through the computation. */
#include <stdio.h>
#include <sys/utsname.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long leaf(unsigned long x) {
    return x * 3 + 1; /* L:leaf */
}

static unsigned long compute(unsigned long seed) {
    unsigned long acc = seed;
    for (unsigned long i = 0; i < 20000000; i++)
        acc = acc * 31 + i;
    return acc;
}

int main(void) {
    struct utsname name;
    long result;
    sink = leaf(compute(1)); /* L:call */
    sink += compute(sink); /* L:again */
    __asm__ volatile("syscall\n.globl after_uname\nafter_uname:" /* L:raw */
                     : "=a"(result)
                     : "0"(63L), "D"(&name)
                     : "rcx", "r11", "memory");
    printf("uname=%ld %s %lu\n", result, name.sysname, sink);
    return 0;
}
