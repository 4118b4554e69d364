/* A signal arrives while the program makes buffered syscalls (getppid in a loop): the
 * recorder holds it back until a syscall traps, which it arranges through the buffer.
 * Once it is delivered, the loop of reads and writes that follows is buffered again. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t fired;

static void on_alarm(int sig)
{
    (void)sig;
    fired = 1;
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    struct itimerval once = {{0, 0}, {0, 10000}};
    setitimer(ITIMER_REAL, &once, NULL);
    while (!fired)
        getppid();
    char buf[64];
    int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
    long total = 0;
    for (int i = 0; i < 2000; i++)
        total += read(in, buf, sizeof buf) + write(out, buf, sizeof buf);
    printf("signal handled; read+write %ld bytes\n", total);
    return 0;
}
