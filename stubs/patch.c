/* Patching the syscall sites of libc and the dynamic loader (part of preload.c, which
 * includes it).
 *
 * libc calls its syscalls inline (`mov $NR,%eax; syscall`), so LD_PRELOAD cannot reach
 * the calls libc makes for itself (printf -> write, readdir -> getdents64, fopen ->
 * openat). The constructor finds those sites for the syscalls rrgdb_buffered() buffers
 * and replaces each with a jump to a trampoline that calls it through the hook. A
 * buffered call leaves the registers exactly as the syscall would have (rax = result,
 * rcx = the address after the `syscall`, r11 = rflags, everything else unchanged); any
 * other call is made with the site's registers, by its own `syscall` where it is kept.
 *
 * The constructor runs in replay too, on the trace's copy of the same libc, and does the
 * same thing: reading memory, and mmap/mprotect through traced syscalls that replay
 * executes for real at the recorded addresses.
 */
#include <link.h>
#include <string.h>

#define MAX_SITES 512
#define TRAMPOLINE_SIZE 128 /* a power of two: the unwind information finds a slot's start */
#define NEAR 0x7ff00000L /* a rel32 reaches this far */
/* Bytes below the stack pointer the hook clears after rrgdb_buffered() returns: its
 * frames hold record- or replay-only values (in_replay branches), and preemption points
 * hash the whole stack. Covers its deepest path (-fstack-usage: ~420 bytes); no more, as
 * the stack may be a small sigaltstack. */
#define SCRUB 512
#define RRGDB_STR_(x) #x
#define RRGDB_STR(x) RRGDB_STR_(x)

/* Entered from a trampoline (or hooked()) with rax = the syscall number, the arguments
 * in rdi, rsi, rdx, r10, r8, r9, the red zone skipped and then the address where the
 * syscall's caller resumes pushed. Calls rrgdb_buffered with the C convention. Buffered:
 * rax = the result, rcx = 1, r11 = rflags. Not buffered: rcx = 0, for the caller to make
 * the syscall itself. Every other register is kept.
 *
 * The saved flags leave the trap flag out: a debugger single-stepping here (replay's
 * reverse-stepi) would otherwise leave a stack word that differs from the one of a run
 * without steps, and replay finds moments again by their registers and stack. popfq then
 * clears TF, which still ends the step it is in. For the same reason the copy of the
 * flags that the exit pushes to make r11 is zeroed (with a mov, which keeps the flags)
 * once popped: stepped through, it held TF, and a moment after it, in the dead stack
 * that replay compares, was never found again by a run ("lost position").
 *
 * Its unwind information (CFI) skips the trampoline: the caller's frame is the function
 * that made the syscall, at the pushed address, with its own stack pointer. So a
 * debugger's backtrace from inside the buffer's code, and an unwind (pthread_cancel, C++
 * exceptions), go on through the program's frames. */
