/* A multi-threaded process that forks (a copy of its memory, the syscall buffer's
 * included) 30 times while two other threads make buffered calls all along; each child
 * makes 100 buffered getppid calls and exits 3. The parent enters fork and gives up its
 * process's turn, so a sibling runs on and its records, not yet flushed, or a call half
 * made, were in the child's copy of the buffer: the child's first flush took them as its
 * own, and replay diverged ("the buffered syscalls used 0 bytes of records") in about one
 * recording of three. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORKS 30

static volatile int done;

static void *busy(void *arg)
{
    long calls = 0;
    struct timespec ts;
    (void)arg;
    while (!done) {
        calls += getppid() > 0;
        calls += clock_gettime(CLOCK_MONOTONIC, &ts) == 0;
    }
    return (void *)calls;
}

int main(void)
{
    /* 32 MB of small pages below the buffer (0x70010000): the kernel copies their page
     * tables first, which leaves a sibling time to run before the buffer is copied */
    size_t size = 32 << 20;
    char *low = mmap((void *)0x10000000, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (low == MAP_FAILED)
        return 1;
    madvise(low, size, MADV_NOHUGEPAGE);
    memset(low, 1, size);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, busy, NULL);
    int exited = 0;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            long parents = 0;
            for (int j = 0; j < 100; j++)
                parents += getppid() > 0;
            _exit(parents == 100 ? 3 : 4);
        }
        int status;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 3)
            exited++;
    }
    done = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    printf("%d children exited 3\n", exited);
    return 0;
}
