/* rrgdb's syscall buffer: a library preloaded into recorded programs.
 *
 * Under `rrgdb record` (RRGDB_SYSCALLBUF set) the constructor maps a buffer at a fixed
 * address and installs a seccomp filter that lets syscalls made from ONE instruction --
 * the `syscall` of the untraced stub in rrgdb's scratch page -- run without a ptrace stop,
 * and sends every other syscall to the recorder. rrgdb_buffered() performs the hot
 * syscalls through that stub and appends a record (number, result, output bytes) to the
 * buffer; the recorder copies the buffer into the trace whenever it stops the thread
 * anyway, and empties it.
 *
 * Two paths lead to rrgdb_buffered(): the exported wrappers below (read, write, stat, ...,
 * which a program's own calls reach through LD_PRELOAD), and libc's internal syscall
 * sites, which the constructor patches (patch.c) into jumps to per-site trampolines.
 *
 * Under replay the same code runs with the buffer's in_replay byte set (by the replayer):
 * the stub makes no syscall and the result and output bytes come from the records the
 * replayer put in the buffer, so replay needs no ptrace stop for them either. Everything
 * else -- the copies, the bookkeeping, the patching -- is the same in record and replay.
 *
 * rrgdb_buffered() runs in place of a `syscall` instruction, so it must leave every
 * register a syscall leaves (the hook saves the general ones): the whole file is built
 * without SSE/x87 code, and nothing on that path calls libc.
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#pragma GCC optimize("omit-frame-pointer") /* the stack pointer is the CFA's base: untraced() */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define MAX_IO (256 * 1024) /* larger transfers are traced (records must fit the 1 MiB buffer) */
#define MAX_POLL_FDS 64
#define MAX_PIECES 16       /* iovecs of readv and recvmsg */
#define MAX_NAME 128        /* struct sockaddr_storage: the most an address takes */
#define NOT_BUFFERED LONG_MIN /* no syscall returns it */
#define STAT_BYTES 144      /* struct stat */
#define STATX_BYTES 256      /* struct statx */
#define TERMIOS_BYTES 36     /* the kernel's struct termios (TCGETS) */
#define SIGSET_BYTES 8       /* the kernel's sigset_t */
#define SIGACTION_BYTES 32   /* the kernel's struct sigaction: handler, flags, restorer, mask */
#define EPOLL_EVENT_BYTES 12 /* struct epoll_event (packed) */

static struct rrgdb_syscallbuf *buffer;

/* A syscall through the untraced stub in rrgdb's scratch page. The caller may be a leaf
 * function using the red zone, which the call would overwrite: skip it (and say so in the
 * unwind information, so that a debugger stopped in the stub, at a caught buffered call in
 * replay, finds the callers: the function's own CFA is the stack pointer plus an offset,
 * the library being built without a frame pointer). */
static long untraced(long nr, long a, long b, long c, long d, long e, long f)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("lea -128(%%rsp),%%rsp\n\t"
                     ".cfi_adjust_cfa_offset 128\n\t"
                     "call *%[stub]\n\t"
                     "lea 128(%%rsp),%%rsp\n\t"
                     ".cfi_adjust_cfa_offset -128"
                     : "+r"(rax)
                     : [stub] "r"((long)RRGDB_UNTRACED_STUB), "r"(rdi), "r"(rsi), "r"(rdx),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return rax;
}

/* An ordinary syscall: the seccomp filter sends it to the recorder. Replay compares every
 * register at a traced syscall, so the ones it does not take are cleared (and the flags
 * set by the clearing): they could hold values that differ between record and replay,
 * such as the untraced stub's raw result. */
static long traced(long nr, long a, long b, long c, long d, long e, long f)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("xor %%ebx,%%ebx\n\t"
                     "xor %%ebp,%%ebp\n\t"
                     "xor %%r12d,%%r12d\n\t"
                     "xor %%r13d,%%r13d\n\t"
                     "xor %%r14d,%%r14d\n\t"
                     "xor %%r15d,%%r15d\n\t"
                     "syscall"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
                     : "rbx", "rbp", "rcx", "r11", "r12", "r13", "r14", "r15", "memory",
                       "cc");
    return rax;
}

/* memcpy without libc (whose copies use vector registers the hook does not save), by
 * words: a single-stepped rep instruction traps once per iteration. */
static void copy(void *dst, const void *src, size_t n)
{
    size_t words = n / 8, bytes = n % 8;
    __asm__ volatile("rep movsq\n\t"
                     "mov %[bytes],%%rcx\n\t"
                     "rep movsb"
                     : "+D"(dst), "+S"(src), "+c"(words)
                     : [bytes] "r"(bytes)
                     : "memory");
}

