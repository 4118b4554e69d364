/* System V shared memory between a parent and a forked child: a private segment (shmget,
 * shmat), lock-free additions by both across traced syscalls, the child's own second
 * attach (read-only) of the same segment, shmctl IPC_STAT, shmdt and IPC_RMID. */
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 2000

int main(void)
{
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    volatile long *counter = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
    if (counter == (void *)-1)
        return 1;
    pid_t child = fork();
    for (int i = 0; i < ROUNDS; i++) {
        long value = *counter;
        syscall(SYS_getpgid, 0); /* traced: a point where the other may run */
        *counter = value + 1;
    }
    if (child == 0) {
        const volatile long *view = shmat(id, NULL, SHM_RDONLY);
        long seen = view == (void *)-1 ? -1 : *view;
        shmdt((const void *)view);
        _exit(seen > 0 ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    struct shmid_ds info;
    shmctl(id, IPC_STAT, &info);
    printf("counter %ld of %d additions; size %zu, child %d\n", *counter, 2 * ROUNDS,
           info.shm_segsz, WEXITSTATUS(status));
    shmdt((const void *)counter);
    shmctl(id, IPC_RMID, NULL);
    return 0;
}
