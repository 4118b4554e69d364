/* Two errors valgrind's memcheck reports: a branch on uninitialised heap memory and a
 * read after free (through a volatile copy of the pointer, which gcc does not follow). */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    int *p = malloc(4 * sizeof *p);
    int *volatile freed = p;
    p[0] = 1;
    if (p[2] > 0)
        puts("positive");
    free(p);
    printf("%d\n", freed[0]);
    return 0;
}
