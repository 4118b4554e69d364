/* Prints, then execve()s the program and arguments given on its command line (whose
 * output follows), so one recording spans two executables. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    struct timespec now;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    printf("before exec: pid %d at %lld.%09ld\n", (int)getpid(), (long long)now.tv_sec,
           now.tv_nsec);
    fflush(stdout);
    execve(argv[1], &argv[1], environ);
    perror("execve");
    return 127;
}
