/* Prints addresses that address-space layout randomisation moves between runs. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int global_counter = 1;

int main(void)
{
    int on_stack = 0;
    char *small = malloc(32);
    char *large = malloc(1 << 20); /* above the mmap threshold */
    void *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (!small || !large || anon == MAP_FAILED)
        return 1;
    memset(large, 0x5a, 1 << 20);
    printf("main    %p\n", (void *)&main);
    printf("global  %p\n", (void *)&global_counter);
    printf("stack   %p\n", (void *)&on_stack);
    printf("malloc  %p\n", (void *)small);
    printf("large   %p\n", (void *)large);
    printf("mmap    %p\n", anon);
    printf("brk     %p\n", sbrk(0));
    printf("printf  %p\n", (void *)&printf);
    free(large);
    free(small);
    munmap(anon, 3 * 4096);
    return 0;
}
