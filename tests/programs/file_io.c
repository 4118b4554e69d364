/* File I/O in the directory given as argv[1]: open, write, lseek, read, pread, fstat,
 * readdir (getdents64), stat of a missing file, unlink. The data written includes the
 * time, and fstat reports inode numbers and timestamps, so a re-run prints other values. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
    perror(what);
    return 1;
}

int main(int argc, char **argv)
{
    char path[4096], line[128], back[128];
    struct timespec now;
    struct stat st;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &now);

    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail("open");
    int len = snprintf(line, sizeof line, "written at %lld.%09ld\n",
                       (long long)now.tv_sec, now.tv_nsec);
    for (int i = 0; i < 3; i++)
        if (write(fd, line, len) != len)
            return fail("write");

    off_t end = lseek(fd, 0, SEEK_CUR);
    if (lseek(fd, 0, SEEK_SET) != 0)
        return fail("lseek");
    ssize_t got = read(fd, back, sizeof back - 1);
    if (got < 0)
        return fail("read");
    back[got] = '\0';
    printf("offset after writes %lld\n", (long long)end);
    printf("read %zd bytes, first line: %.*s", got, len, back);

    got = pread(fd, back, 10, len + 11);
    if (got < 0)
        return fail("pread");
    printf("pread %zd bytes: %.*s\n", got, (int)got, back);

    if (fstat(fd, &st) != 0)
        return fail("fstat");
    printf("fstat size=%lld ino=%llu mtime=%lld.%09ld\n", (long long)st.st_size,
           (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    close(fd);

    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/file-%d-%ld", argv[1], i, now.tv_nsec % 1000);
        int extra = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (extra < 0)
            return fail("open extra");
        close(extra);
    }

    DIR *dir = opendir(argv[1]);
    if (!dir)
        return fail("opendir");
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        printf("entry %s ino=%llu\n", entry->d_name, (unsigned long long)entry->d_ino);
    closedir(dir);

    snprintf(path, sizeof path, "%s/missing", argv[1]);
    if (stat(path, &st) != 0)
        printf("stat missing: %s\n", strerror(errno));

    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    printf("unlink %d\n", unlink(path));
    return 0;
}
