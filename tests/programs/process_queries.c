/* prctl and fcntl queries that answer through a pointer: PR_GET_CHILD_SUBREAPER,
 * PR_GET_TID_ADDRESS, PR_GET_AUXV, F_GETOWN_EX. Each output starts as a sentinel the
 * kernel overwrites; the fd's owner is this process's pid, which differs at every run. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif

int main(void)
{
    int subreaper = -1;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
    printf("child subreaper %d\n", subreaper);

    int *clear_child_tid = (int *)-1;
    long status = prctl(PR_GET_TID_ADDRESS, &clear_child_tid, 0, 0, 0);
    printf("tid address: %s\n", status != 0 ? "unsupported"
                                : clear_child_tid == (int *)-1 ? "not written"
                                                               : "written");

    unsigned long auxv[2 * 64];
    for (unsigned i = 0; i < sizeof auxv / sizeof auxv[0]; i++)
        auxv[i] = 0xdead;
    long size = prctl(PR_GET_AUXV, auxv, sizeof auxv, 0, 0);
    long page_size = -1;
    for (long i = 0; 2 * i < size / (long)sizeof(long) && auxv[2 * i] != AT_NULL; i++)
        if (auxv[2 * i] == AT_PAGESZ)
            page_size = (long)auxv[2 * i + 1];
    printf("auxv: %s, page size %ld\n", size > 0 ? "read" : "unsupported", page_size);

    int fd = open("/dev/null", O_RDONLY);
    struct f_owner_ex owner = {.type = -1, .pid = -1};
    fcntl(fd, F_SETOWN, getpid());
    fcntl(fd, F_GETOWN_EX, &owner);
    printf("owner type %d pid %d\n", owner.type, owner.pid);
    return 0;
}
