/* Messages the syscall buffer records without a ptrace stop: sendmsg and recvmsg of UDP
 * datagrams on the loopback (recvmsg fills in the source address; one datagram is
 * truncated), into several pieces; and getifaddrs, whose netlink replies libc reads with
 * recvmsg. A pipe's fd passed over a Unix socket (SCM_RIGHTS, which creates an fd) stays
 * traced, and the program reads from the fd it received; so does a sendmmsg of two.
 * Usage: buffered_messages [ROUNDS]; prints a summary (what may differ between runs in
 * parentheses). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int udp_socket(struct sockaddr_in *address)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t size = sizeof *address;
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)address, sizeof *address) ||
        getsockname(fd, (struct sockaddr *)address, &size))
        return -1;
    return fd;
}

/* Sends an fd over a Unix socket and returns the one received (-1 on failure). */
static int pass_fd(int fd)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair))
        return -1;
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    char byte = 'f';
    struct iovec piece = {&byte, 1};
    struct msghdr msg = {NULL, 0, &piece, 1, control.bytes, sizeof control.bytes, 0};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(pair[0], &msg, 0) != 1)
        return -1;
    memset(&control, 0, sizeof control);
    if (recvmsg(pair[1], &msg, 0) != 1 || !(c = CMSG_FIRSTHDR(&msg)) || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int received;
    memcpy(&received, CMSG_DATA(c), sizeof received);
    close(pair[0]);
    close(pair[1]);
    return received;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    struct sockaddr_in a_address, b_address;
    int a = udp_socket(&a_address), b = udp_socket(&b_address);
    if (a < 0 || b < 0)
        return 1;
    long bytes = 0, from_a = 0, truncated = 0;
    for (int i = 0; i < rounds; i++) {
        char head[16], body[64];
        int n = snprintf(body, sizeof body, "datagram %d", i);
        struct iovec out[2] = {{head, (size_t)snprintf(head, sizeof head, "%04d:", n)},
                               {body, (size_t)n}};
        struct msghdr send = {&b_address, sizeof b_address, out, 2, NULL, 0, 0};
        if (sendmsg(a, &send, 0) < 0)
            return 2;
        char x[3], y[5], z[100];
        struct iovec in[3] = {{x, sizeof x}, {y, sizeof y}, {z, sizeof z}};
        struct sockaddr_in source;
        struct msghdr receive = {&source, sizeof source, in, 3, NULL, 0, 0};
        ssize_t got = recvmsg(b, &receive, 0);
        bytes += got;
        from_a += receive.msg_namelen == sizeof source && source.sin_port == a_address.sin_port
                  && got > 8 && memcmp(x, "00", 2) == 0 && memcmp(z, body + 3, 4) == 0;
        /* too long for the pieces: MSG_TRUNC says so, and returns the full length */
        sendmsg(a, &send, 0);
        struct msghdr small = {NULL, 0, in, 1, NULL, 0, 0};
        truncated += recvmsg(b, &small, MSG_TRUNC) == (ssize_t)(out[0].iov_len + out[1].iov_len)
                     && small.msg_flags & MSG_TRUNC;
    }
    printf("%d rounds: %ld bytes, %ld from a (port %d), %ld truncated\n", rounds, bytes,
           from_a, ntohs(a_address.sin_port), truncated);

    int interfaces = 0;
    for (int i = 0; i < 5; i++) {
        struct ifaddrs *list;
        if (getifaddrs(&list))
            return 3;
        interfaces = 0;
        for (struct ifaddrs *p = list; p; p = p->ifa_next)
            interfaces += p->ifa_addr && p->ifa_addr->sa_family == AF_INET;
        freeifaddrs(list);
    }
    printf("%d interfaces with an IPv4 address\n", interfaces);

    int pipe_fds[2];
    char text[32] = "";
    if (pipe(pipe_fds) || write(pipe_fds[1], "through a passed fd", 19) != 19)
        return 4;
    int passed = pass_fd(pipe_fds[0]);
    ssize_t n = passed < 0 ? -1 : read(passed, text, sizeof text - 1);
    printf("received fd %s, read %zd bytes: %s\n", passed > pipe_fds[1] ? "new" : "wrong", n,
           text);

    /* sendmmsg, as libc's resolver sends its queries (traced): the kernel sets each
     * message's msg_len */
    struct iovec one = {"first", 5}, two = {"second!", 7};
    struct mmsghdr batch[2] = {{{&b_address, sizeof b_address, &one, 1, NULL, 0, 0}, 0},
                               {{&b_address, sizeof b_address, &two, 1, NULL, 0, 0}, 0}};
    int sent = sendmmsg(a, batch, 2, 0);
    char got[16];
    ssize_t first = recv(b, got, sizeof got, 0), second = recv(b, got, sizeof got, 0);
    printf("sendmmsg sent %d: lengths %u and %u, received %zd and %zd\n", sent,
           batch[0].msg_len, batch[1].msg_len, first, second);
    return 0;
}
