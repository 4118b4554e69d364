"""cffi API-mode build of rrgdb's native layer (ptrace and friends, the spawn helper, the
memory digest)."""

from cffi import FFI

# setuptools wants paths relative to the project root, where setup.py runs.
_STUBS = "stubs"

ffibuilder = FFI()
ffibuilder.cdef(
    """
    struct rrgdb_spawn_options { uint64_t stack_soft; uint64_t stack_hard; int no_core;
                                  uint64_t ignored; };
    int rrgdb_spawn(const char *path, char *const argv[], char *const envp[],
                    const char *cwd, const struct rrgdb_spawn_options *options, int err_fd);

    long rr_ptrace(long request, int pid, uintptr_t addr, uintptr_t data);
    int rr_waitpid(int pid, int *status, int options);
    long rr_read_mem(int pid, uintptr_t addr, void *buf, size_t len);
    long rr_write_mem(int pid, uintptr_t addr, const void *buf, size_t len);
    long rr_getregs(int pid, void *regs);
    long rr_setregs(int pid, const void *regs);
    long rr_getregset(int pid, int note_type, void *buf, size_t len);
    long rr_setregset(int pid, int note_type, const void *buf, size_t len);
    int rr_syscall_info(int pid, uint64_t out[12]);
    long rr_debugreg_offset(int index);
    int rr_tgkill(int tgid, int tid, int sig);
    int rr_personality(unsigned long persona);
    int rr_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
                 unsigned long a5);
    int rr_perf_event_open(uint32_t type, uint64_t config, uint64_t sample_period,
                           int pid, int cpu, int group_fd, unsigned long flags);
    uint64_t rr_rdtsc(void);
    uint64_t rr_rdtscp(uint32_t *aux);
    void rr_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
    long rr_arch_prctl(int code, unsigned long arg);
    size_t rr_user_regs_size(void);
    int rrgdb_memory_hash(int pid, const uint64_t *ranges, size_t count, uint8_t out[32]);
    long rrgdb_page_hashes(int pid, const uint64_t *ranges, size_t count, uint64_t *out,
                           size_t capacity);
    int mallopt(int param, int value);
    #define M_TRIM_THRESHOLD ...
    #define M_MMAP_THRESHOLD ...
    """
)
ffibuilder.set_source(
    "rrgdb.native._rrgdb_native",
    r"""
    #include <errno.h>
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    #include <elf.h>
    #include <linux/perf_event.h>
    #include <malloc.h>
    #include <sys/personality.h>
    #include <sys/prctl.h>
    #include <sys/ptrace.h>
    #include <sys/syscall.h>
    #include <sys/uio.h>
    #include <sys/user.h>
    #include <sys/wait.h>
    #include <unistd.h>
    #include <x86intrin.h>
    #include <cpuid.h>
    #include "memory_hash.h"
    #include "spawn.h"

    long rr_ptrace(long request, int pid, uintptr_t addr, uintptr_t data) {
        errno = 0;
        return ptrace((enum __ptrace_request)request, pid, (void *)addr, (void *)data);
    }
    int rr_waitpid(int pid, int *status, int options) { return waitpid(pid, status, options); }
    long rr_read_mem(int pid, uintptr_t addr, void *buf, size_t len) {
        struct iovec local = {buf, len}, remote = {(void *)addr, len};
        return process_vm_readv(pid, &local, 1, &remote, 1, 0);
    }
    long rr_write_mem(int pid, uintptr_t addr, const void *buf, size_t len) {
        struct iovec local = {(void *)buf, len}, remote = {(void *)addr, len};
        return process_vm_writev(pid, &local, 1, &remote, 1, 0);
    }
    long rr_getregs(int pid, void *regs) { return ptrace(PTRACE_GETREGS, pid, 0, regs); }
    long rr_setregs(int pid, const void *regs) { return ptrace(PTRACE_SETREGS, pid, 0, regs); }
    long rr_getregset(int pid, int note_type, void *buf, size_t len) {
        struct iovec io = {buf, len};
        if (ptrace(PTRACE_GETREGSET, pid, (void *)(long)note_type, &io) < 0) return -1;
        return (long)io.iov_len;
    }
    long rr_setregset(int pid, int note_type, const void *buf, size_t len) {
        struct iovec io = {(void *)buf, len};
        return ptrace(PTRACE_SETREGSET, pid, (void *)(long)note_type, &io);
    }
    /* out: op, nr, args[6], rval, is_error, instruction_pointer, stack_pointer */
    int rr_syscall_info(int pid, uint64_t out[12]) {
        struct __ptrace_syscall_info info;
        memset(&info, 0, sizeof info);
        if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info) < 0) return -1;
        memset(out, 0, 12 * sizeof(uint64_t));
        out[0] = info.op;
        out[10] = info.instruction_pointer;
        out[11] = info.stack_pointer;
        if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
            out[1] = info.entry.nr;
            memcpy(&out[2], info.entry.args, 6 * sizeof(uint64_t));
        } else if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
            out[8] = (uint64_t)info.exit.rval;
            out[9] = info.exit.is_error;
        } else if (info.op == PTRACE_SYSCALL_INFO_SECCOMP) {
            out[1] = info.seccomp.nr;
            memcpy(&out[2], info.seccomp.args, 6 * sizeof(uint64_t));
            out[8] = info.seccomp.ret_data;
        }
        return info.op;
    }
    long rr_debugreg_offset(int index) { return offsetof(struct user, u_debugreg) + 8 * index; }
    int rr_tgkill(int tgid, int tid, int sig) { return syscall(SYS_tgkill, tgid, tid, sig); }
    int rr_personality(unsigned long persona) { return personality(persona); }
    int rr_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
                 unsigned long a5) {
        return prctl(option, a2, a3, a4, a5);
    }
    int rr_perf_event_open(uint32_t type, uint64_t config, uint64_t sample_period,
                           int pid, int cpu, int group_fd, unsigned long flags) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = type;
        attr.config = config;
        attr.sample_period = sample_period;
        attr.disabled = 1;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        return syscall(SYS_perf_event_open, &attr, pid, cpu, group_fd, flags);
    }
    uint64_t rr_rdtsc(void) { return __rdtsc(); }
    uint64_t rr_rdtscp(uint32_t *aux) {
        unsigned int a;
        uint64_t v = __rdtscp(&a);
        *aux = a;
        return v;
    }
    void rr_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
        __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
    }
    long rr_arch_prctl(int code, unsigned long arg) {
        return syscall(SYS_arch_prctl, code, arg);
    }
    size_t rr_user_regs_size(void) { return sizeof(struct user_regs_struct); }
    """,
    sources=[f"{_STUBS}/spawn.c", f"{_STUBS}/memory_hash.c"],
    include_dirs=[_STUBS],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
