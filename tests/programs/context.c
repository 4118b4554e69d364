/* Prints what it inherits from the shell that starts it: the working directory, two
 * environment variables, and whatever arrives on stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    char cwd[4096], buf[256];
    const char *mark = getenv("RRGDB_TEST_MARK");
    const char *home = getenv("HOME");
    ssize_t n;

    printf("cwd   %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    printf("mark  %s\n", mark ? mark : "(unset)");
    printf("home  %s\n", home ? home : "(unset)");
    fflush(stdout);
    while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0) {
        printf("stdin %.*s", (int)n, buf);
        fflush(stdout);
    }
    printf("stdin end (%zd)\n", n);
    return 0;
}