/* The next record, or NULL when buffering is off (then the caller makes a traced call).
 * The count goes up before trap_at is read: the recorder's trap_soon sets trap_at to the
 * count it sees, at a stop that may come between any two instructions here, and this call
 * must then be traced exactly when replay, which compares the same ordinal with the
 * recorded trap_at, traces it (read first, a trap_at set between the read and the count
 * left this call buffered in the recording and traced in replay: a divergence in about
 * one recording in 30 of buffered_masks.c under its 500 us timer). */
static struct rrgdb_record *begin(size_t out_bytes)
{
    struct rrgdb_syscallbuf *b = buffer;
    if (!b || b->disabled || b->locked)
        return NULL;
    size_t need = sizeof(struct rrgdb_record) + out_bytes;
    if (b->pos + need + 8 > RRGDB_SYSCALLBUF_SIZE - sizeof *b)
        return NULL;
    uint32_t ordinal = b->seq;
    b->locked = 1;
    b->seq = ordinal + 1;
    __asm__ volatile("" ::: "memory"); /* (the stores above, then trap_at's load) */
    if (ordinal >= b->trap_at) {
        b->seq = ordinal;
        b->locked = 0;
        return NULL;
    }
    return (struct rrgdb_record *)(b->data + b->pos);
}

/* Replay only: the call whose record is at pos has returned, its outputs written. The
 * return stub makes no syscall unless gdb catches syscalls: the replayer then stops there
 * (rax = nr at the syscall) and shows the recorded result. Inside the locked stretch, where
 * no event is ever placed, so record and replay may run different instructions; but the
 * stack word the call's return address takes goes back to what it held (the untraced
 * stub's return address, pushed there too): preemption points hash every thread's stack,
 * also below a thread that stands in a traced call the library makes before the hook
 * scrubs (an open's dup2, a sleep made again). */
static inline __attribute__((always_inline)) void returned(long nr)
{
    register long rax __asm__("rax") = nr;
    long word;
    __asm__ volatile("lea -128(%%rsp),%%rsp\n\t"
                     ".cfi_adjust_cfa_offset 128\n\t"
                     "mov -8(%%rsp),%[word]\n\t"
                     "call *%[stub]\n\t"
                     "mov %[word],-8(%%rsp)\n\t"
                     "lea 128(%%rsp),%%rsp\n\t"
                     ".cfi_adjust_cfa_offset -128"
                     : "+r"(rax), [word] "=&r"(word)
                     : [stub] "r"((long)RRGDB_RETURN_STUB)
                     : "rcx", "r11", "memory");
}

/* Inline, as call() is: the stack the dispatcher uses stays within what the hook scrubs
 * (SCRUB), the replay-only stub call at the same depth as the untraced stub's. */
static inline __attribute__((always_inline)) long finish(struct rrgdb_record *r, long nr,
                                                         long ret, size_t out_bytes)
{
    struct rrgdb_syscallbuf *b = buffer;
    if (!b->in_replay) {
        r->ret = ret;
        r->syscallno = (uint32_t)nr;
        r->size = (uint32_t)(sizeof *r + out_bytes);
    } else {
        returned(nr);
    }
    b->pos += (r->size + 7) & ~7u;
    b->locked = 0;
    return ret;
}

/* The result: from the kernel when recording, from the record when replaying. The stub
 * is called either way (in replay rrgdb's scratch page holds a stub that makes no syscall
 * but leaves the same registers), so the two runs execute the same instructions. */
static inline __attribute__((always_inline)) long call(struct rrgdb_record *r, long nr,
                                                       const long *a)
{
    long ret = untraced(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    return buffer->in_replay ? r->ret : ret;
}

/* The recorder stopped the call while it blocked (rrgdb/syscallbuf.py): the record says
 * so, and the caller makes the call again as a traced syscall, in replay too. */
static long abandon(struct rrgdb_record *r, long nr)
{
    finish(r, nr, RRGDB_ABANDONED, 0);
    return NOT_BUFFERED;
}

/* A call whose only effect on the caller is its result. */
static long plain(long nr, const long *a)
{
    struct rrgdb_record *r = begin(0);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, nr, a);
    return ret == RRGDB_ABANDONED ? abandon(r, nr) : finish(r, nr, ret, 0);
}

/* How many bytes an output-writing call wrote: `ret` of them (read; at most the size:
 * with MSG_TRUNC a datagram's recv returns its full length), all of them when it returned
 * 0 (stat) or any non-error value (time). */
enum written { RET_BYTES, ALL_IF_ZERO, ALL_IF_OK };

/* The `got` bytes a call wrote at dest, kept in the record at data: the kernel wrote them
 * to the caller's memory, as without rrgdb (so that a bad pointer fails with EFAULT, not
 * a fault in this library), and recording copies them into the record; replay makes no
 * syscall and copies them out of it. */
static void keep_output(uint8_t *data, void *dest, size_t got)
{
    if (buffer->in_replay)
        copy(dest, data, got);
    else
        copy(data, dest, got);
}

/* keep_output for a 4-byte length or flags field. */
static void keep_word(uint32_t *data, uint32_t *dest)
{
    if (buffer->in_replay)
        *dest = *data;
    else
        *data = *dest;
}

