/* madvise: hints that leave memory as it is (WILLNEED, SEQUENTIAL, NORMAL: buffered) and
 * MADV_DONTNEED, which empties private anonymous pages (traced: replay runs it, and the
 * program sees zeros again). Usage: buffered_hints [ROUNDS]; prints a summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    size_t size = 16 * 4096;
    unsigned char *area = mmap(NULL, size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return 1;
    long hinted = 0, emptied = 0;
    for (int i = 0; i < rounds; i++) {
        memset(area, i + 1, size);
        int advice = i % 3 == 0 ? MADV_WILLNEED : i % 3 == 1 ? MADV_SEQUENTIAL : MADV_NORMAL;
        hinted += madvise(area, size, advice) == 0 && area[size - 1] == (unsigned char)(i + 1);
        if (i % 5 == 0) {
            madvise(area, size, MADV_DONTNEED);
            emptied += area[0] == 0 && area[size - 1] == 0;
        }
    }
    printf("%d rounds: %ld hints kept the memory, %ld emptied it\n", rounds, hinted, emptied);
    return 0;
}
