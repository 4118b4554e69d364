/* One process keeps a running sum in anonymous MAP_SHARED memory, with a traced syscall
 * every round that carries the sum in a register (replay compares them). Checkpoints are
 * forks, which would share that mapping with the live process: reverse execution must
 * still find every sum as it was. */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) static void note(long sum)
{
    syscall(SYS_getpgid, 0, sum); /* the kernel ignores the second argument */
}

int main(void)
{
    volatile long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 1;
    for (long i = 0; i < 3000; i++) {
        *shared += i;
        note(*shared);
    }
    printf("sum %ld\n", *shared);
    return 0;
}
