/* Computation between syscalls the syscall buffer handles (read, write, clock_gettime on
 * fds > 2): gdb must stop, step and reverse here exactly as without the buffer. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static long total;

static long mix(long value, long salt)
{
    long out = value * 31 + salt; /* L:mix-body */
    return out ^ (out >> 7);
}

int main(void)
{
    char buf[64];
    int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
    if (in < 0 || out < 0)
        return 1;
    for (int i = 0; i < 50; i++) {
        ssize_t got = read(in, buf, sizeof buf); /* L:read */
        buf[i % 64] = (char)i; /* L:store */
        total = mix(total, got + buf[i % 64]); /* L:mix-call */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (write(out, buf, (size_t)(i % 64) + 1) < 0) /* L:write */
            return 2;
    }
    printf("total %ld\n", total);
    return 0;
}
