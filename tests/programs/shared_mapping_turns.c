/* A process maps memory MAP_SHARED for the first time while another process that shares
 * memory computes (holding the turn of the processes that share memory): from that
 * mapping on the parent needs that turn too, and must wait for it -- neither run forever
 * without it (a parent that kept its own process's turn through the mmap was never
 * queued for the shared one, and the recording hung: ninja running gcc did this). */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    pid_t child = fork();
    if (child == 0) {
        volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (counter == MAP_FAILED)
            _exit(1);
        for (long i = 0; i < 400000000L; i++)
            *counter += i & 3;
        _exit(*counter == 600000000L ? 0 : 2);
    }
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 3; i++) {
        long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
        if (shared == MAP_FAILED)
            return 1;
        *shared = i;
        printf("mapped %d\n", i);
        munmap(shared, 4096);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
