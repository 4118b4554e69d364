/* Calls whose results reach memory the syscall table first missed: copy_file_range,
 * sendfile and splice advance offsets passed by pointer; recvmmsg fills an array of
 * mmsghdrs (each with its msg_len) and the sender addresses; io_uring_setup is refused
 * with ENOSYS under rrgdb. Prints the offsets, the datagrams and the time. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void transfers(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/source", dir);
    int source = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < 100; i++)
        dprintf(source, "line %02d\n", i);
    snprintf(path, sizeof path, "%s/copy", dir);
    int copy = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    loff_t in = 8, out = 0;
    ssize_t copied = copy_file_range(source, &in, copy, &out, 24, 0);
    off_t sent_from = 40;
    ssize_t sent = sendfile(copy, source, &sent_from, 16);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        exit(1);
    loff_t spliced_from = 80;
    ssize_t spliced = splice(source, &spliced_from, pipefd[1], NULL, 32, 0);
    char piped[64] = {0};
    ssize_t got = read(pipefd[0], piped, sizeof piped - 1);
    printf("copy_file_range %zd: in %lld out %lld; sendfile %zd: from %lld; "
           "splice %zd: from %lld; piped %zd: %.8s\n",
           copied, (long long)in, (long long)out, sent, (long long)sent_from, spliced,
           (long long)spliced_from, got, piped);
}

static void datagrams(void)
{
    int sender = socket(AF_INET, SOCK_DGRAM, 0), receiver = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    bind(receiver, (struct sockaddr *)&address, sizeof address);
    getsockname(receiver, (struct sockaddr *)&address, &length);
    char stamp[32];
    snprintf(stamp, sizeof stamp, "%ld", (long)time(NULL));
    sendto(sender, "first", 5, 0, (struct sockaddr *)&address, sizeof address);
    sendto(sender, stamp, strlen(stamp), 0, (struct sockaddr *)&address, sizeof address);

    char payload[2][32] = {{0}};
    struct sockaddr_in from[2];
    struct iovec pieces[2] = {{payload[0], 31}, {payload[1], 31}};
    struct mmsghdr messages[2];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < 2; i++) {
        messages[i].msg_hdr.msg_name = &from[i];
        messages[i].msg_hdr.msg_namelen = sizeof from[i];
        messages[i].msg_hdr.msg_iov = &pieces[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec timeout = {5, 0};
    int n = recvmmsg(receiver, messages, 2, MSG_WAITFORONE, &timeout);
    for (int i = 0; i < n; i++)
        printf("datagram %d: %u bytes \"%s\" from port %d (namelen %u)\n", i,
               messages[i].msg_len, payload[i], ntohs(from[i].sin_port),
               messages[i].msg_hdr.msg_namelen);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: offset_transfers DIR\n");
        return 2;
    }
    transfers(argv[1]);
    datagrams();
    long ring = syscall(SYS_io_uring_setup, 4, calloc(1, 120));
    printf("io_uring_setup: %s\n", ring >= 0 ? "a ring" : strerror(errno));
    return 0;
}
