/* Prints the process's identity as the kernel reports it. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    pid_t pid = getpid();

    printf("pid  %d\n", (int)pid);
    printf("ppid %d\n", (int)getppid());
    printf("tid  %ld\n", (long)syscall(SYS_gettid));
    printf("same %d\n", (long)pid == syscall(SYS_gettid));
    return 0;
}
