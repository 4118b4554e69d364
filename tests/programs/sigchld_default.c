/* Children exit while the parent is blocked in nanosleep(), read() and wait4() with
 * SIGCHLD at its default disposition. Natively that SIGCHLD is discarded; a traced
 * process still stops for it, and the kernel restarts the interrupted syscall
 * (nanosleep through restart_syscall): the program must not notice. The output is the
 * same on every run. */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t quick = fork();
    if (quick == 0) {
        usleep(20000);
        _exit(3);
    }
    struct timespec ts = {0, 200000000};
    printf("nanosleep: %d\n", nanosleep(&ts, NULL));

    pid_t quick2 = fork();
    if (quick2 == 0)
        _exit(4);
    pid_t writer = fork();
    if (writer == 0) {
        usleep(100000);
        _exit(write(fds[1], "hey", 3) == 3 ? 5 : 1);
    }
    char buf[8] = {0};
    printf("read: %zd %s\n", read(fds[0], buf, sizeof buf - 1), buf);

    pid_t slow = fork();
    if (slow == 0) {
        usleep(100000);
        _exit(6);
    }
    int status;
    pid_t order[] = {slow, quick, quick2, writer};
    for (int i = 0; i < 4; i++) {
        waitpid(order[i], &status, 0);
        printf("child %d exit status %d\n", i, WEXITSTATUS(status));
    }
    return 0;
}
