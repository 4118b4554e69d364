/* Reads randomness from getrandom(2) and from /dev/urandom. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

static void print_hex(const char *label, const unsigned char *buf, size_t len)
{
    printf("%-13s", label);
    for (size_t i = 0; i < len; i++)
        printf("%02x", buf[i]);
    printf("\n");
}

int main(void)
{
    unsigned char buf[16];

    if (getrandom(buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
        perror("getrandom");
        return 1;
    }
    print_hex("getrandom", buf, sizeof buf);

    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        perror("/dev/urandom");
        return 1;
    }
    close(fd);
    print_hex("/dev/urandom", buf, sizeof buf);

    srand(buf[0] | buf[1] << 8);
    printf("rand()       %d\n", rand());
    return 0;
}
