/* Prints, then dies of SIGABRT (exit status 128 + 6 under a shell or rrgdb). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    printf("pid %d about to abort\n", (int)getpid());
    fflush(stdout);
    fprintf(stderr, "abort: goodbye\n");
    abort();
}
