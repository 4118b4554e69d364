/* rrgdb's syscall buffer: a library preloaded into recorded programs.
 *
 * Under `rrgdb record` (RRGDB_SYSCALLBUF set) the constructor maps a buffer at a fixed
 * address and installs a seccomp filter that lets syscalls made from ONE instruction --
 * the `syscall` of the untraced stub in rrgdb's scratch page -- run without a ptrace stop,
 * and sends every other syscall to the recorder. The wrappers below perform a few hot
 * syscalls through that stub and append a record (number, result, output bytes) to the
 * buffer; the recorder copies the buffer into the trace whenever it stops the thread
 * anyway, and empties it.
 *
 * Under replay the same code runs with the buffer's in_replay byte set (by the replayer):
 * the wrappers skip the syscall and take the result and output bytes from the records the
 * replayer put in the buffer, so replay needs no ptrace stop for them either. Everything
 * else -- the copies, the bookkeeping -- is the same in record and replay.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

static struct rrgdb_syscallbuf *buffer;

/* A syscall through the untraced stub in rrgdb's scratch page. */
static long untraced(long nr, long a, long b, long c, long d)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("call *%[stub]"
                     : "+r"(rax)
                     : [stub] "r"((long)RRGDB_UNTRACED_STUB), "r"(rdi), "r"(rsi), "r"(rdx),
                       "r"(r10)
                     : "rcx", "r11", "memory");
    return rax;
}

__attribute__((constructor)) static void rrgdb_syscallbuf_init(void)
{
    if (!getenv("RRGDB_SYSCALLBUF"))
        return;
    void *at = mmap((void *)RRGDB_SYSCALLBUF_ADDR, RRGDB_SYSCALLBUF_SIZE,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    -1, 0);
    if (at != (void *)RRGDB_SYSCALLBUF_ADDR)
        return;
    struct sock_filter filter[] = {
        /* allow only when the instruction pointer is right after the stub's syscall */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RRGDB_UNTRACED_STUB + 2, 0, 1),
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
}

/* The next record, or NULL when buffering is off (then the caller makes a traced call). */
static struct rrgdb_record *begin(size_t out_bytes)
{
    struct rrgdb_syscallbuf *b = buffer;
    if (!b || b->disabled || b->locked || b->seq >= b->trap_at)
        return NULL;
    size_t need = sizeof(struct rrgdb_record) + out_bytes;
    if (b->pos + need + 8 > RRGDB_SYSCALLBUF_SIZE - sizeof *b)
        return NULL;
    b->locked = 1;
    b->seq++;
    return (struct rrgdb_record *)(b->data + b->pos);
}

static long finish(struct rrgdb_record *r, long nr, long ret, size_t out_bytes)
{
    struct rrgdb_syscallbuf *b = buffer;
    if (!b->in_replay) {
        r->ret = ret;
        r->syscallno = (uint32_t)nr;
        r->size = (uint32_t)(sizeof *r + out_bytes);
    }
    b->pos += (r->size + 7) & ~7u;
    b->locked = 0;
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

/* The result: from the kernel when recording, from the record when replaying. The stub
 * is called either way (in replay rrgdb's scratch page holds a stub that makes no syscall
 * but leaves the same registers), so the two runs execute the same instructions. */
static long call(struct rrgdb_record *r, long nr, long a, long b, long c, long d)
{
    long ret = untraced(nr, a, b, c, d);
    return buffer->in_replay ? r->ret : ret;
}

ssize_t read(int fd, void *buf, size_t count)
{
    struct rrgdb_record *r = fd > 2 && count <= 65536 ? begin(count) : NULL;
    if (!r)
        return syscall(SYS_read, fd, buf, count);
    long ret = call(r, SYS_read, fd, (long)r->data, (long)count, 0);
    size_t got = ret > 0 ? (size_t)ret : 0;
    memcpy(buf, r->data, got);
    return finish(r, SYS_read, ret, got);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
    struct rrgdb_record *r = count <= 65536 ? begin(count) : NULL;
    if (!r)
        return syscall(SYS_pread64, fd, buf, count, offset);
    long ret = call(r, SYS_pread64, fd, (long)r->data, (long)count, offset);
    size_t got = ret > 0 ? (size_t)ret : 0;
    memcpy(buf, r->data, got);
    return finish(r, SYS_pread64, ret, got);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    /* stdout/stderr stay traced: replay echoes them from those events */
    struct rrgdb_record *r = fd > 2 ? begin(0) : NULL;
    if (!r)
        return syscall(SYS_write, fd, buf, count);
    return finish(r, SYS_write, call(r, SYS_write, fd, (long)buf, (long)count, 0), 0);
}

off_t lseek(int fd, off_t offset, int whence)
{
    struct rrgdb_record *r = begin(0);
    if (!r)
        return syscall(SYS_lseek, fd, offset, whence);
    return finish(r, SYS_lseek, call(r, SYS_lseek, fd, offset, whence, 0), 0);
}

pid_t getppid(void)
{
    struct rrgdb_record *r = begin(0);
    if (!r)
        return syscall(SYS_getppid);
    return finish(r, SYS_getppid, call(r, SYS_getppid, 0, 0, 0, 0), 0);
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    struct rrgdb_record *r = begin(sizeof *ts);
    if (!r)
        return syscall(SYS_clock_gettime, clock, ts);
    long ret = call(r, SYS_clock_gettime, clock, (long)r->data, 0, 0);
    if (ret == 0)
        memcpy(ts, r->data, sizeof *ts);
    return finish(r, SYS_clock_gettime, ret, ret == 0 ? sizeof *ts : 0);
}

ssize_t getrandom(void *buf, size_t count, unsigned int flags)
{
    struct rrgdb_record *r = count <= 65536 ? begin(count) : NULL;
    if (!r)
        return syscall(SYS_getrandom, buf, count, flags);
    long ret = call(r, SYS_getrandom, (long)r->data, (long)count, flags, 0);
    size_t got = ret > 0 ? (size_t)ret : 0;
    memcpy(buf, r->data, got);
    return finish(r, SYS_getrandom, ret, got);
}

int close(int fd)
{
    struct rrgdb_record *r = fd > 2 ? begin(0) : NULL;
    if (!r)
        return syscall(SYS_close, fd);
    return finish(r, SYS_close, call(r, SYS_close, fd, 0, 0, 0), 0);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    struct rrgdb_record *r = begin(0);
    if (!r)
        return syscall(SYS_openat, dirfd, path, flags, mode);
    return finish(r, SYS_openat, call(r, SYS_openat, dirfd, (long)path, flags, mode), 0);
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return openat(AT_FDCWD, path, flags, mode);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    struct rrgdb_record *r = begin(sizeof *st);
    if (!r)
        return syscall(SYS_newfstatat, dirfd, path, st, flags);
    long ret = call(r, SYS_newfstatat, dirfd, (long)path, (long)r->data, flags);
    if (ret == 0)
        memcpy(st, r->data, sizeof *st);
    return finish(r, SYS_newfstatat, ret, ret == 0 ? sizeof *st : 0);
}

int fstat(int fd, struct stat *st)
{
    return fstatat(fd, "", st, AT_EMPTY_PATH);
}

int stat(const char *path, struct stat *st)
{
    return fstatat(AT_FDCWD, path, st, 0);
}

int lstat(const char *path, struct stat *st)
{
    return fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}