/* keep_output for bytes the kernel may leave alone even when the call succeeds (ppoll's
 * timeout: not written back when it was zero or is read-only). Replay writes only bytes
 * that differ from what the memory holds: where the kernel wrote nothing they are equal
 * (replay's memory is the recording's), and the memory may be read-only. */
static void keep_changes(uint8_t *data, uint8_t *dest, size_t n)
{
    if (!buffer->in_replay) {
        copy(data, dest, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (dest[i] != data[i])
            dest[i] = data[i];
}

/* A call that writes up to `size` bytes at the pointer in argument `slot`. */
static long output(long nr, long *a, int slot, size_t size, enum written how)
{
    void *dest = (void *)a[slot];
    if (!dest)
        return plain(nr, a); /* the kernel's own answer (EFAULT or no output) */
    if (size > MAX_IO)
        return NOT_BUFFERED;
    struct rrgdb_record *r = begin(size);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, nr, a);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, nr);
    size_t got = how == RET_BYTES     ? (ret <= 0 ? 0 : (size_t)ret < size ? (size_t)ret : size)
                 : how == ALL_IF_ZERO ? (ret == 0 ? size : 0)
                                      : (ret >= 0 || ret <= -4096 ? size : 0);
    keep_output(r->data, dest, got);
    return finish(r, nr, ret, got);
}

/* The first n bytes of src into the pieces of iov. */
static void scatter(const struct iovec *iov, const uint8_t *src, size_t n)
{
    for (size_t done = 0, i = 0; done < n; i++) {
        size_t part = n - done < iov[i].iov_len ? n - done : iov[i].iov_len;
        copy(iov[i].iov_base, src + done, part);
        done += part;
    }
}

/* The first n bytes of the pieces of iov into dst (scatter's reverse). */
static void gather(uint8_t *dst, const struct iovec *iov, size_t n)
{
    for (size_t done = 0, i = 0; done < n; i++) {
        size_t part = n - done < iov[i].iov_len ? n - done : iov[i].iov_len;
        copy(dst + done, iov[i].iov_base, part);
        done += part;
    }
}

/* What the library reads before the call. Most arguments it leaves to the kernel, and
 * touches the caller's memory only after a successful call, where the kernel has read or
 * written it (keep_output). A few it must read first, to know whether the call can be
 * buffered and how large its record is: readv's iovec array, recvmsg's header and its
 * iovec array, recvfrom's address length. These may be bad pointers too, and reading one
 * would kill the program with SIGSEGV here where the call fails with EFAULT natively. They
 * are usually on the caller's stack, a few hundred bytes above the library's frame, in
 * the page that frame is in: that page is mapped, and they are read at no cost. Elsewhere
 * the library first asks the kernel whether it can read them (a probe, a syscall that
 * reads that memory and has no other effect), and where it cannot the call is made traced,
 * and the kernel gives its own answer (EFAULT, or an error it checks first). A probe is a
 * buffered call of its own, whose record holds the answer, so replay (no syscall) takes
 * the same branch (the stack is where it was in the recording, so the first test is the
 * same too). */

/* Whether the n bytes at p lie in the page of this frame, which the write to `here` shows
 * to be mapped, readable and writable. */
static int in_frame_page(const void *p, size_t n)
{
    volatile char here = 0;
    uintptr_t page = (uintptr_t)&here & ~(uintptr_t)4095, at = (uintptr_t)p;
    return at >= page && n <= 4096 && at - page <= 4096 - n;
}

/* The probe: whether the 8 bytes at `at` can be read. rt_sigprocmask copies in a new mask
 * (EFAULT if it cannot) before it finds that `how` is invalid (EINVAL), and changes
 * nothing. */
static int word_readable(uintptr_t at)
{
    long a[6] = {-1, (long)at, 0, SIGSET_BYTES, 0, 0};
    return plain(SYS_rt_sigprocmask, a) == -EINVAL;
}

/* Whether the n bytes at p (1 to 4096) can be read, by probes: memory is readable by
 * whole pages, so one word probed in each page they reach answers for all of them (a
 * length of 4 is probed with the 4 bytes after it: when those cannot be read, the call is
 * traced). */
__attribute__((noinline)) static int probed(uintptr_t first, size_t n)
{
    uintptr_t last = first + n - 1;
    if (!word_readable(first))
        return 0;
    return n <= 8 || first / 4096 == last / 4096 || word_readable(last - 7);
}

/* Whether the n bytes at p (at most a page) can be read. */
static inline int readable(const void *p, size_t n)
{
    return n == 0 || in_frame_page(p, n) || probed((uintptr_t)p, n);
}

/* readv: the kernel reads into the caller's pieces (see keep_output); the record holds
 * the bytes read as one piece. The library sums the lengths first (readable). */
