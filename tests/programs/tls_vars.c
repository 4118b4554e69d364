/* Thread-local variables for gdb: `counter` and `label` (__thread) and libc's errno take
 * different values in the main thread and in a worker. Then SIGUSR1 through raise(), and
 * a SIGSEGV at a fixed address that a handler leaves with siglongjmp. poke() is for gdb
 * to call: `print poke(addr)` faults in the called function. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

__thread int counter = 5;
__thread char label[16] = "initial";
static sigjmp_buf recover;
static volatile int usr1_seen;

int poke(long addr)
{
    *(volatile int *)addr = 1;
    return 0;
}

static void *worker(void *arg)
{
    counter = 42;
    strcpy(label, "worker");
    errno = 7;
    return arg; /* L:worker */
}

static void on_usr1(int signo)
{
    usr1_seen = signo; /* L:usr1 */
}

static void on_segv(int signo)
{
    (void)signo;
    siglongjmp(recover, 1);
}

int main(void)
{
    pthread_t thread;
    counter = 9;
    strcpy(label, "main");
    errno = 3;
    pthread_create(&thread, NULL, worker, NULL);
    pthread_join(thread, NULL);
    counter += 1; /* L:joined */
    signal(SIGUSR1, on_usr1);
    signal(SIGSEGV, on_segv);
    raise(SIGUSR1);
    if (sigsetjmp(recover, 1) == 0)
        *(volatile int *)0x1234 = 5;
    printf("counter %d label %s errno %d usr1 %d\n", counter, label, errno, usr1_seen);
    return 0;
}