__asm__(".text\n"
        ".globl rrgdb_syscall_hook\n"
        ".hidden rrgdb_syscall_hook\n"
        ".type rrgdb_syscall_hook,@function\n"
        "rrgdb_syscall_hook:\n"
        "    .cfi_startproc\n"
        "    .cfi_def_cfa %rsp, 144\n" /* return address, resume address, red zone */
        "    .cfi_offset %rip, -136\n"
        "    pushfq\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    andq $-257,(%rsp)\n" /* the saved copy without TF: see below */
        "    push %rbp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    .cfi_offset %rbp, -160\n"
        "    mov %rsp,%rbp\n"
        "    .cfi_def_cfa_register %rbp\n"
        "    push %rax\n"
        "    push %rdi\n"
        "    push %rsi\n"
        "    push %rdx\n"
        "    push %r8\n"
        "    push %r9\n"
        "    push %r10\n"
        "    cld\n"
        "    and $-16,%rsp\n"
        "    sub $8,%rsp\n"
        "    push %r9\n"
        "    mov %r8,%r9\n"
        "    mov %r10,%r8\n"
        "    mov %rdx,%rcx\n"
        "    mov %rsi,%rdx\n"
        "    mov %rdi,%rsi\n"
        "    mov %rax,%rdi\n"
        "    call rrgdb_buffered\n"
        "    mov %rax,%r11\n"
        "    mov %rdx,%rsi\n"
        "    lea -" RRGDB_STR(SCRUB) "(%rsp),%rdi\n"
        "    mov $" RRGDB_STR(SCRUB) "/8,%ecx\n"
        "    xor %eax,%eax\n"
        "    rep stosq\n"
        "    mov %r11,%rax\n"
        "    mov %rsi,%rcx\n"
        "    lea -56(%rbp),%rsp\n"
        "    pop %r10\n"
        "    pop %r9\n"
        "    pop %r8\n"
        "    pop %rdx\n"
        "    pop %rsi\n"
        "    pop %rdi\n"
        "    jrcxz 1f\n"
        "    lea 8(%rsp),%rsp\n"
        "    jmp 2f\n"
        "1:  pop %rax\n"
        "2:  pop %rbp\n"
        "    .cfi_def_cfa %rsp, 152\n"
        "    .cfi_restore %rbp\n"
        "    popfq\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    pushfq\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pop %r11\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    movq $0,-8(%rsp)\n" /* the flags' copy, with TF if stepped: see below */
        "    ret\n"
        "    .cfi_endproc\n"
        ".size rrgdb_syscall_hook, .-rrgdb_syscall_hook\n");
void rrgdb_syscall_hook(void);

/* The traced syscall of an XOR or CMP site's trampoline (whose own `syscall` and cmp the
 * patch replaced), jumped to with the stack as the hook has it minus the return address:
 * the resume address (the site's end) on top, above it the skipped red zone. Here, not in
 * the trampoline, so that the syscall is made in code with unwind information: a signal
 * delivered during it (pthread_cancel's) can unwind the caller. `ret $128` returns to the
 * site's end with the caller's stack pointer and the cmp's flags. */