static long readv_buffered(long *a)
{
    const struct iovec *iov = (const struct iovec *)a[1];
    if (a[2] < 0 || a[2] > MAX_PIECES || !readable(iov, (size_t)a[2] * sizeof *iov))
        return NOT_BUFFERED;
    size_t total = 0;
    for (long i = 0; i < a[2]; i++)
        total += iov[i].iov_len;
    if (total > MAX_IO)
        return NOT_BUFFERED;
    struct rrgdb_record *r = begin(total);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, SYS_readv, a);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, SYS_readv);
    size_t got = ret > 0 ? (size_t)ret : 0;
    if (buffer->in_replay)
        scatter(iov, r->data, got);
    else
        gather(r->data, iov, got);
    return finish(r, SYS_readv, ret, got);
}

/* poll, and ppoll without a signal mask (the recorder applies that mask for the signals
 * it delivers). The kernel reads and writes the caller's array and ppoll's timeout (the
 * time left, see keep_changes), as in keep_output; the record keeps both when the call
 * succeeded (after a failure nothing says they are readable). A call that blocks is
 * abandoned when the recorder stops it, as a read is. */
static long poll_buffered(long nr, long *a)
{
    size_t size = (size_t)a[1] * 8, wait = nr == SYS_ppoll && a[2] ? sizeof(struct timespec) : 0;
    if ((unsigned long)a[1] > MAX_POLL_FDS || (!a[0] && size) || (nr == SYS_ppoll && a[3]))
        return NOT_BUFFERED;
    struct rrgdb_record *r = begin(size + wait);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, nr, a);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, nr);
    if (ret < 0)
        return finish(r, nr, ret, 0);
    keep_output(r->data, (void *)a[0], size);
    keep_changes(r->data + size, (uint8_t *)a[2], wait);
    return finish(r, nr, ret, size + wait);
}

/* epoll_wait, and epoll_pwait without a signal mask: `ret` events. An interrupted
 * epoll_wait fails with EINTR rather than a restart code; in record no signal handler
 * runs inside a buffered call (the recorder holds the signal back), so EINTR means the
 * recorder stopped it, and it is abandoned like a call that would restart. */
static long epoll_buffered(long nr, long *a)
{
    int most = (int)a[2];
    if ((nr == SYS_epoll_pwait && a[4]) || most <= 0 || most > MAX_IO / EPOLL_EVENT_BYTES)
        return NOT_BUFFERED;
    struct rrgdb_record *r = begin((size_t)most * EPOLL_EVENT_BYTES);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, nr, a);
    if (ret == RRGDB_ABANDONED || ret == -EINTR)
        return abandon(r, nr);
    size_t got = ret > 0 ? (size_t)ret * EPOLL_EVENT_BYTES : 0;
    keep_output(r->data, (void *)a[1], got);
    return finish(r, nr, ret, got);
}

/* FUTEX_WAIT and FUTEX_WAIT_BITSET, made with a timeout that has already passed (zero:
 * relative for the one, absolute for the other), so that the buffered call never
 * sleeps: a word that no longer holds the expected value fails with EAGAIN, buffered;
 * a wait that would sleep times out at once, and is abandoned and made again as a traced
 * syscall with the caller's own timeout, where the recorder sees the thread block. (A
 * buffered wait that slept could be woken by what no event orders, such as the kernel
 * clearing an exiting sibling's tid word, and replay could not place it.) */
static long futex_wait_buffered(long *a)
{
    struct timespec passed = {0, 0};
    struct rrgdb_record *r = begin(0);
    if (!r)
        return NOT_BUFFERED;
    long probe[6] = {a[0], a[1], a[2], (long)&passed, a[4], a[5]};
    long ret = call(r, SYS_futex, probe);
    if (ret == RRGDB_ABANDONED || ret == -ETIMEDOUT || ret == -EINTR)
        return abandon(r, SYS_futex);
    return finish(r, SYS_futex, ret, 0);
}

/* nanosleep and clock_nanosleep, which block as a read can. When a signal interrupts a
 * relative sleep, the kernel writes the time left into the record; the caller gets it
 * with EINTR. (In record that does not happen: the recorder holds signals back while a
 * buffered call runs, and abandons a sleep it stops, which is made again traced, with the
 * caller's pointer for the time left: a bad one fails there with EFAULT, as natively.) */
static long sleep_buffered(long nr, long *a)
{
    int at = nr == SYS_nanosleep ? 0 : 2; /* the request; the time left follows it */
    int relative = nr == SYS_nanosleep || !((int)a[1] & TIMER_ABSTIME);
    struct timespec *left = (struct timespec *)a[at + 1], rest;
    struct rrgdb_record *r = begin(sizeof rest);
    if (!r)
        return NOT_BUFFERED;
    a[at + 1] = (long)r->data;
    long ret = call(r, nr, a);
    if (ret == RRGDB_ABANDONED && relative) {
        /* Made again, traced, for the time left (the site would sleep the full time, and
         * tell an interrupted caller the full time was left). The time is copied to the
         * stack: once the record is committed, a sibling thread may overwrite it before
         * the kernel reads it. */
        copy(&rest, r->data, sizeof rest);
        finish(r, nr, ret, sizeof rest);
        a[at] = (long)&rest;
        a[at + 1] = (long)left;
        return traced(nr, a[0], a[1], a[2], a[3], 0, 0);
    }
    if (ret == RRGDB_ABANDONED)
        return abandon(r, nr); /* the site makes it again, for the same deadline */
    size_t got = ret == -EINTR && relative && left ? sizeof rest : 0;
    copy(left, r->data, got);
    return finish(r, nr, ret, got);
}

