/* Runs cpuid for leaf 0 (vendor), leaf 1 (features, APIC id in EBX) and leaf 0xb
 * subleaf 0 (x2APIC id in EDX) and prints each answer as
 * "cpuid LEAF SUBLEAF: EAX EBX ECX EDX" in hex, then the vendor string it read.
 * The one cpuid instruction of its own is at the global label cpuid_insn (for gdb). */
#include <stdio.h>
#include <string.h>

static unsigned int regs[3][4];

static __attribute__((noinline)) void ask(int slot, unsigned int leaf, unsigned int subleaf)
{
    unsigned int *r = regs[slot];
    __asm__ volatile(".globl cpuid_insn\ncpuid_insn: cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(subleaf));
}

int main(void)
{
    static const unsigned int leaves[3][2] = {{0, 0}, {1, 0}, {0xb, 0}};
    for (int i = 0; i < 3; i++)
        ask(i, leaves[i][0], leaves[i][1]);
    for (int i = 0; i < 3; i++)
        printf("cpuid %x %x: %08x %08x %08x %08x\n", leaves[i][0], leaves[i][1],
               regs[i][0], regs[i][1], regs[i][2], regs[i][3]);
    char vendor[13];
    memcpy(vendor, &regs[0][1], 4);
    memcpy(vendor + 4, &regs[0][3], 4);
    memcpy(vendor + 8, &regs[0][2], 4);
    vendor[12] = 0;
    printf("vendor %s\n", vendor);
    return 0;
}
