/* fork + exec + wait, a pipe between parent and child, and a SIGCHLD handler. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t children_done;

static void on_child(int sig) { (void)sig; children_done++; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);

    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char buf[64];
        int n = snprintf(buf, sizeof buf, "child %d at %ld\n", getpid(), (long)ts.tv_nsec);
        write(fds[1], buf, n);
        _exit(7);
    }
    close(fds[1]);
    char buf[128] = {0};
    ssize_t got = read(fds[0], buf, sizeof buf - 1);
    int status;
    waitpid(child, &status, 0);
    printf("parent %d read %zd bytes: %s", getpid(), got, buf);
    printf("child exit %d\n", WEXITSTATUS(status));

    pid_t echo = fork();
    if (echo == 0) {
        execl("/bin/echo", "echo", "exec'd echo says hi", (char *)NULL);
        _exit(127);
    }
    waitpid(echo, &status, 0);
    printf("echo exit %d, SIGCHLD handled %d times\n", WEXITSTATUS(status), (int)children_done);
    return 0;
}
