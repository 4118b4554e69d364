"""CPUID faulting: a tracee's cpuid traps (SIGSEGV), and rrgdb completes the instruction
with the values the recorder read on its CPU and replay takes from the trace, so a
replayed program sees the recording's CPU whatever CPU it runs on."""

from __future__ import annotations

import errno

from rrgdb import native
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import InjectionError, inject
from rrgdb.kernel.task import Task

CPUID = b"\x0f\xa2"


def set_cpuid_faulting(task: Task, faulting: bool) -> None:
    """Makes cpuid fault in task's thread (or run again), and in the threads and processes
    it creates from now on. An execve turns faulting off (the kernel's
    arch_setup_new_exec), so it is set again at every exec, before the new program's
    first instruction (ld.so runs cpuid before any syscall). Turning it off on a machine
    without CPUID faulting is no error: cpuid runs there already. The scratch page must
    be mapped (the call is injected there)."""
    result = inject(task, "arch_prctl", native.ARCH_SET_CPUID, 0 if faulting else 1)
    if result != 0 and (faulting or result != -errno.ENODEV):
        raise InjectionError(f"arch_prctl(ARCH_SET_CPUID) failed in task {task.tid}: "
                             f"error {-result}")


# Features a recorded program must not see, as rr hides them: RDRAND and RDSEED (random
# numbers from the CPU, which replay cannot reproduce: libstdc++'s std::random_device
# uses them when cpuid says they exist), HLE and RTM (transactions that abort on
# interrupts and page faults, which differ from run to run). (leaf, register index in
# (eax, ebx, ecx, edx), bits cleared), for subleaf 0 of leaf 7.
HIDDEN_FEATURES = (
    (1, 2, 1 << 30),  # leaf 1 ECX: RDRAND
    (7, 1, 1 << 18 | 1 << 11 | 1 << 4),  # leaf 7 EBX: RDSEED, RTM, HLE
)


def recordable_answer(leaf: int, subleaf: int,
                      values: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """cpuid's answer for leaf and subleaf with HIDDEN_FEATURES cleared."""
    answer = list(values)
    for hidden_leaf, register, bits in HIDDEN_FEATURES:
        if leaf == hidden_leaf and (leaf != 7 or subleaf == 0):
            answer[register] &= ~bits
    return answer[0], answer[1], answer[2], answer[3]


def complete_cpuid(task: Task, regs: Registers, values: tuple[int, int, int, int]) -> None:
    """Completes the trapped cpuid at regs.rip with (eax, ebx, ecx, edx): the instruction
    writes the four registers whole (the upper halves cleared)."""
    after = regs.copy()
    after.rax, after.rbx, after.rcx, after.rdx = values
    after.rip = regs.rip + len(CPUID)
    task.set_regs(after)
