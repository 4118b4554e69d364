/* Waits the syscall buffer records without a ptrace stop: poll, ppoll, epoll_wait and
 * epoll_pwait with timeouts, on a pipe that is ready (none of them waits) and on an empty
 * one (they time out); then each one blocking until a child writes the pipe 20 ms
 * later. ppoll and epoll_pwait with a signal mask stay traced.
 * Usage: buffered_polls [ROUNDS]; prints a summary (what may differ between runs in
 * parentheses). */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { POLL, PPOLL, EPOLL_WAIT, EPOLL_PWAIT, WAYS };
static const char *const names[WAYS] = {"poll", "ppoll", "epoll_wait", "epoll_pwait"};

/* Waits for fd to be readable, one of four ways, for at most ms (-1: no limit); returns
 * the number of ready fds (or events). */
static int wait_for(int way, int fd, int epoll, int ms, const sigset_t *mask)
{
    struct pollfd p = {fd, POLLIN, 0};
    struct timespec limit = {ms / 1000, ms % 1000 * 1000000L};
    struct epoll_event events[4];
    switch (way) {
    case POLL:
        return poll(&p, 1, ms);
    case PPOLL:
        return ppoll(&p, 1, ms < 0 ? NULL : &limit, mask);
    case EPOLL_WAIT:
        return epoll_wait(epoll, events, 4, ms);
    default:
        return epoll_pwait(epoll, events, 4, ms, mask);
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    int ready[2], empty[2];
    if (pipe(ready) || pipe(empty))
        return 1;
    int epoll_ready = epoll_create1(0), epoll_empty = epoll_create1(0);
    struct epoll_event in = {.events = EPOLLIN};
    in.data.fd = ready[0];
    epoll_ctl(epoll_ready, EPOLL_CTL_ADD, ready[0], &in);
    in.data.fd = empty[0];
    epoll_ctl(epoll_empty, EPOLL_CTL_ADD, empty[0], &in);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    write(ready[1], "x", 1);

    long found[WAYS] = {0}, masked = 0, timeouts = 0;
    for (int i = 0; i < rounds; i++) {
        for (int way = 0; way < WAYS; way++) {
            found[way] += wait_for(way, ready[0], epoll_ready, 1000, NULL);
            timeouts += wait_for(way, empty[0], epoll_empty, 0, NULL) == 0;
        }
        masked += wait_for(PPOLL, ready[0], epoll_ready, 1000, &mask);
        masked += wait_for(EPOLL_PWAIT, ready[0], epoll_ready, 1000, &mask);
    }
    for (int way = 0; way < WAYS; way++)
        timeouts += wait_for(way, empty[0], epoll_empty, 5, NULL) == 0;
    printf("%d rounds: ready %ld %ld %ld %ld, %ld with a mask, %ld timeouts\n", rounds,
           found[POLL], found[PPOLL], found[EPOLL_WAIT], found[EPOLL_PWAIT], masked, timeouts);

    for (int way = 0; way < WAYS; way++) {
        pid_t child = fork();
        if (child == 0) {
            struct timespec later = {0, 20000000};
            nanosleep(&later, NULL);
            write(empty[1], "y", 1);
            _exit(0);
        }
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        int got = wait_for(way, empty[0], epoll_empty, way == EPOLL_PWAIT ? 5000 : -1, NULL);
        clock_gettime(CLOCK_MONOTONIC, &end);
        long ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
        char byte = 0;
        read(empty[0], &byte, 1);
        int status = -1;
        waitpid(child, &status, 0);
        printf("%s waited for the child: %d ready, read '%c', child status %d (%ld ms)\n",
               names[way], got, byte, status, ms);
    }
    return 0;
}