/* recvfrom with a source address. The kernel writes the caller's data, address and
 * address length, as natively (see keep_output); the record keeps the data, then the
 * length the kernel wrote, then as many bytes of the address as it wrote: the length the
 * caller gave allows, read before the call (readable). */
static long recvfrom_buffered(long *a)
{
    uint8_t *buf = (uint8_t *)a[1], *addr = (uint8_t *)a[4];
    uint32_t *addrlen = (uint32_t *)a[5];
    if (!addr || !addrlen)
        return output(SYS_recvfrom, a, 1, (size_t)a[2], RET_BYTES);
    size_t at = ((size_t)a[2] + 7) & ~(size_t)7;
    if (at > MAX_IO || !readable(addrlen, sizeof *addrlen))
        return NOT_BUFFERED;
    uint32_t room = *addrlen;
    struct rrgdb_record *r = begin(at + 8 + MAX_NAME);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, SYS_recvfrom, a);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, SYS_recvfrom);
    if (ret < 0)
        return finish(r, SYS_recvfrom, ret, 0);
    uint32_t *len = (uint32_t *)(void *)(r->data + at);
    keep_output(r->data, buf, (size_t)ret < (size_t)a[2] ? (size_t)ret : (size_t)a[2]);
    keep_word(len, addrlen);
    size_t named = *len < room ? *len : room; /* the kernel's length is MAX_NAME at most */
    named = named < MAX_NAME ? named : MAX_NAME;
    keep_output((uint8_t *)(len + 2), addr, named);
    return finish(r, SYS_recvfrom, ret, at + 8 + named);
}

/* recvmsg into at most 16 pieces, without ancillary data (control messages stay traced:
 * SCM_RIGHTS creates fds). The kernel reads the caller's header and writes its pieces,
 * source address, address length and flags, as natively (see keep_output); the record
 * keeps the address length and the flags, room for the address (as many bytes of it as
 * the kernel wrote: the length the caller gave allows), then the data. The header and its
 * iovec array are read before the call (readable). */
static long recvmsg_buffered(long *a)
{
    struct msghdr *msg = (struct msghdr *)a[1];
    if (!readable(msg, sizeof *msg) || msg->msg_controllen || msg->msg_iovlen > MAX_PIECES ||
        !readable(msg->msg_iov, msg->msg_iovlen * sizeof *msg->msg_iov))
        return NOT_BUFFERED;
    size_t total = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        total += msg->msg_iov[i].iov_len;
    if (total > MAX_IO)
        return NOT_BUFFERED;
    uint8_t *name = (uint8_t *)msg->msg_name;
    uint32_t room = msg->msg_namelen;
    size_t head = 8 + MAX_NAME;
    struct rrgdb_record *r = begin(head + total);
    if (!r)
        return NOT_BUFFERED;
    long ret = call(r, SYS_recvmsg, a);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, SYS_recvmsg);
    if (ret < 0)
        return finish(r, SYS_recvmsg, ret, 0);
    uint32_t *len = (uint32_t *)(void *)r->data; /* then the flags, then the address */
    keep_word(len + 1, (uint32_t *)&msg->msg_flags);
    if (name) { /* else the kernel writes no length either */
        keep_word(len, &msg->msg_namelen);
        size_t named = *len < room ? *len : room;
        named = named < MAX_NAME ? named : MAX_NAME;
        keep_output(r->data + 8, name, named);
    }
    size_t got = (size_t)ret < total ? (size_t)ret : total; /* MSG_TRUNC: the full length */
    if (buffer->in_replay)
        scatter(msg->msg_iov, r->data + head, got);
    else
        gather(r->data + head, msg->msg_iov, got);
    return finish(r, SYS_recvmsg, ret, head + got);
}

/* rt_sigprocmask. The kernel reads the caller's new set and writes the old mask where the
 * caller asked for it (see keep_output), else into the record, and the library works out
 * the new mask for the replayer, which makes no syscall and sets it at the flush
 * (buffer->sigmask). EFAULT with a place for the old mask may come after the change (the
 * old mask could not be written there) as well as before it (the new set could not be
 * read): the library then asks the kernel for the mask (the record keeps it) and hands
 * that to the replayer. A new set that overlaps the old mask's place stays traced (the
 * library would read the old mask there). A signal the call unblocks is delivered as the
 * call returns: the recorder then stops the call and undoes it (the old mask is where rdx
 * points), and it is made again, traced, so that the handler runs before the call
 * returns, as POSIX says. */
