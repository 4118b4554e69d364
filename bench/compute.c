/* Compute-bound: N rounds of an xorshift generator mixed into a small table, with no
 * syscalls in the loop (N = argv[1], default 400000000, about a second natively). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 400000000L;
    uint64_t x = 88172645463325252ULL, table[64] = {0};

    for (long i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        table[x & 63] += x >> 32;
    }
    uint64_t sum = 0;
    for (int i = 0; i < 64; i++)
        sum ^= table[i] * (uint64_t)(i + 1);
    printf("%016llx\n", (unsigned long long)sum);
    return 0;
}
