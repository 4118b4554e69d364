/* Writes reaching stdout and stderr through copies of their fds: dup, fcntl(F_DUPFD),
 * open("/dev/stdout"), a forked child's inherited copy and, after an exec, a copy
 * inherited without O_CLOEXEC. A copy's number reused by a plain file takes writes that
 * are not output. Run with no argument; it execs itself with "again FD". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(int fd, const char *text)
{
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        exit(10);
}

int main(int argc, char **argv)
{
    if (argc == 3) { /* after the exec: fd argv[2] is a copy of stderr */
        say(atoi(argv[2]), "after exec, through the inherited copy of stderr\n");
        return 0;
    }
    int copy = dup(STDOUT_FILENO);
    say(copy, "through dup(1)\n");
    int high = fcntl(STDOUT_FILENO, F_DUPFD, 40);
    say(high, "through fcntl(1, F_DUPFD, 40)\n");
    int named = open("/dev/stdout", O_WRONLY);
    if (named >= 0)
        say(named, "through open(/dev/stdout)\n");
    pid_t child = fork();
    if (child == 0) {
        say(copy, "from a forked child, through its inherited copy\n");
        _exit(0);
    }
    waitpid(child, NULL, 0);

    /* the copy's number now names a plain file: its writes are not output */
    char path[] = "/tmp/rrgdb-stdio-copies-XXXXXX";
    int file = mkstemp(path);
    dup2(file, copy);
    for (int i = 0; i < 200; i++)
        say(copy, "x");
    close(copy);
    lseek(file, 0, SEEK_SET);
    char back[256];
    ssize_t n = read(file, back, sizeof back);
    unlink(path);
    printf("the file holds %zd bytes\n", n);
    fflush(stdout);

    int inherited = dup(STDERR_FILENO);
    char number[16];
    snprintf(number, sizeof number, "%d", inherited);
    execl("/proc/self/exe", argv[0], "again", number, (char *)NULL);
    return 2;
}
