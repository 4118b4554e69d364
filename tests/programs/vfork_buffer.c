/* A process that buffers, spawns children the way posix_spawn, system() and Python's
 * subprocess do (clone with CLONE_VM | CLONE_VFORK: the child shares the parent's memory,
 * and so its syscall buffer, until it execs or exits), and goes on making buffered
 * calls after each: posix_spawn of a program with its stdout on /dev/null (the child's
 * dup2 over fd 1 must not change the parent's table of stdout copies), then a vfork
 * child that exits without exec. After each, the parent stats a file 2000 times and
 * writes to its stdout, which replay must print. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static long stats(void)
{
    struct stat st;
    long sizes = 0;
    for (int i = 0; i < 2000; i++)
        if (stat("/", &st) == 0)
            sizes += st.st_nlink > 0;
    return sizes;
}

int main(void)
{
    printf("before: %ld\n", stats());
    fflush(stdout);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"echo", "unseen", NULL};
    pid_t child;
    int status = -1;
    if (posix_spawn(&child, "/bin/echo", &actions, NULL, argv, environ) == 0)
        waitpid(child, &status, 0);
    printf("after posix_spawn (status %d): %ld\n", status, stats());
    fflush(stdout);

    child = vfork();
    if (child == 0)
        _exit(7);
    waitpid(child, &status, 0);
    printf("after vfork (status %d): %ld\n", WEXITSTATUS(status), stats());
    return 0;
}
