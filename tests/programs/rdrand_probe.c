/* Asks cpuid whether the CPU has RDRAND (leaf 1 ECX bit 30) and RDSEED (leaf 7 EBX bit 18),
 * as libstdc++'s std::random_device does, and uses them if so: their numbers come from
 * the CPU, so a recording that saw them could not be replayed (the replayed program drew
 * other numbers and printed them, with no divergence reported). Under rrgdb cpuid says
 * neither exists, and the program reads getrandom() instead. Prints what it saw and one
 * random number (different on every run, the same in replay). With the argument "always"
 * it uses RDRAND without asking (on a CPU that has it): replay cannot give it the
 * recorded number, and must say so at the write that prints it. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static int has_rdrand(void)
{
    unsigned int a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_RDRND);
}

static int has_rdseed(void)
{
    unsigned int a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_RDSEED);
}

__attribute__((target("rdrnd"))) static unsigned long long from_rdrand(void)
{
    unsigned long long value = 0;
    while (!__builtin_ia32_rdrand64_step(&value))
        ;
    return value;
}

int main(int argc, char **argv)
{
    int always = argc > 1 && strcmp(argv[1], "always") == 0;
    int rdrand = always || has_rdrand(), rdseed = has_rdseed();
    unsigned long long value = 0;
    if (rdrand)
        value = from_rdrand();
    else if (getrandom(&value, sizeof value, 0) != sizeof value)
        return 1;
    printf("rdrand: %s, rdseed: %s\nrandom: %llx\n", rdrand ? "yes" : "no",
           rdseed ? "yes" : "no", value);
    return 0;
}
