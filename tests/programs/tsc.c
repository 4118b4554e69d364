/* Reads the time-stamp counter with rdtsc and rdtscp. */
#include <stdio.h>
#include <x86intrin.h>

int main(void)
{
    unsigned int aux = 0;
    unsigned long long first = __rdtsc();
    unsigned long long second = __rdtscp(&aux);
    unsigned long long third = __rdtsc();

    printf("rdtsc   %llu\n", first);
    printf("rdtscp  %llu aux=%u\n", second, aux);
    printf("rdtsc   %llu\n", third);
    printf("ordered %d\n", first <= second && second <= third);
    return 0;
}
