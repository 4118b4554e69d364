/* Syscall-bound: N small reads of /dev/zero, each followed by a write to /dev/null
 * (N = argv[1], default 200000). Every iteration is two syscalls and almost no compute. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    char buf[64];
    long total = 0;
    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    if (zero < 0 || null < 0) {
        perror("open");
        return 1;
    }
    for (long i = 0; i < iterations; i++) {
        ssize_t n = read(zero, buf, sizeof buf);
        if (n != (ssize_t)sizeof buf || write(null, buf, (size_t)n) != n) {
            perror("read/write");
            return 1;
        }
        total += n;
    }
    printf("%ld bytes copied in %ld iterations\n", total, iterations);
    return 0;
}