#define TRACED_STUB(name, cmp)                                                             \
    __asm__(".text\n"                                                                    \
            ".globl " #name "\n"                                                         \
            ".hidden " #name "\n"                                                        \
            ".type " #name ",@function\n" #name ":\n"                                    \
            "    .cfi_startproc\n"                                                       \
            "    .cfi_def_cfa %rsp, 136\n"                                               \
            "    .cfi_offset %rip, -136\n"                                               \
            "    syscall\n"                                                              \
            "    cmp $" #cmp ",%rax\n"                                                   \
            "    ret $128\n"                                                             \
            "    .cfi_endproc\n"                                                         \
            ".size " #name ", .-" #name "\n");                                           \
    void name(void)
TRACED_STUB(rrgdb_traced_cmp4096, -4096);
TRACED_STUB(rrgdb_traced_cmp4095, -4095);

/* The trampolines: MAX_SITES slots of this library's own code (16 pages of int3 until the
 * constructor writes them, see write_trampoline), so that a debugger finds a symbol and
 * unwind information there: `next` over a patched site steps over its trampoline as over
 * a call, and a backtrace from inside one reaches the program. Each slot is a function
 * of its own (rrgdb_trampoline_N): gdb's reverse-step, back from a site's end into the
 * slot's last jump, runs back to the start of the function it is in before it steps out
 * to the site, and with one symbol for the whole area it went back to the area's start,
 * which the call had never run, and on to an earlier stop. Every slot has the same
 * layout, so one set of rules describes them all: the CFA is the stack pointer plus what
 * the slot has pushed or skipped so far (0, then the red zone, then the resume address,
 * then 0 again), and the caller resumes at the site's end, which the rule reads from the
 * slot's `lea <end>(%rip),%r11` (rel32 at +8, relative to +12): slot = pc & -128, then
 * slot + 12 + the sign-extended rel32 (DW_CFA_val_expression for rip, register 16), in
 * operations valgrind's unwinder knows too (no dup, deref_size, xor or shra): under valgrind the
 * library is loaded into the client, and each unknown one was a warning on stderr. */
#define TRAMPOLINE_SLOT "0x80,0x00,0x09,0x80,0x1a," /* breg16 0; const1s -128; and */
#define TRAMPOLINE_REL32                          /* the rel32, zero-extended: */          \
    TRAMPOLINE_SLOT "0x23,0x08,0x06,"             /* slot; plus_uconst 8; deref; */        \
    "0x0c,0xff,0xff,0xff,0xff,0x1a,"              /* const4u 2^32-1; and */
#define TRAMPOLINE_CFI_RIP                                                                 \
    ".cfi_escape 0x16,0x10,43,"     /* DW_CFA_val_expression rip, 43 bytes: */            \
    TRAMPOLINE_SLOT "0x23,0x0c,"    /* slot; plus_uconst 12 */                            \
    TRAMPOLINE_REL32 "0x22,"        /* rel32; plus */                                     \
    TRAMPOLINE_REL32                /* rel32 again (no dup in valgrind), then minus */    \
    "0x08,0x1f,0x25,0x08,0x20,0x24,0x1c\n" /* 2^32 if negative: const1u 31; shr; const1u \
                                              32; shl; minus */
__asm__(".pushsection .text.rrgdb_trampolines,\"ax\",@progbits\n"
        ".balign 4096\n"
        ".globl rrgdb_trampolines\n"
        ".hidden rrgdb_trampolines\n"
        "rrgdb_trampolines:\n"
        ".altmacro\n"
        ".macro rrgdb_trampoline_symbol n\n" /* rrgdb_trampoline_N: slot N */
        "rrgdb_trampoline_\\n:\n"
        "    .type rrgdb_trampoline_\\n,@function\n"
        "    .size rrgdb_trampoline_\\n," RRGDB_STR(TRAMPOLINE_SIZE) "\n"
        ".endm\n"
        ".set .Lrrgdb_slot,0\n"
        ".rept " RRGDB_STR(MAX_SITES) "\n"
        "    rrgdb_trampoline_symbol %.Lrrgdb_slot\n"
        "    .set .Lrrgdb_slot,.Lrrgdb_slot+1\n"
        "    .cfi_startproc simple\n"
        "    .cfi_def_cfa %rsp, 0\n"
        "    " TRAMPOLINE_CFI_RIP
        "    .fill 5,1,0xcc\n"   /* 0: lea -128(%rsp),%rsp */
        "    .cfi_def_cfa_offset 128\n"
        "    .fill 9,1,0xcc\n"   /* 5: lea <end>(%rip),%r11; 12: push %r11 */
        "    .cfi_def_cfa_offset 136\n"
        "    .fill 20,1,0xcc\n"  /* 14: the site's mov or xor, nops; 19: call the hook;
                                   24: jrcxz 52f; 26: lea 136(%rsp),%rsp */
        "    .cfi_def_cfa_offset 0\n"
        "    .fill 18,1,0xcc\n"  /* 34: lea <after>(%rip),%rcx; 41: cmp or nops;
                                   47: jmp <end> */
        "    .cfi_def_cfa_offset 136\n"
        "    .fill 8,1,0xcc\n"   /* 52: not buffered: jmp <traced stub>, or (MOV)
                                   lea 136(%rsp),%rsp */
        "    .cfi_def_cfa_offset 0\n"
        "    .fill 68,1,0xcc\n"  /* 60: (MOV) jmp <the site's syscall> */
        "    .cfi_endproc\n"
        ".endr\n"
        ".noaltmacro\n"
        ".popsection\n");
__attribute__((visibility("hidden"))) extern uint8_t rrgdb_trampolines[];

/* A syscall from C (the exported wrappers): buffered through the hook, else traced. */
static long hooked(long nr, long a, long b, long c, long d, long e, long f)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("lea -128(%%rsp),%%rsp\n\t"
                     "lea 1f(%%rip),%%r11\n\t" /* where this function resumes */
                     "push %%r11\n\t"
                     "call rrgdb_syscall_hook\n\t"
                     "lea 136(%%rsp),%%rsp\n\t"
                     "test %%rcx,%%rcx\n\t"
                     "jnz 1f\n\t"
                     "syscall\n"
                     "1:"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory", "cc");
    return rax;
}

/* The syscalls whose sites are patched: those buffered() can buffer. */
static const uint16_t patched_syscalls[] = {
    SYS_read, SYS_write, SYS_close, SYS_stat, SYS_fstat, SYS_lstat, SYS_poll, SYS_lseek,
    SYS_ioctl, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_access,
    SYS_sendto, SYS_recvfrom, SYS_fcntl, SYS_getuid, SYS_getgid, SYS_geteuid, SYS_getegid,
    SYS_getppid, SYS_gettid, SYS_time, SYS_getdents64, SYS_clock_gettime, SYS_clock_getres,
    SYS_open, SYS_openat, SYS_newfstatat, SYS_faccessat, SYS_getrandom, SYS_statx,
    SYS_faccessat2, SYS_futex, SYS_getpid, SYS_gettimeofday, SYS_rt_sigaction,
    SYS_rt_sigprocmask, SYS_madvise, SYS_nanosleep, SYS_clock_nanosleep, SYS_ppoll, SYS_epoll_wait,
    SYS_epoll_pwait, SYS_recvmsg, SYS_sendmsg,
};

/* A site, by the bytes it replaces:
 *   MOV: `mov $NR,%eax; syscall` (7 bytes);
 *   XOR: read's `xor %eax,%eax; syscall; cmp $-4096 (or -4095),%rax` (10 bytes);
 *   CMP: `syscall; cmp $-4096 (or -4095),%rax` (8 bytes) shortly after a `mov $NR,%eax`
 *        (the arguments are set up in between).
 * The jump to the trampoline replaces the mov, or the syscall and the cmp. The number is in eax at the jump (the trampoline
 * executes the MOV and XOR sites' own first instruction), and whatever it is, a call the
 * hook does not buffer is made with the site's registers and stack pointer -- by the
 * site's own `syscall` (MOV), or the trampoline's -- so a wrongly guessed number costs
 * only time. */
enum kind { NONE, MOV, XOR, CMP };

struct site {
    uint8_t *at;
    enum kind kind;
};

static const uint8_t length[] = {[MOV] = 7, [XOR] = 10, [CMP] = 8};
static const uint8_t prefix[] = {[MOV] = 5, [XOR] = 2, [CMP] = 0}; /* before the syscall */
/* Bytes replaced by the jump (and never-reached nops): a MOV site keeps its `syscall`, so
 * a jump to it from elsewhere still makes the syscall. */
static const uint8_t rewritten[] = {[MOV] = 5, [XOR] = 10, [CMP] = 8};
static const char *const filler[] = {[0] = "", [3] = "\x0f\x1f\x00",
                                     [5] = "\x0f\x1f\x44\0\0",
                                     [6] = "\x66\x0f\x1f\x44\0\0"}; /* nops, by length */

static struct site sites[MAX_SITES];
static size_t site_count;

static int patched(unsigned int nr)
{
    for (size_t i = 0; i < sizeof patched_syscalls / sizeof patched_syscalls[0]; i++)
        if (patched_syscalls[i] == nr)
            return 1;
    return 0;
}

static int matches(const uint8_t *p, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)bytes[i])
            return 0;
    return 1;
}

