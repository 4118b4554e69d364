/* Buffered syscalls between stretches of work, for gdb's catch syscall on the calls the
   syscall buffer makes (tests/test_gdb_catch_buffered.py): getuid (whose result is the
   same in every recording), a write to a pipe and the read that takes it back into
   `got` (buffered: neither fd is stdout or stderr). The results and what the read wrote
   are the same with the buffer and without it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char got[8];
int round_no;

static long work(long n) {
    long sum = 0;
    for (long i = 0; i < n; i++)
        sum += i * i % 7;
    return sum;
}

static int ask_uid(void) {
    return (int)getuid(); /* L:getuid */
}

int main(void) {
    int ends[2];
    long total = 0;
    if (pipe(ends) != 0)
        return 1;
    for (round_no = 0; round_no < 3; round_no++) {
        char message[8];
        total += work(20000 + round_no);
        total += ask_uid() % 3;
        snprintf(message, sizeof message, "msg-%d", round_no);
        total += write(ends[1], message, strlen(message) + 1);
        total += read(ends[0], got, sizeof got); /* L:read */
    }
    printf("total %ld got %s\n", total, got);
    return 0;
}