static long sigprocmask_buffered(long *a)
{
    unsigned long apart = (unsigned long)a[1] - (unsigned long)a[2] + SIGSET_BYTES - 1;
    if (a[3] != SIGSET_BYTES || (a[1] && a[2] && apart < 2 * SIGSET_BYTES - 1))
        return NOT_BUFFERED; /* EINVAL from the kernel; the two overlap */
    struct rrgdb_record *r = begin(SIGSET_BYTES);
    if (!r)
        return NOT_BUFFERED;
    uint64_t change = 0, *old = (uint64_t *)(void *)r->data;
    void *oset = a[2] ? (void *)a[2] : (void *)old;
    long args[6] = {a[0], a[1], (long)oset, SIGSET_BYTES, 0, 0};
    long ret = call(r, SYS_rt_sigprocmask, args);
    if (ret == RRGDB_ABANDONED)
        return abandon(r, SYS_rt_sigprocmask);
    if (ret == -EFAULT && a[1] && a[2]) {
        untraced(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)old, SIGSET_BYTES, 0, 0);
        buffer->sigmask = *old; /* (replay: the recorded mask) */
        return finish(r, SYS_rt_sigprocmask, ret, SIGSET_BYTES);
    }
    if (ret != 0)
        return finish(r, SYS_rt_sigprocmask, ret, 0); /* nothing changed */
    keep_output(r->data, oset, SIGSET_BYTES);
    if (a[1]) {
        copy(&change, (const void *)a[1], sizeof change);
        uint64_t mask = a[0] == SIG_BLOCK ? *old | change : a[0] == SIG_UNBLOCK ? *old & ~change
                                                                                : change;
        buffer->sigmask = mask & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
    }
    return finish(r, SYS_rt_sigprocmask, ret, SIGSET_BYTES);
}

/* Whether calls that write to fd, copy it or close it stay traced because it may be
 * rrgdb's stdout or stderr, whose output replay prints at its traced writes: the fds the
 * recorder marked in stdio_fds (0-2 included: a pipeline's stages write to pipes there),
 * and those beyond that table. */
static int stdio_fd(long fd)
{
    unsigned int n = (unsigned int)fd; /* as the kernel reads it */
    return n >= RRGDB_STDIO_FDS || (buffer->stdio_fds[n / 8] >> (n % 8) & 1);
}

/* Whether a path opened may be rrgdb's stdout or stderr (/dev/stdout, /dev/fd/N,
 * /dev/pts/N, /proc/self/fd/N, ...): the recorder must see the new fd, to mark it in
 * stdio_fds (open_buffered). Reads no further than the first byte that differs, so no
 * further than a path the kernel has read. */
static int may_name_stdio(const char *path)
{
    return (path[0] == '/' && path[1] == 'd' && path[2] == 'e' && path[3] == 'v' &&
            path[4] == '/') ||
           (path[0] == '/' && path[1] == 'p' && path[2] == 'r' && path[3] == 'o' &&
            path[4] == 'c' && path[5] == '/');
}

/* open and openat. The path is the kernel's to read first (a bad one fails with EFAULT,
 * as natively); the library looks at it only once the open has succeeded, when it was
 * readable, to see whether the new fd may be rrgdb's stdout or stderr (may_name_stdio).
 * Such an fd must be marked in stdio_fds, which the recorder does at the exit of the
 * traced calls that make fds: a traced dup2(fd, fd), which changes nothing, shows it the
 * new fd, and gives replay (which emulates it) the table in that call's frame. */
static long open_buffered(long nr, long *a)
{
    long fd = plain(nr, a);
    if (fd >= 0 && may_name_stdio((const char *)a[nr == SYS_open ? 0 : 1]))
        traced(SYS_dup2, fd, fd, 0, 0, 0, 0);
    return fd;
}

/* The buffered form of syscall nr, or NOT_BUFFERED. Replay takes a buffered call's
 * result and output from the record and makes no syscall, so whatever changes the
 * address space or signal dispositions stays traced (their queries are buffered; the
 * signal mask is the exception, set by the replayer at the flush), and so do messages
 * with control data (SCM_RIGHTS creates fds), writes to rrgdb's stdout and stderr
 * (replay echoes output from those events; stdio_fd) and fcntl locks. */
