/* A pipeline stage: a forked child whose stdin and stdout are pipes reads its input one
 * byte at a time from fd 0 (as a shell's `read` does) and writes each line back,
 * upper-cased, to fd 1; then it puts its original stdout back on fd 1 and writes there,
 * and writes to fd 2 (rrgdb's stdout and stderr: that output is the recording's). The
 * parent feeds it 2000 lines and prints a checksum of what came back. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINES 2000

static void put(int fd, const char *text, size_t length)
{
    if (write(fd, text, length) != (ssize_t)length)
        exit(10);
}

static void stage(int saved_stdout)
{
    char line[64];
    size_t length = 0;
    char c;
    while (read(STDIN_FILENO, &c, 1) == 1) {
        line[length++] = (char)toupper((unsigned char)c);
        if (c == '\n' || length == sizeof line) {
            put(STDOUT_FILENO, line, length);
            length = 0;
        }
    }
    close(STDOUT_FILENO);
    dup2(saved_stdout, STDOUT_FILENO);
    put(STDOUT_FILENO, "stage: back on stdout\n", 22);
    put(STDERR_FILENO, "stage: done\n", 12);
}

int main(void)
{
    int to_stage[2], from_stage[2];
    if (pipe(to_stage) || pipe(from_stage))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        int saved_stdout = dup(STDOUT_FILENO);
        dup2(to_stage[0], STDIN_FILENO);
        dup2(from_stage[1], STDOUT_FILENO);
        close(to_stage[0]);
        close(to_stage[1]);
        close(from_stage[0]);
        close(from_stage[1]);
        stage(saved_stdout);
        _exit(0);
    }
    close(to_stage[0]);
    close(from_stage[1]);
    char text[32];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(text, sizeof text, "line %d\n", i);
        put(to_stage[1], text, (size_t)n);
    }
    close(to_stage[1]);
    unsigned long sum = 0, bytes = 0;
    char buffer[4096];
    ssize_t n;
    while ((n = read(from_stage[0], buffer, sizeof buffer)) > 0)
        for (ssize_t i = 0; i < n; i++, bytes++)
            sum = sum * 31 + (unsigned char)buffer[i];
    int status;
    waitpid(child, &status, 0);
    printf("%lu bytes back, checksum %lu, stage status %d\n", bytes, sum, status);
    return 0;
}
