/* Leaves with exit(3) after printing the time, flushed by exit's stdio cleanup. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("leaving at %lld.%09ld with status 3\n", (long long)now.tv_sec, now.tv_nsec);
    exit(3);
}
