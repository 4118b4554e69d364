/* execve in a process with other threads, as rustup's proxy does when it runs rustc: the
 * kernel kills the other threads wherever they are (one blocked in epoll_wait, one in
 * pause, one computing without syscalls), each exits with status 0, then the new program
 * prints the time. With an argument "from-thread" a non-leader thread makes the execve
 * (the kernel then gives it the leader's tid). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long turns;

static void *computing(void *arg)
{
    for (;;)
        turns++;
    return arg;
}

static void *polling(void *arg)
{
    int poller = epoll_create1(0);
    struct epoll_event event;
    for (;;) {
        epoll_wait(poller, &event, 1, -1);
        struct timespec now; /* the next syscall, if the wait ever returned */
        clock_gettime(CLOCK_MONOTONIC, &now);
    }
    return arg;
}

static void *pausing(void *arg)
{
    for (;;)
        pause();
    return arg;
}

static void *exec_self(void *arg)
{
    usleep(20000);
    printf("execve from %s\n", arg ? "a thread" : "the main thread");
    fflush(stdout);
    execl("/proc/self/exe", "exec_threads", "after", (char *)NULL);
    perror("execl");
    return arg;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "after") == 0) {
        printf("after execve: time %ld\n", (long)time(NULL));
        return 0;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, computing, NULL);
    pthread_create(&thread, NULL, polling, NULL);
    pthread_create(&thread, NULL, pausing, NULL);
    if (argc > 1 && strcmp(argv[1], "from-thread") == 0) {
        pthread_create(&thread, NULL, exec_self, argv[1]);
        for (;;)
            pause();
    }
    exec_self(NULL);
    return 1;
}