static int mov_eax(const uint8_t *p) /* `mov $NR,%eax` with NR patched */
{
    return p[0] == 0xb8 && p[3] == 0 && p[4] == 0 && patched(p[1] | (unsigned int)p[2] << 8);
}

static int syscall_cmp(const uint8_t *p) /* `syscall; cmp $-4096 (or -4095),%rax` */
{
    return matches(p, "\x0f\x05\x48\x3d", 4) && p[4] <= 1 && matches(p + 5, "\xf0\xff\xff", 3);
}

/* The site around the `syscall` at p, if any (its start in *at). */
static enum kind site_kind(const uint8_t *p, const uint8_t *start, const uint8_t **at)
{
    if (p - 5 >= start && mov_eax(p - 5)) {
        *at = p - 5;
        return MOV;
    }
    if (p - 2 >= start && matches(p - 2, "\x31\xc0", 2) && syscall_cmp(p)) {
        *at = p - 2;
        return XOR;
    }
    *at = p;
    if (syscall_cmp(p))
        for (const uint8_t *q = p - 5; q >= start && q > p - 20; q--)
            if (mov_eax(q))
                return CMP;
    return NONE;
}

static int32_t rel32(const uint8_t *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* Whether a direct jump or call may land on one of the instructions an XOR or CMP site's
 * patch removes (its `syscall` or cmp): any byte within 4 KiB that could be one counts
 * (a false alarm costs one site). Jumps from farther away, and indirect jumps, are not
 * looked for: these sites are in small functions of their own. */
static int jumped_into(const struct site *s, const uint8_t *start, const uint8_t *end)
{
    const uint8_t *removed[2] = {s->at + prefix[s->kind], s->at + prefix[s->kind] + 2};
    const uint8_t *from = s->at - 4096 > start ? s->at - 4096 : start;
    const uint8_t *to = s->at + 4096 < end - 6 ? s->at + 4096 : end - 6;
    for (const uint8_t *p = from; p < to; p++) {
        const uint8_t *target = NULL;
        if ((p[0] & 0xf0) == 0x70 || p[0] == 0xeb)
            target = p + 2 + (int8_t)p[1];
        else if (p[0] == 0xe8 || p[0] == 0xe9)
            target = p + 5 + rel32(p + 1);
        else if (p[0] == 0x0f && (p[1] & 0xf0) == 0x80)
            target = p + 6 + rel32(p + 2);
        if (target && target != s->at && (target == removed[0] || target == removed[1]))
            return 1;
    }
    return 0;
}

/* The sites in [start, end), found from their `syscall` instructions (0f 05: looking
 * for the rarer second byte is the fastest way through libc's 1.4 MB). */
static void find_sites(uint8_t *start, uint8_t *end)
{
    const uint8_t *free_from = start; /* sites must not overlap */
    for (uint8_t *q = start + 1; site_count < MAX_SITES; q++) {
        q = memchr(q, 0x05, (size_t)(end - q));
        if (!q || q + 7 > end)
            break;
        uint8_t *p = q - 1;
        if (*p != 0x0f)
            continue;
        const uint8_t *at;
        enum kind kind = site_kind(p, start, &at);
        if (kind == NONE || at < free_from)
            continue;
        struct site site = {(uint8_t *)at, kind};
        if (kind != MOV && jumped_into(&site, start, end))
            continue;
        sites[site_count++] = site;
        free_from = at + length[kind];
    }
}

static uint8_t *emit(uint8_t *t, const void *bytes, size_t n)
{
    copy(t, bytes, n);
    return t + n;
}

/* A rel32 field at t that addresses target (from the end of the instruction, which the
 * field ends). */
static uint8_t *emit_rel32(uint8_t *t, const uint8_t *target)
{
    int32_t rel = (int32_t)(target - (t + 4));
    return emit(t, &rel, 4);
}

/* The trampoline of site s at t (see rrgdb_trampolines for its layout, and
 * rrgdb_syscall_hook for the stack it sets up). */
static void write_trampoline(uint8_t *t, const struct site *s)
{
    uint8_t *after = s->at + prefix[s->kind] + 2; /* where the syscall returned to */
    uint8_t *end = s->at + length[s->kind];
    t = emit(t, "\x48\x8d\x64\x24\x80", 5);       /* lea -128(%rsp),%rsp */
    t = emit(t, "\x4c\x8d\x1d", 3);               /* lea <end>(%rip),%r11 */
    t = emit_rel32(t, end);
    t = emit(t, "\x41\x53", 2);                   /* push %r11 */
    t = emit(t, s->at, prefix[s->kind]);          /* the site's mov (or xor) to eax */
    t = emit(t, filler[5 - prefix[s->kind]], 5 - prefix[s->kind]);
    t = emit(t, "\xe8", 1);                       /* call rrgdb_syscall_hook */
    t = emit_rel32(t, (const uint8_t *)rrgdb_syscall_hook);
    t = emit(t, "\xe3\x1a", 2);                   /* jrcxz 52f (not buffered) */
    t = emit(t, "\x48\x8d\xa4\x24\x88\0\0\0", 8); /* lea 136(%rsp),%rsp */
    t = emit(t, "\x48\x8d\x0d", 3);               /* lea <after>(%rip),%rcx */
    t = emit_rel32(t, after);
    t = emit(t, s->kind != MOV ? (const char *)after : filler[6], 6); /* the site's cmp */
    t = emit(t, "\xe9", 1);                       /* jmp <end> */
    t = emit_rel32(t, end);
    if (s->kind == MOV) {                         /* 52: the site kept its syscall */
        t = emit(t, "\x48\x8d\xa4\x24\x88\0\0\0", 8); /* lea 136(%rsp),%rsp */
        t = emit(t, "\xe9", 1);                   /* jmp <the syscall> */
        emit_rel32(t, s->at + 5);
    } else {                                      /* 52: jmp <rrgdb_traced_cmp409N> */
        t = emit(t, "\xe9", 1);
        emit_rel32(t, (const uint8_t *)(after[2] ? rrgdb_traced_cmp4095
                                                 : rrgdb_traced_cmp4096));
    }
}

/* An object to patch: its file name's start, and once found, its code and its sites
 * (sites[first .. first + count)). */
struct text {
    const char *name;
    uint8_t *start, *end;
    size_t first, count;
};

static int find_text(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct text *text = data;
    const char *slash = strrchr(info->dlpi_name, '/');
    if (strncmp(slash ? slash + 1 : info->dlpi_name, text->name, strlen(text->name)) != 0)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && ph->p_flags & PF_X) {
            text->start = (uint8_t *)(info->dlpi_addr + ph->p_vaddr);
            text->end = text->start + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

static int near(const uint8_t *a, const uint8_t *b)
{
    long d = a - b;
    return d < NEAR && d > -NEAR;
}

/* Replaces the sites of one object with jumps to their trampolines (from t on). */
static void write_jumps(const struct text *text, uint8_t *t)
{
    long page_size = 4096;
    long from = (long)text->start & ~(page_size - 1), size = (long)text->end - from;
    if (traced(SYS_mprotect, from, size, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0) != 0)
        return;
    for (size_t i = text->first; i < text->first + text->count; i++, t += TRAMPOLINE_SIZE) {
        const struct site *s = &sites[i];
        uint8_t *p = emit(s->at, "\xe9", 1); /* jmp <trampoline>, then never-reached nops */
        p = emit_rel32(p, t);
        emit(p, filler[rewritten[s->kind] - 5], rewritten[s->kind] - 5);
    }
    traced(SYS_mprotect, from, size, PROT_READ | PROT_EXEC, 0, 0, 0);
}

/* Patches the syscall sites of libc and of the dynamic loader (dlopen: openat, read,
 * fstat, close), with a trampoline each in rrgdb_trampolines. Gives up,
 * leaving the code as it is, if anything does not fit. */
static void patch_syscall_sites(void)
{
    struct text texts[] = {{"libc.so.", NULL, NULL, 0, 0},
                           {"ld-linux-x86-64.so.", NULL, NULL, 0, 0}};
    size_t objects = sizeof texts / sizeof texts[0];
    for (size_t i = 0; i < objects; i++) {
        texts[i].first = site_count;
        if (dl_iterate_phdr(find_text, &texts[i]))
            find_sites(texts[i].start, texts[i].end);
        texts[i].count = site_count - texts[i].first;
    }
    if (!site_count)
        return;
    uint8_t *area = rrgdb_trampolines;
    long size = MAX_SITES * TRAMPOLINE_SIZE; /* whole pages, page-aligned */
    for (size_t i = 0; i < objects; i++)
        if (texts[i].count && (!near(area, texts[i].end) || !near(area + size, texts[i].start)))
            return;
    if (traced(SYS_mprotect, (long)area, size, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0) != 0)
        return;
    for (size_t i = 0; i < site_count; i++)
        write_trampoline(area + i * TRAMPOLINE_SIZE, &sites[i]);
    traced(SYS_mprotect, (long)area, size, PROT_READ | PROT_EXEC, 0, 0, 0);
    for (size_t i = 0; i < objects; i++)
        if (texts[i].count)
            write_jumps(&texts[i], area + texts[i].first * TRAMPOLINE_SIZE);
}
