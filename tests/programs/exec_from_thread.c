/* execve from a thread other than the leader (Go's syscall.Exec may run on any thread):
 * the kernel kills the leader and the other threads wherever they are and gives the
 * exec'ing thread the leader's tid. The argument says what the leader does meanwhile:
 * "join" (blocked in pthread_join of the exec'ing thread), "compute" (a loop without
 * syscalls) or "exited" (it left with pthread_exit before). A thread in pause is there
 * too. The new program says whether it kept the process's pid, and prints the time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long turns;

static void *pausing(void *arg)
{
    for (;;)
        pause();
    return arg;
}

static void *exec_self(void *arg)
{
    usleep(20000);
    printf("execve from a thread, the leader in %s\n", (const char *)arg);
    fflush(stdout);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", getpid());
    /* thread-self: after the leader's pthread_exit, /proc/self/exe cannot be read */
    execl("/proc/thread-self/exe", "exec_from_thread", "after", pid, (char *)NULL);
    perror("execl");
    return arg;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "after") == 0 && argc > 2) {
        printf("after execve: pid %s, time %ld\n",
               getpid() == atoi(argv[2]) ? "kept" : "changed", (long)time(NULL));
        return 0;
    }
    pthread_t paused, execing;
    pthread_create(&paused, NULL, pausing, NULL);
    pthread_create(&execing, NULL, exec_self, argv[1]);
    if (strcmp(argv[1], "join") == 0)
        pthread_join(execing, NULL);
    else if (strcmp(argv[1], "compute") == 0)
        for (;;)
            turns++;
    else if (strcmp(argv[1], "exited") == 0)
        pthread_exit(NULL);
    return 1;
}
