/* mapped_region ADDR PAGES MODE [FILE]: maps PAGES pages at ADDR, private anonymous (or
 * FILE, privately; MODE shared: shared anonymous), prepares them as MODE says (zeros,
 * read, pattern, dropped, untouched), prints "ready" and waits for the end of its input.
 * tests/test_memory_hash.py hashes the region from outside. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned long addr = strtoul(argv[1], 0, 0);
    size_t size = strtoul(argv[2], 0, 0) * 4096;
    const char *mode = argv[3];
    int fd = -1, flags = MAP_FIXED_NOREPLACE;
    if (argc > 4)
        fd = open(argv[4], O_RDONLY);
    else
        flags |= MAP_ANONYMOUS;
    flags |= strcmp(mode, "shared") ? MAP_PRIVATE : MAP_SHARED;
    volatile unsigned char *p = mmap((void *)addr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < size; i++) {
        if (!strcmp(mode, "zeros"))
            p[i] = 0;
        else if (!strcmp(mode, "read"))
            sum += p[i];
        else if (!strcmp(mode, "pattern") || !strcmp(mode, "dropped"))
            p[i] = (unsigned char)(i * 7 + 1);
    }
    if (!strcmp(mode, "dropped"))
        madvise((void *)p, size, MADV_DONTNEED);
    printf("ready %u\n", sum);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {}
    return 0;
}
