/* Producer/consumer over a condition variable; consumers record who got which item. */
#include <pthread.h>
#include <stdio.h>

#define ITEMS 300
#define CONSUMERS 3

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static int queue[ITEMS], head, tail, done;
static int taken_by[ITEMS];

static void *consume(void *arg) {
    long id = (long)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == tail && !done)
            pthread_cond_wait(&ready, &lock);
        if (head == tail && done) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        taken_by[queue[head++]] = (int)id;
        pthread_mutex_unlock(&lock);
    }
}

int main(void) {
    pthread_t consumers[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++)
        pthread_create(&consumers[i], NULL, consume, (void *)i);
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&lock);
        queue[tail++] = i;
        pthread_cond_signal(&ready);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&ready);
    pthread_mutex_unlock(&lock);
    int per[CONSUMERS] = {0};
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(consumers[i], NULL);
    for (int i = 0; i < ITEMS; i++)
        per[taken_by[i]]++;
    printf("consumed: %d %d %d; first takers:", per[0], per[1], per[2]);
    for (int i = 0; i < 20; i++)
        printf(" %d", taken_by[i]);
    printf("\n");
    return 0;
}
