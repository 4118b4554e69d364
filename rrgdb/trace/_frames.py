"""The trace's vocabulary: the header, the frames of the event stream, and the one error type."""

from __future__ import annotations

from dataclasses import dataclass, field


class TraceError(Exception):
    """A trace that cannot be read: missing, truncated, corrupt, or of another version.

    str(e) is one line fit for the user.
    """


@dataclass(frozen=True)
class TraceHeader:
    """What was recorded, where and on what machine; written once when the trace is created."""

    program: str
    argv: list[str]
    cwd: str
    rlimit_stack: tuple[int, int]
    created: float
    kernel: str
    cpu: str
    syscallbuf: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemWrite:
    """Bytes the kernel (or rrgdb) wrote into tracee memory at addr."""

    addr: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Mapping:
    """One mapping of the address space after exec; file_id is "" when not file-backed."""

    start: int
    end: int
    prot: int
    flags: int
    offset: int
    path: str
    file_id: str


@dataclass(frozen=True, slots=True)
class ExecFrame:
    """A successful execve: the new program's identity and initial state."""

    tid: int
    regs: bytes
    exe_path: str
    exe_file_id: str
    argv: list[bytes]
    envp: list[bytes]
    mappings: list[Mapping]
    memory: list[MemWrite]


@dataclass(frozen=True, slots=True)
class SyscallFrame:
    """A syscall: registers at entry, its result and what it wrote into memory.

    stream is 0/1/2 for output echoed to none/stdout/stderr, and output_crc then the
    CRC-32 of the bytes written, which replay compares with what the replayed program
    wrote (0 in traces before version 8, where it is not compared); file_id is "" unless
    the syscall mapped a file: then the id of the trace's copy, followed for a MAP_SHARED
    mapping by "@DEV:INODE" (hex) of the file mapped, which tells mappings of one file
    from those of another with the same contents (each file is one working copy in
    replay).
    """

    tid: int
    regs: bytes
    result: int
    writes: list[MemWrite]
    stream: int
    file_id: str
    output_crc: int = 0

    @property
    def copy_id(self) -> str:
        """The id of the trace's copy of the file the syscall mapped ("" if none)."""
        return self.file_id.partition("@")[0]


@dataclass(frozen=True, slots=True)
class SignalFrame:
    """The delivery of signal signo with its 128-byte siginfo."""

    tid: int
    regs: bytes
    signo: int
    siginfo: bytes
    deterministic: bool


@dataclass(frozen=True, slots=True)
class InstructionTrapFrame:
    """An emulated rdtsc/rdtscp: value is the u64 counter, aux the u32 TSC_AUX."""

    tid: int
    regs: bytes
    value: int
    aux: int


@dataclass(frozen=True, slots=True)
class CpuidFrame:
    """An emulated cpuid (CPUID faulting): regs at the fault (eax the leaf, ecx the
    subleaf) and the four u32 results."""

    tid: int
    regs: bytes
    eax: int
    ebx: int
    ecx: int
    edx: int

    @property
    def values(self) -> tuple[int, int, int, int]:
        """(eax, ebx, ecx, edx) as cpuid answered."""
        return self.eax, self.ebx, self.ecx, self.edx


@dataclass(frozen=True, slots=True)
class ExitFrame:
    """A thread's exit with its raw wait status (as from waitpid)."""

    tid: int
    status: int


@dataclass(frozen=True, slots=True)
class PreemptFrame:
    """The recorder stopped a thread that ran without syscalls (to let another thread run,
    or to deliver a signal). Without a PMU the moment is identified by its state: the
    registers and a hash of the process's writable memory (DESIGN.md §6). A nonzero
    patch_length says the instructions in that many bytes at regs.rip may be replaced by a
    jump while replay searches for the moment (kernel/visit_search.py); stack holds the
    memory from rsp - 128 on at the moment, which the search compares too, and watched
    (address, value) u64 pairs of words the thread's loop changes at every turn
    (record/preemption.py)."""

    tid: int
    regs: bytes
    memory_hash: bytes  # 32 bytes
    patch_length: int
    stack: bytes
    watched: bytes = b""


@dataclass(frozen=True, slots=True)
class SyscallEntryFrame:
    """A thread entered a syscall while other threads of its process could run before it
    returned: replay brings it to this entry here, in this order; its SyscallFrame (the
    result) comes later."""

    tid: int
    regs: bytes


@dataclass(frozen=True, slots=True)
class FlushFrame:
    """The records of a thread's buffered syscalls (made without a ptrace stop by the
    preload library) since its previous stop, as the syscall buffer held them."""

    tid: int
    data: bytes


Frame = (ExecFrame | SyscallFrame | SignalFrame | InstructionTrapFrame | CpuidFrame
         | ExitFrame | PreemptFrame | SyscallEntryFrame | FlushFrame)
