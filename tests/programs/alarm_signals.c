/* SIGALRM while blocked in pause() and while computing (with occasional syscalls), and a
 * signal sent between processes with kill(). The counts printed depend on timing. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t fired;
static volatile sig_atomic_t usr1;

static void on_alarm(int sig) { (void)sig; fired++; }
static void on_usr1(int sig) { (void)sig; usr1++; }

int main(void) {
    signal(SIGALRM, on_alarm);
    signal(SIGUSR1, on_usr1);

    alarm(1);
    pause();
    printf("after pause: fired=%d\n", (int)fired);

    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long n = 0, x = 1;
    while (fired < 2) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        if ((++n & 0xffff) == 0)
            getppid();
    }
    printf("busy loop: %lu iterations before the timer (x=%lu)\n", n, x & 0xff);

    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    while (!usr1)
        usleep(1000);
    waitpid(child, NULL, 0);
    printf("usr1=%d\n", (int)usr1);
    return 0;
}
