/* Job-control stops: a parent stops its child with SIGSTOP and sees it stopped
 * (waitpid WUNTRACED), continues it with SIGCONT and sees that (WCONTINUED), stops it
 * again and kills it while stopped; a second child stops itself with SIGTSTP until its
 * parent continues it.
 *
 * The kernel discards SIGTSTP (SIGTTIN, SIGTTOU) in an orphaned process group, one where
 * no member has a parent in another group of the same session, as when the test suite
 * runs on after the shell that started it is gone: the second child would run on to
 * _exit and its parent see no stop. So the second child first moves to a group of its
 * own, whose parent (this process) is in another group of the session. With an argument
 * ("same-group") it stays in its parent's group: in an orphaned group it is not stopped,
 * with or without rrgdb. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argv;
    int status;
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    printf("stopped by %d\n", WIFSTOPPED(status) ? WSTOPSIG(status) : -1);
    kill(child, SIGCONT);
    waitpid(child, &status, WCONTINUED);
    printf("continued %d\n", WIFCONTINUED(status));
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    printf("killed while stopped by %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);

    child = fork();
    if (child == 0) {
        if (argc < 2)
            setpgid(0, 0);
        raise(SIGTSTP);
        _exit(4);
    }
    waitpid(child, &status, WUNTRACED);
    printf("stopped itself by %d\n", WIFSTOPPED(status) ? WSTOPSIG(status) : -1);
    kill(child, SIGCONT);
    waitpid(child, &status, 0);
    printf("then exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
