/* Built with -fsanitize=address: leaks a block, and with an argument also writes one byte
 * past another. AddressSanitizer reports the overflow; at exit LeakSanitizer suspends the
 * threads through ptrace from a helper cloned with CLONE_UNTRACED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char *leaked = malloc(24);
    strcpy(leaked, "leaked");
    leaked = NULL;
    printf("%s\n", argc > 1 ? argv[1] : "leak");
    fflush(stdout);
    if (argc > 1) {
        char *small = malloc(8);
        small[8] = 1;
        free(small);
    }
    return 0;
}