static long buffered(long nr, long *a)
{
    switch (nr) {
    case SYS_read:
    case SYS_pread64:
    case SYS_getdents64:
        return output(nr, a, 1, (size_t)a[2], RET_BYTES);
    case SYS_getrandom:
        return output(nr, a, 0, (size_t)a[1], RET_BYTES);
    case SYS_recvfrom:
        return recvfrom_buffered(a);
    case SYS_recvmsg:
        return recvmsg_buffered(a);
    case SYS_readv:
        return readv_buffered(a);
    case SYS_poll:
    case SYS_ppoll:
        return poll_buffered(nr, a);
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
        return epoll_buffered(nr, a);
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
        return sleep_buffered(nr, a);
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_close:
        return stdio_fd(a[0]) ? NOT_BUFFERED : plain(nr, a);
    case SYS_stat:
    case SYS_fstat:
    case SYS_lstat:
        return output(nr, a, 1, STAT_BYTES, ALL_IF_ZERO);
    case SYS_newfstatat:
        return output(nr, a, 2, STAT_BYTES, ALL_IF_ZERO);
    case SYS_statx:
        return output(nr, a, 4, STATX_BYTES, ALL_IF_ZERO);
    case SYS_clock_gettime:
    case SYS_clock_getres:
        return output(nr, a, 1, sizeof(struct timespec), ALL_IF_ZERO);
    case SYS_time:
        return output(nr, a, 0, sizeof(time_t), ALL_IF_OK);
    case SYS_gettimeofday: /* with the obsolete timezone: traced */
        return a[1] ? NOT_BUFFERED : output(nr, a, 0, sizeof(struct timeval), ALL_IF_ZERO);
    case SYS_rt_sigaction: /* a query (no new action): the old one is the output */
        return a[1] ? NOT_BUFFERED : output(nr, a, 2, SIGACTION_BYTES, ALL_IF_ZERO);
    case SYS_rt_sigprocmask:
        return sigprocmask_buffered(a);
    case SYS_ioctl:
        switch ((unsigned int)a[1]) {
        case TCGETS:
            return output(nr, a, 2, TERMIOS_BYTES, ALL_IF_ZERO);
        case TIOCGWINSZ:
            return output(nr, a, 2, sizeof(struct winsize), ALL_IF_ZERO);
        case FIONREAD:
            return output(nr, a, 2, sizeof(int), ALL_IF_ZERO);
        }
        return NOT_BUFFERED;
    case SYS_fcntl:
        switch ((int)a[1]) {
        case F_DUPFD:
        case F_DUPFD_CLOEXEC:
            return stdio_fd(a[0]) ? NOT_BUFFERED : plain(nr, a);
        case F_GETFD:
        case F_SETFD:
        case F_GETFL:
        case F_SETFL:
            return plain(nr, a);
        }
        return NOT_BUFFERED; /* locks can block; the rest write structures */
    case SYS_futex:
        switch ((int)a[1] & FUTEX_CMD_MASK) {
        case FUTEX_WAKE:
        case FUTEX_WAKE_BITSET:
            return plain(nr, a); /* waking changes no memory */
        case FUTEX_WAIT:
        case FUTEX_WAIT_BITSET:
            return futex_wait_buffered(a);
        }
        return NOT_BUFFERED;
    case SYS_open:
    case SYS_openat:
        return open_buffered(nr, a);
    case SYS_lseek:
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2:
    case SYS_getpid:
    case SYS_gettid:
    case SYS_getppid:
    case SYS_getuid:
    case SYS_geteuid:
    case SYS_getgid:
    case SYS_getegid:
        return plain(nr, a);
    case SYS_madvise:
        switch ((int)a[2]) {
        case MADV_NORMAL:
        case MADV_RANDOM:
        case MADV_SEQUENTIAL:
        case MADV_WILLNEED:
        case MADV_HUGEPAGE:
        case MADV_NOHUGEPAGE:
        case MADV_DONTDUMP:
        case MADV_DODUMP:
        case MADV_COLD:
        case MADV_PAGEOUT:
            return plain(nr, a); /* hints: no effect on what memory holds */
        }
        return NOT_BUFFERED; /* DONTNEED, FREE, REMOVE, DONTFORK, ...: replay runs them */
    }
    return NOT_BUFFERED;
}

/* What rrgdb_buffered returns (in rax and rdx). */
struct outcome {
    long result;   /* -errno on failure */
    long buffered; /* 0: the caller makes the syscall itself, traced */
};

/* Syscall nr, if it can be buffered. The hook calls it; hidden, so the hook's call needs
 * no PLT. */
__attribute__((visibility("hidden"))) struct outcome rrgdb_buffered(long nr, long a0, long a1,
                                                                    long a2, long a3, long a4,
                                                                    long a5)
{
    long a[6] = {a0, a1, a2, a3, a4, a5};
    long ret = buffer ? buffered(nr, a) : NOT_BUFFERED;
    return (struct outcome){ret, ret != NOT_BUFFERED};
}

#include "patch.c"

/* Whether the program runs under valgrind, which loads this library (LD_PRELOAD) into the
 * program it runs on its synthetic CPU: rrgdb's scratch page, set up in the real process,
 * does not exist there, and valgrind makes the program's syscalls itself anyway. Its
 * RUNNING_ON_VALGRIND request: a no-op sequence (the rotations add up to 128) that valgrind
 * recognises, answering in rdx. */
