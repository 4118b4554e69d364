/* Memory mappings: a MAP_SHARED file mapping written through and read back with pread,
 * a MAP_PRIVATE file mapping, and anonymous memory that is grown with mremap. The file
 * (in the directory argv[1]) holds the time, and ASLR moves the mappings. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int fail(const char *what)
{
    perror(what);
    return 1;
}

static unsigned long sum(const unsigned char *p, size_t n)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 131 + p[i];
    return s;
}

int main(int argc, char **argv)
{
    char path[4096], page[PAGE];
    struct timespec now;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    memset(page, 0, sizeof page);
    snprintf(page, sizeof page, "created at %lld.%09ld", (long long)now.tv_sec, now.tv_nsec);

    snprintf(path, sizeof path, "%s/mapped.bin", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail("open");
    for (int i = 0; i < 2; i++)
        if (write(fd, page, PAGE) != PAGE)
            return fail("write");

    char *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shared == MAP_FAILED)
        return fail("mmap shared");
    printf("shared  %p: %s\n", (void *)shared, shared + PAGE);
    memcpy(shared + PAGE, "rewritten through the shared map", 33);
    if (msync(shared, 2 * PAGE, MS_SYNC) != 0)
        return fail("msync");
    char back[64] = {0};
    if (pread(fd, back, 33, PAGE) != 33)
        return fail("pread");
    printf("pread   %s\n", back);

    char *private = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (private == MAP_FAILED)
        return fail("mmap private");
    private[0] = 'C';
    printf("private %p: %s | %s\n", (void *)private, private, private + PAGE);
    printf("shared  first page still: %.10s\n", shared);

    unsigned char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED)
        return fail("mmap anon");
    for (int i = 0; i < PAGE; i++)
        anon[i] = (unsigned char)(i * 7 + now.tv_nsec);
    unsigned char *grown = mremap(anon, PAGE, 16 * PAGE, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED)
        return fail("mremap");
    grown[15 * PAGE] = 1;
    printf("anon    %p -> %p sum=%lu\n", (void *)anon, (void *)grown, sum(grown, 16 * PAGE));
    if (mprotect(grown, PAGE, PROT_READ) != 0)
        return fail("mprotect");

    munmap(grown, 16 * PAGE);
    munmap(private, 2 * PAGE);
    munmap(shared, 2 * PAGE);
    close(fd);
    return 0;
}
