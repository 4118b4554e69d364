/* The syscall buffer shared by the preload library (preload.c), the recorder and the
 * replayer (rrgdb/syscallbuf.py mirrors these numbers). */
#ifndef RRGDB_PRELOAD_H
#define RRGDB_PRELOAD_H
#include <stdint.h>
#include <stddef.h>

#define RRGDB_SYSCALLBUF_ADDR 0x70010000UL
#define RRGDB_SYSCALLBUF_SIZE (1u << 20)
/* In rrgdb's scratch page. Record: syscall; mov $0x246,%r11d; ret. Replay: the same
 * registers without the syscall: mov $0x70000012,%ecx; mov $0x246,%r11d; ret. */
#define RRGDB_UNTRACED_STUB 0x70000010UL
/* In the scratch page too, replay only: the library calls it as a buffered call returns,
 * its outputs written (finish). Normally the same registers as the untraced stub's
 * replay form (mov $0x70000022,%ecx; mov $0x246,%r11d; ret); while gdb catches syscalls
 * the replayer makes both stubs `syscall; mov $0x246,%r11d; ret`, to stop at a buffered
 * call's entry and return (rrgdb/syscallbuf.py). */
#define RRGDB_RETURN_STUB 0x70000020UL
/* rrgdb's injection site at the start of the scratch page: syscall; int3. */
#define RRGDB_INJECTION_SITE 0x70000000UL
/* The result the recorder gives a buffered call it stopped while blocked (ERESTARTSYS,
 * which programs never see): the call is made again as a traced syscall. */
#define RRGDB_ABANDONED (-512L)
/* The fds the buffer's stdio_fds table covers; calls that would need it for a higher fd
 * are traced. */
#define RRGDB_STDIO_FDS 1024

struct rrgdb_syscallbuf {
    uint32_t pos;       /* bytes of records (record: written; replay: consumed) */
    uint8_t in_replay;  /* set by the replayer */
    uint8_t disabled;   /* set by rrgdb when buffering must stop (threads, vfork) */
    uint8_t locked;     /* a call is between begin and finish (signal handlers) */
    uint8_t returns;    /* set by the constructor: this library calls RRGDB_RETURN_STUB */
    uint32_t seq;       /* buffered calls made so far */
    uint32_t trap_at;   /* calls from this ordinal on are traced (set by the recorder when
                           it holds a signal back; replayed from the FlushFrame prefix) */
    uint64_t sigmask;   /* the signal mask the buffered rt_sigprocmask calls since the last
                           flush left (UINT64_MAX: none): replay makes no syscall, so the
                           replayer sets it at the stop after the flush */
    uint8_t stdio_fds[RRGDB_STDIO_FDS / 8]; /* bit n: fd n is rrgdb's stdout or
                           stderr. Kept by the recorder at the traced calls that make,
                           replace or close such an fd (its writes are in their frames) */
    uint8_t data[];
};
/* rrgdb/syscallbuf.py reads these offsets */
_Static_assert(offsetof(struct rrgdb_syscallbuf, sigmask) == 16, "buffer header layout");
_Static_assert(offsetof(struct rrgdb_syscallbuf, stdio_fds) == 24, "buffer header layout");
_Static_assert(offsetof(struct rrgdb_syscallbuf, data) == 152, "buffer header layout");

struct rrgdb_record { /* padded to 8 bytes */
    int64_t ret;
    uint32_t syscallno;
    uint32_t size; /* header + output bytes */
    uint8_t data[];
};
#endif
