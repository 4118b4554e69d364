"""Signal frames: what the kernel writes on the stack when it runs a handler, and the parts
of it record and replay make identical.

Both enter a caught signal's handler with one single step and make its frame the same.
An asynchronous signal's frame carries fields that describe the thread's last hardware
trap (trap number, error code, fault address). For such a signal they are leftovers
that differ between recording (where the last trap was, say, an rdtsc fault) and replay
(where rrgdb single-steps); they would make the memory of the two runs differ, so both
zero them. (A fault's are its own, the same in both.)

The frame's register state (the XSAVE area the sigcontext's fpstate points at) has bytes
that neither XSAVE nor the kernel writes: the legacy area's reserved bytes 416-463, the
gaps between the enabled state components (where one this machine does not enable would
go, MPX's or PKRU's, say), and, where the state size is dynamic (AMX), the AMX
components while they are in their initial state (their XSTATE_BV bit is then 0). The
kernel saves with page faults disabled; when that faults (a stack page not yet touched,
or copy-on-write after a fork) it clears the whole area and saves again. So those bytes
are zero or whatever the stack held before, depending on which pages were present:
replay, which writes the recorded initial stack at exec and forks checkpoints, has
other pages present than the recording had. Both zero them at the handler's entry, as
the kernel's clearing would (a component whose XSTATE_BV bit is 0 is restored to its
initial state, all zeros, whatever its bytes hold).
"""

from __future__ import annotations

import functools
import signal

from rrgdb import native
from rrgdb.kernel.task import Stop, StopKind, Task

# At a handler's first instruction rsp points at the frame's return address, followed by
# the ucontext: uc_flags, uc_link, uc_stack (40 bytes), then the sigcontext.
SIGCONTEXT = 8 + 40
_ERR, _TRAPNO, _CR2 = SIGCONTEXT + 152, SIGCONTEXT + 160, SIGCONTEXT + 176
_FPSTATE = SIGCONTEXT + 184  # the pointer to the frame's XSAVE area
SIGMASK = SIGCONTEXT + 256  # uc_sigmask, after the 256-byte sigcontext

# The XSAVE area (standard format): the legacy x87/SSE region, which XSAVE writes up to
# byte 416; the kernel's software bytes at 464 (magic1, extended size, xfeatures, the
# area's size); the header at 512 (XSTATE_BV first: the components saved), which the
# kernel clears before saving; the extended components from 576, each where cpuid leaf
# 0xd says.
_LEGACY_WRITTEN = 416
_SW_BYTES, _XSTATE_BV, _HEADER_END = 464, 512, 576
_FP_XSTATE_MAGIC1 = 0x46505853
_XSAVE_LEAF = 0xD


def enter_handler(task: Task, signo: int, *, fault: bool, clear_unwritten: bool
                  ) -> Stop | None:
    """Delivers signo (which has a handler) and stops at the handler's first instruction,
    with the frame's trap fields cleared unless the signal is a fault and, with
    clear_unwritten, the XSAVE area's unwritten bytes zeroed. Returns None, or the
    unexpected stop that came instead (the process was killed meanwhile, or the kernel
    could not push the frame and forces a SIGSEGV)."""
    task.resume(native.PTRACE_SINGLESTEP, signo)
    stop = task.wait()
    if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGTRAP:
        return stop
    frame = task.regs().rsp
    if not fault:
        for field in (_ERR, _TRAPNO, _CR2):
            task.write(frame + field, bytes(8))
    if clear_unwritten:
        _clear_unwritten_xsave_bytes(task, task.read_u64(frame + _FPSTATE))
    return None


def set_frame_sigmask(task: Task, mask: bytes) -> None:
    """At a handler's first instruction: the signal mask its return restores."""
    task.write(task.regs().rsp + SIGMASK, mask)


def _clear_unwritten_xsave_bytes(task: Task, area: int) -> None:
    """Zeroes the bytes of the XSAVE area at area that the kernel's save left as they
    were (the module's docstring says why)."""
    software = task.read(area + _SW_BYTES, 24)
    if len(software) < 24 or int.from_bytes(software[:4], "little") != _FP_XSTATE_MAGIC1:
        return  # no extended state information: an FXSAVE-only frame
    xfeatures = int.from_bytes(software[8:16], "little")
    size = int.from_bytes(software[16:20], "little")
    content = task.read_exact(area, size)
    saved = int.from_bytes(content[_XSTATE_BV:_XSTATE_BV + 8], "little")
    for start, end in unwritten_xsave_ranges(xfeatures & saved, size):
        if any(content[start:end]):
            task.write(area + start, bytes(end - start))


@functools.cache
def unwritten_xsave_ranges(saved: int, size: int) -> tuple[tuple[int, int], ...]:
    """The [start, end) byte ranges of a size-byte standard-format XSAVE area that hold
    neither the legacy x87/SSE state, the kernel's software bytes, the header, nor an
    extended component in saved (its XSTATE_BV bits)."""
    written = [(0, _LEGACY_WRITTEN), (_SW_BYTES, _HEADER_END)]
    for component in range(2, saved.bit_length()):
        if saved >> component & 1:
            length, offset, _, _ = native.cpuid(_XSAVE_LEAF, component)
            written.append((offset, offset + length))
    gaps, covered = [], 0
    for start, end in sorted(written):
        if start > covered:
            gaps.append((covered, min(start, size)))
        covered = max(covered, end)
    if covered < size:
        gaps.append((covered, size))
    return tuple((start, end) for start, end in gaps if start < end)
