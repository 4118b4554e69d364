/* A terminal session on a pseudo-terminal, as script(1) and Python's pty module make
 * one: openpty (TIOCGPTN, TIOCSPTLCK, TIOCGPTPEER), a child that makes the slave its
 * controlling terminal (setsid, TIOCSCTTY), reads the window size, line discipline and
 * output queue, writes to it and gives it up (TIOCNOTTY: the kernel then sends the
 * session SIGHUP, which kills the child); the parent reads the master until EIO and
 * prints what came through, the child's status and the time. */
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    int master, slave;
    struct winsize size = {.ws_row = 24, .ws_col = 80};

    if (openpty(&master, &slave, NULL, NULL, &size) != 0) {
        perror("openpty");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        close(master);
        setsid();
        if (ioctl(slave, TIOCSCTTY, 0) != 0)
            perror("TIOCSCTTY");
        struct winsize seen;
        ioctl(slave, TIOCGWINSZ, &seen);
        int discipline = -1, queued = -1;
        ioctl(slave, TIOCGETD, &discipline);
        ioctl(slave, TIOCOUTQ, &queued);
        dprintf(slave, "child on a %dx%d tty, discipline %d, queue %d, time %ld\n",
                seen.ws_col, seen.ws_row, discipline, queued, (long)time(NULL));
        ioctl(slave, TIOCNOTTY, 0);
        _exit(7);
    }
    close(slave);
    char buf[256];
    ssize_t n;
    while ((n = read(master, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            fwrite(buf, 1, (size_t)n, stdout);
    int status;
    waitpid(child, &status, 0);
    printf("read ended: %s, child status %#x\n", n == 0 ? "EOF" : strerror(errno), status);
    return 0;
}
