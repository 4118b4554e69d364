/* pthread_cancel ends a thread blocked in read() on a pipe nobody writes: libc's read is a
 * cancellation point, and under the syscall buffer it must stay one (the buffered call is
 * abandoned, made again traced, and the cancellation signal unwinds the thread through the
 * buffer's code). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static int p[2];
static void *reader(void *arg) {
    (void)arg;
    char c;
    for (;;) read(p[0], &c, 1);
    return NULL;
}
int main(void) {
    pipe(p);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    usleep(50000);
    pthread_cancel(t);
    void *ret;
    pthread_join(t, &ret);
    printf("cancelled: %d\n", ret == PTHREAD_CANCELED);
    return 0;
}
