/* Threads of one process and a forked child write small pieces to stdout and stderr at
 * the same time, each piece its own write(2): the order in which the kernel performs
 * them is the recorded output, which replay must print the same. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PIECES = 150 };

static void pieces(char who)
{
    char text[16];

    for (int i = 0; i < PIECES; i++) {
        int n = snprintf(text, sizeof text, "%c%d ", who, i);
        write(i % 10 ? STDOUT_FILENO : STDERR_FILENO, text, (size_t)n);
    }
}

static void *worker(void *arg)
{
    pieces(*(const char *)arg);
    return NULL;
}

int main(void)
{
    static const char names[] = "abc";
    pthread_t threads[3];
    pid_t child = fork();

    if (child == 0) {
        pieces('z');
        return 0;
    }
    for (int i = 0; i < 3; i++)
        pthread_create(&threads[i], NULL, worker, (void *)&names[i]);
    pieces('m');
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    waitpid(child, NULL, 0);
    write(STDOUT_FILENO, "\n", 1);
    write(STDERR_FILENO, "\n", 1);
    return 0;
}