static int under_valgrind(void)
{
    volatile unsigned long request[6] = {0x1001, 0, 0, 0, 0, 0};
    unsigned long answer = 0;
    __asm__ volatile("rolq $3,%%rdi; rolq $13,%%rdi\n\t"
                     "rolq $61,%%rdi; rolq $51,%%rdi\n\t"
                     "xchgq %%rbx,%%rbx"
                     : "=d"(answer)
                     : "a"(&request[0]), "0"(answer)
                     : "cc", "memory");
    return answer != 0;
}

__attribute__((constructor)) static void rrgdb_syscallbuf_init(void)
{
    if (!getenv("RRGDB_SYSCALLBUF") || under_valgrind())
        return;
    void *at = mmap((void *)RRGDB_SYSCALLBUF_ADDR, RRGDB_SYSCALLBUF_SIZE,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    -1, 0);
    if (at != (void *)RRGDB_SYSCALLBUF_ADDR)
        return;
    struct sock_filter filter[] = {
        /* allow only when the instruction pointer is right after the stub's syscall or
         * rrgdb's own injection site (whose syscalls rrgdb steps over anyway: a seccomp
         * stop there would only cost another ptrace stop) */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RRGDB_UNTRACED_STUB + 2, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RRGDB_INJECTION_SITE + 2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        return;
    buffer = at;
    buffer->trap_at = UINT32_MAX;
    buffer->sigmask = UINT64_MAX;
    buffer->returns = 1;
    patch_syscall_sites();
}

/* AddressSanitizer's runtime refuses to start unless it is the first library after the
 * program, and this one comes before it. Its default options turn that check off: the
 * runtime parses them before ASAN_OPTIONS, which can still change every other option. The
 * recorder also appends the option to ASAN_OPTIONS, which a program (`env`, a shell, make)
 * may replace for its children, and which still works for a program that defines its own
 * default options (the program's definition comes first in the lookup, not this one). */
const char *__asan_default_options(void)
{
    return "verify_asan_link_order=0";
}

/* -- the exported wrappers: a program's own calls ------------------------------------ */

/* None for the calls that are cancellation points (read, write, open, close, their p-, v-
 * and -at forms, nanosleep, poll, epoll_wait, recvmsg, sendmsg, ...): a wrapper would
 * bypass libc's cancellation, and pthread_cancel could not end a thread waiting in one.
 * The patched sites in libc buffer those calls. */

/* The libc convention: -1 and errno on failure. */
static long result(long ret)
{
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

#define SYSCALL(nr, a, b, c, d)                                                            \
    result(hooked(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0))

/* syscall(3), by which programs make futex waits and wakes (and other calls) of their
 * own: libc's loads the number from an argument, so its site is not one the patcher can
 * recognise. Like libc's, it takes six arguments whatever the number needs. */
long syscall(long nr, ...)
{
    va_list args;
    va_start(args, nr);
    long a = va_arg(args, long), b = va_arg(args, long), c = va_arg(args, long);
    long d = va_arg(args, long), e = va_arg(args, long), f = va_arg(args, long);
    va_end(args);
    return result(hooked(nr, a, b, c, d, e, f));
}

off_t lseek(int fd, off_t offset, int whence)
{
    return SYSCALL(SYS_lseek, fd, offset, whence, 0);
}
off64_t lseek64(int fd, off64_t offset, int whence)
{
    return SYSCALL(SYS_lseek, fd, offset, whence, 0);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return SYSCALL(SYS_newfstatat, dirfd, path, st, flags);
}
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return SYSCALL(SYS_newfstatat, dirfd, path, st, flags);
}

int fstat(int fd, struct stat *st)
{
    return SYSCALL(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH);
}
int fstat64(int fd, struct stat64 *st)
{
    return SYSCALL(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH);
}

int stat(const char *path, struct stat *st)
{
    return SYSCALL(SYS_newfstatat, AT_FDCWD, path, st, 0);
}
int stat64(const char *path, struct stat64 *st)
{
    return SYSCALL(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

int lstat(const char *path, struct stat *st)
{
    return SYSCALL(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}
int lstat64(const char *path, struct stat64 *st)
{
    return SYSCALL(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

int access(const char *path, int mode)
{
    return SYSCALL(SYS_access, path, mode, 0, 0);
}

ssize_t getdents64(int fd, void *buf, size_t count)
{
    return SYSCALL(SYS_getdents64, fd, buf, count, 0);
}

pid_t getpid(void)
{
    return SYSCALL(SYS_getpid, 0, 0, 0, 0);
}

pid_t getppid(void)
{
    return SYSCALL(SYS_getppid, 0, 0, 0, 0);
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    return SYSCALL(SYS_clock_gettime, clock, ts, 0, 0);
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    return SYSCALL(SYS_gettimeofday, tv, tz, 0, 0);
}

ssize_t getrandom(void *buf, size_t count, unsigned int flags)
{
    return SYSCALL(SYS_getrandom, buf, count, flags, 0);
}
