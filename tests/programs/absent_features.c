/* Calls rrgdb makes fail as a kernel built without them would (ENOSYS) instead of
 * stopping the recording: perf_event_open (a benchmark library probing counters),
 * memfd_secret and userfaultfd. The program goes on and says what it got. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

static void report(const char *name, long result) {
    printf("%s: %s\n", name, result < 0 ? strerror(errno) : "available");
}

int main(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    report("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    report("memfd_secret", syscall(SYS_memfd_secret, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    return 0;
}
