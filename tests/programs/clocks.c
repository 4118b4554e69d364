/* Reads every clock a program can reach without an obvious syscall (the vDSO ones). */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

int main(void)
{
    time_t now = time(NULL);
    struct timespec realtime, monotonic, later;
    struct timeval tv;

    clock_gettime(CLOCK_REALTIME, &realtime);
    clock_gettime(CLOCK_MONOTONIC, &monotonic);
    gettimeofday(&tv, NULL);
    clock_gettime(CLOCK_MONOTONIC, &later);

    printf("time()          %lld\n", (long long)now);
    printf("CLOCK_REALTIME  %lld.%09ld\n", (long long)realtime.tv_sec, realtime.tv_nsec);
    printf("CLOCK_MONOTONIC %lld.%09ld\n", (long long)monotonic.tv_sec, monotonic.tv_nsec);
    printf("gettimeofday    %lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
    printf("monotonic delta %lld ns\n",
           (long long)(later.tv_sec - monotonic.tv_sec) * 1000000000LL
               + (later.tv_nsec - monotonic.tv_nsec));
    return 0;
}
