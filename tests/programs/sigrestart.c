/* SIGALRM arrives while the program is blocked in a syscall. read() on a pipe and wait4()
 * are restarted after a handler installed with SA_RESTART and fail with EINTR without it;
 * nanosleep() and pause() fail with EINTR either way (the kernel never restarts them after
 * a handler). The handler tells a child (through a second pipe) to write to the pipe or
 * to exit, so whatever the scheduling the data comes only after the signal: every line is
 * the same on every run except the one with the time nanosleep had left. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static int go[2]; /* the SIGALRM handler writes a byte here; the child waits for it */

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
    if (write(go[1], "!", 1) != 1)
        _exit(2);
}

static void install(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void arm_timer(void) {
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A child that waits for the handler's byte, then writes "data" to fd (if fd >= 0) and
 * exits 5. */
static pid_t spawn_waiting_child(int fd) {
    pid_t pid = fork();
    if (pid == 0) {
        char byte;
        if (read(go[0], &byte, 1) != 1)
            _exit(1);
        if (fd >= 0 && write(fd, "data", 4) != 4)
            _exit(1);
        _exit(5);
    }
    return pid;
}

static void describe(const char *what, ssize_t result, int error) {
    if (result < 0)
        printf("%s: -1 %s, alarms=%d\n", what, error == EINTR ? "EINTR" : strerror(error),
               (int)alarms);
    else
        printf("%s: %zd, alarms=%d\n", what, result, (int)alarms);
}

static void pipe_read(int restart) {
    int fds[2];
    char buf[16] = {0};
    if (pipe(fds) != 0)
        exit(1);
    install(SIGALRM, on_alarm, restart ? SA_RESTART : 0);
    alarms = 0;
    pid_t child = spawn_waiting_child(fds[1]);
    arm_timer();
    ssize_t got = read(fds[0], buf, sizeof buf - 1);
    describe(restart ? "read, SA_RESTART" : "read, no SA_RESTART", got, errno);
    if (got < 0) {
        got = read(fds[0], buf, sizeof buf - 1);
        describe("read again", got, errno);
    }
    printf("  data: %s\n", buf);
    int status;
    waitpid(child, &status, 0);
    close(fds[0]);
    close(fds[1]);
}

static void wait_child(int restart) {
    int status = 0;
    install(SIGALRM, on_alarm, restart ? SA_RESTART : 0);
    alarms = 0;
    pid_t child = spawn_waiting_child(-1);
    arm_timer();
    pid_t got = waitpid(child, &status, 0);
    int error = errno;
    printf("waitpid, %s: %s", restart ? "SA_RESTART" : "no SA_RESTART",
           got == child ? "the child" : got < 0 && error == EINTR ? "-1 EINTR" : "?");
    if (got < 0)
        got = waitpid(child, &status, 0);
    printf(", then exit status %d, alarms=%d\n", WEXITSTATUS(status), (int)alarms);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(go) != 0)
        return 1;

    pipe_read(1);
    pipe_read(0);
    wait_child(1);
    wait_child(0);

    install(SIGALRM, on_alarm, SA_RESTART);
    alarms = 0;
    arm_timer();
    struct timespec ts = {5, 0}, left = {0, 0};
    int r = nanosleep(&ts, &left);
    describe("nanosleep, SA_RESTART", r, errno);
    printf("  time left: %ld.%09ld s\n", (long)left.tv_sec, left.tv_nsec);

    alarms = 0;
    arm_timer();
    r = pause();
    describe("pause, SA_RESTART", r, errno);
    return 0;
}
