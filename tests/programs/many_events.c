/* Tens of thousands of traced events: reverse searches over it take seconds. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long sum = 0;
    for (int i = 0; i < 30000; i++)
        sum += syscall(SYS_getpgid, 0) & 1; /* traced (the buffer does not take it) */
    printf("sum %ld\n", sum);
    return 0;
}
