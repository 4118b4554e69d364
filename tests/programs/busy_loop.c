/* A loop of 50000 iterations with no syscall in it, between two printf calls: reverse
 * stepping inside it has no event nearby to start from (tests/test_gdb_reverse.py). */
#include <stdio.h>

volatile long sink;

int main(void)
{
    long sum = 0;
    long i;

    printf("start\n");
    for (i = 0; i < 50000; i++) /* L:loop-head */
        sum += i * 3;           /* L:loop-body */
    sink = sum;                 /* L:after-loop */
    printf("sum %ld\n", sum);
    return 0;
}
