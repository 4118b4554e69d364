/* Buffered calls given bad pointers (an unmapped page): each fails with EFAULT, as
 * natively, instead of faulting in rrgdb's preload library. Prints each result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void show(const char *name, long ret)
{
    printf("%s: %ld %s\n", name, ret, ret < 0 ? strerror(errno) : "");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* each line out before the next call */
    /* a page that is mapped nowhere: mapped, then unmapped */
    char *bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(bad, 4096);
    int zero = open("/dev/zero", O_RDONLY), pipes[2], socks[2];
    pipe(pipes);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, socks);
    for (int round = 0; round < 20; round++) {
        show("read", read(zero, bad, 64));
        show("pread", pread(zero, bad, 64, 0));
        struct iovec pieces[2] = {{bad, 16}, {bad + 16, 16}};
        show("readv", readv(zero, pieces, 2));
        show("getdents64", syscall(SYS_getdents64, open(".", O_RDONLY | O_DIRECTORY), bad, 4096));
        show("getrandom", getrandom(bad, 16, 0));
        show("fstat", fstat(zero, (struct stat *)bad));
        show("stat", stat("/", (struct stat *)bad));
        show("statx", syscall(SYS_statx, AT_FDCWD, "/", 0, STATX_BASIC_STATS, bad));
        show("clock_gettime", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, bad));
        show("gettimeofday", syscall(SYS_gettimeofday, bad, NULL));
        show("time", syscall(SYS_time, bad));
        show("rt_sigaction", syscall(SYS_rt_sigaction, SIGUSR1, NULL, bad, 8));
        write(pipes[1], "x", 1);
        show("FIONREAD", ioctl(pipes[0], FIONREAD, bad));
        int ep = epoll_create1(0);
        struct epoll_event ready = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, pipes[0], &ready);
        show("epoll_wait", epoll_wait(ep, (struct epoll_event *)bad, 4, 0));
        close(ep);
        show("poll", poll((struct pollfd *)bad, 1, 0));
        send(socks[0], "datagram", 8, 0);
        show("recv", recv(socks[1], bad, 8, 0));
        show("sigprocmask", syscall(SYS_rt_sigprocmask, SIG_BLOCK, bad, NULL, 8));
        char byte;
        show("read pipe", read(pipes[0], &byte, 1));
    }
    return 0;
}
