/* Syscalls that libc makes for itself: fopen -> openat, fprintf/fclose -> write and
 * close, fgets -> read, opendir/readdir -> openat and getdents64, stat -> newfstatat.
 * Usage: libc_io DIR (a scratch directory); prints a summary. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ROUNDS 300

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/libc_io.txt", argv[1]);
    long entries = 0, bytes = 0;
    for (int i = 0; i < ROUNDS; i++) {
        FILE *f = fopen(path, "w");
        if (!f)
            return 1;
        fprintf(f, "round %d\n", i);
        fclose(f);
        f = fopen(path, "r");
        char line[64];
        if (f && fgets(line, sizeof line, f))
            bytes += (long)strlen(line);
        if (f)
            fclose(f);
        DIR *d = opendir(argv[1]);
        while (d && readdir(d))
            entries++;
        if (d)
            closedir(d);
        struct stat st;
        if (stat(path, &st) == 0)
            bytes += st.st_size;
    }
    printf("%d rounds: %ld directory entries, %ld bytes\n", ROUNDS, entries, bytes);
    return 0;
}
