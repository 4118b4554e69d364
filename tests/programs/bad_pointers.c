/* Buffered calls given bad pointers (an unmapped page, or memory that runs into a
 * PROT_NONE page): each fails with EFAULT, as natively, instead of faulting in rrgdb's
 * preload library. Outputs the kernel writes (read, stat, ..., recvfrom's data and
 * address, rt_sigprocmask's old mask, an interrupted sleep's time left), and arguments the
 * library reads itself: the path of an open, readv's iovec array, recvmsg's header and
 * iovec array, recvfrom's address length (writev's and sendmsg's only the kernel reads);
 * and a timeout the kernel leaves alone (read-only), which replay must not write either.
 * Prints each result. */
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void show(const char *name, long ret)
{
    printf("%s: %ld %s\n", name, ret, ret < 0 ? strerror(errno) : "");
}

static void on_alarm(int signo)
{
    (void)signo;
}

/* A SIGALRM in 2 ms, to interrupt the sleep of 1 s that follows (the kernel then writes
 * the time left). */
static void arm(void)
{
    struct itimerval once = {{0, 0}, {0, 2000}};
    setitimer(ITIMER_REAL, &once, NULL);
}

/* The last n bytes of the page before `end`, whose next page is PROT_NONE. */
static void *before(char *end, size_t n)
{
    return end - n;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* each line out before the next call */
    /* a page that is mapped nowhere: mapped, then unmapped */
    char *bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(bad, 4096);
    /* a page whose next page is PROT_NONE: what starts at its end runs into a fault */
    char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(page + 4096, 4096, PROT_NONE);
    char *end = page + 4096;
    int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY), pipes[2],
        socks[2];
    pipe(pipes);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, socks);
    /* the sender gets a name (autobind): a recvfrom has an address to write */
    struct sockaddr any = {.sa_family = AF_UNIX};
    bind(socks[0], &any, sizeof any.sa_family);
    struct sigaction alarm_action = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &alarm_action, NULL);
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

        /* arguments the library itself reads */
        show("open", open(bad, O_RDONLY));
        show("openat", openat(AT_FDCWD, bad, O_RDONLY));
        memcpy(before(end, 4), "/dev", 4); /* no terminating NUL before the fault */
        show("open /dev...", open(before(end, 4), O_RDONLY));
        memcpy(before(end, 3), "/tm", 3);
        show("openat /tm...", openat(AT_FDCWD, before(end, 3), O_RDONLY));
        int fd = open("/dev/null", O_RDONLY); /* a path that may name stdio: still fine */
        show("open /dev/null", fd >= 0 ? 0 : fd);
        close(fd);
        show("readv bad array", readv(zero, (struct iovec *)bad, 2));
        struct iovec *last = before(end, sizeof *last);
        *last = (struct iovec){&byte, 1}; /* the second piece is in the PROT_NONE page */
        show("readv array into fault", readv(zero, last, 2));
        show("writev bad array", writev(null, (struct iovec *)bad, 2));
        show("recvmsg bad header", recvmsg(socks[1], (struct msghdr *)bad, MSG_DONTWAIT));
        struct msghdr *header = before(end, 40); /* ends inside msg_controllen */
        memset(header, 0, 40);
        show("recvmsg header into fault", recvmsg(socks[1], header, MSG_DONTWAIT));
        struct msghdr message = {.msg_iov = (struct iovec *)bad, .msg_iovlen = 2};
        show("recvmsg bad array", recvmsg(socks[1], &message, MSG_DONTWAIT));
        show("sendmsg bad header", sendmsg(socks[0], (struct msghdr *)bad, 0));
        char data[16];
        struct sockaddr_storage from;
        socklen_t size = sizeof from;
        send(socks[0], "datagram", 8, 0);
        show("recvfrom bad length", recvfrom(socks[1], data, sizeof data, 0,
                                             (struct sockaddr *)&from, (socklen_t *)bad));
        send(socks[0], "datagram", 8, 0);
        show("recvfrom bad address", recvfrom(socks[1], data, sizeof data, 0,
                                              (struct sockaddr *)bad, &size));
        send(socks[0], "datagram", 8, 0);
        size = sizeof from;
        show("recvfrom bad buffer", recvfrom(socks[1], bad, 8, 0, (struct sockaddr *)&from,
                                             &size));
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        /* (blocks SIGUSR2 before it fails: the old mask is written last) */
        show("sigprocmask bad old", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &usr2, bad, 8));
        sigset_t now;
        sigprocmask(SIG_BLOCK, NULL, &now);
        printf("SIGUSR2 blocked after it: %d\n", sigismember(&now, SIGUSR2));
        sigprocmask(SIG_UNBLOCK, &usr2, NULL);
        /* a timeout in read-only memory, which the kernel leaves as it is when it cannot
           write the time left back (or has none to write): not an error */
        static const struct timespec instant = {0, 0}, moment = {0, 1000};
        struct pollfd waiting = {pipes[0], POLLIN, 0};
        write(pipes[1], "x", 1);
        show("ppoll read-only timeout", syscall(SYS_ppoll, &waiting, 1, &instant, NULL, 8));
        show("ppoll read-only timeout", syscall(SYS_ppoll, &waiting, 1, &moment, NULL, 8));
        show("read pipe", read(pipes[0], &byte, 1));
        struct timespec second = {1, 0};
        arm();
        show("nanosleep bad time left", syscall(SYS_nanosleep, &second, bad));
        arm();
        show("clock_nanosleep bad time left",
             syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &second, bad));
    }
    return 0;
}
