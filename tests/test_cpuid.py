"""CPUID faulting: cpuid traps in every recorded thread (after every exec too), its answers
are CpuidFrames, and replay gives the program those answers, not the replaying CPU's.

Programs: tests/programs/cpuid.c (leaves 0, 1 and 0xb, printed), cpuid_fork.c (a forked
child, an exec'd child and the parent), cpuid_threads.c (three threads that compute and
run cpuid, preempted between).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import (
    assert_replay_matches,
    describe,
    record,
    replay,
    rrgdb_command,
    rrgdb_env,
    run_rrgdb,
)
from gdb_helpers import GdbScript, record_program, replay_server, requires_gdb
from test_record_replay import rewrite_trace

from rrgdb import native
from rrgdb.kernel.cpuid import recordable_answer
from rrgdb.kernel.registers import Registers
from rrgdb.record.session import recorded_cpuid_faulting
from rrgdb.trace import CpuidFrame, ExecFrame, Frame, SyscallFrame, TraceReader, TraceWriter

pytestmark = pytest.mark.skipif(not native.cpuid_faulting_available(),
                                reason="this machine has no CPUID faulting")

# what the programs print: "[who ]cpuid LEAF SUBLEAF: EAX EBX ECX EDX", in hex
ANSWER = re.compile(rb"^(\w+ )?cpuid ([0-9a-f]+) ([0-9a-f]+): ((?:[0-9a-f]{8} ?){4})$", re.M)


def _cpuid_frames(trace: Path) -> list[CpuidFrame]:
    return [f for f in TraceReader(trace).frames() if isinstance(f, CpuidFrame)]


def _question(frame: CpuidFrame) -> tuple[int, int]:
    """(leaf, subleaf) the frame's cpuid was asked."""
    regs = Registers.from_bytes(frame.regs)
    return regs.rax & 0xFFFFFFFF, regs.rcx & 0xFFFFFFFF


def _printed(stdout: bytes) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(who, leaf, subleaf, answer) of every cpuid answer a program printed."""
    return [((who or b"").decode().strip(), int(leaf, 16), int(subleaf, 16),
             tuple(int(v, 16) for v in values.split()))
            for who, leaf, subleaf, values in ANSWER.findall(stdout)]


@pytest.mark.parametrize("variant", ["O0", "O2", "static"])
def test_cpuid_answers_are_recorded_and_replayed_from_the_trace(
        build, tmp_path: Path, variant: str) -> None:
    """The program's own three cpuid calls are the trace's last CpuidFrames, with the values
    it printed (before them, ld.so's and libc's: dozens); replay prints them; and a trace
    whose APIC id is rewritten replays the rewritten one: the values come from the trace,
    not from the CPU. (A rewritten value that reaches a register the next syscall sees is
    reported as a divergence instead.)"""
    binary = build("cpuid", variant)
    trace = tmp_path / "trace"
    recorded = record([binary], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded_cpuid_faulting(TraceReader(trace).header)
    frames = _cpuid_frames(trace)
    printed = _printed(recorded.stdout)
    assert [(leaf, subleaf) for _, leaf, subleaf, _ in printed] == [(0, 0), (1, 0), (0xB, 0)]
    own = frames[-3:]
    assert [(*_question(f), f.values) for f in own] == [
        (leaf, subleaf, values) for _, leaf, subleaf, values in printed]
    assert len(frames) > 10, "libc's start-up asks cpuid too"
    assert_replay_matches(recorded, replay(trace))

    # the x2APIC id (leaf 0xb's EDX, which differs from CPU to CPU) changed in the trace,
    # and the CRC of the output that prints it (or replay reports the output differs)
    apic_frame = own[2]
    other = apic_frame.edx ^ 6
    line = ANSWER.findall(recorded.stdout)[2]
    printed_line = b"cpuid %s %s: %s" % line[1:]
    expected = recorded.stdout.replace(
        printed_line, printed_line[:-8] + f"{other:08x}".encode())

    def rewrite(frames: list[object]) -> list[object]:
        frames[frames.index(apic_frame)] = dataclasses.replace(apic_frame, edx=other)
        (printing,) = [f for f in frames if isinstance(f, SyscallFrame) and f.stream == 1]
        frames[frames.index(printing)] = dataclasses.replace(
            printing, output_crc=zlib.crc32(expected))
        return frames

    rewritten = tmp_path / "rewritten"
    rewrite_trace(trace, rewritten, rewrite)
    replayed = replay(rewritten)
    assert replayed.returncode == 0, describe(replayed)
    assert replayed.stdout == expected != recorded.stdout
    rewrite_trace(trace, tmp_path / "cpuid-only", lambda frames: [
        dataclasses.replace(f, edx=other) if f == apic_frame else f for f in frames])
    unchanged_crc = replay(tmp_path / "cpuid-only")
    assert b"wrote other bytes to stdout than recorded" in unchanged_crc.stderr, describe(
        unchanged_crc)


def test_cpuid_in_forked_and_exec_children(build, tmp_path: Path) -> None:
    """Faulting is inherited by a fork and set again after an exec (which resets it):
    the answers of a child that does not exec, of one that execs the cpuid program, and of
    the parent are all CpuidFrames of their own tids."""
    binary = build("cpuid_fork")
    program = build("cpuid")
    trace = tmp_path / "trace"
    recorded = record([binary, program], trace)
    assert recorded.returncode == 0, describe(recorded)
    frames = list(TraceReader(trace).frames())
    execs = [f for f in frames if isinstance(f, ExecFrame)]
    assert len(execs) == 2, execs
    parent, exec_child = execs[0].tid, execs[1].tid
    answers = {(f.tid, *_question(f), f.values) for f in frames if isinstance(f, CpuidFrame)}
    printed = _printed(recorded.stdout)
    assert [who for who, *_ in printed] == ["child", "", "", "", "parent"]
    tids = {f.tid for f in frames if isinstance(f, CpuidFrame)}
    fork_child, = tids - {parent, exec_child}
    whose = {"child": fork_child, "": exec_child, "parent": parent}
    for who, leaf, subleaf, values in printed:
        assert (whose[who], leaf, subleaf, values) in answers, (who, leaf)
    after_exec = frames[frames.index(execs[1]) + 1:]
    assert any(isinstance(f, CpuidFrame) and f.tid == exec_child for f in after_exec)
    assert_replay_matches(recorded, replay(trace))


def test_cpuid_in_threads(build, tmp_path: Path) -> None:
    """Three threads trap on cpuid between computations; each thread's answers are its own
    frames, and replay (preemption points included, which hash memory holding the sums of
    the answers) prints the recorded sums."""
    binary = build("cpuid_threads", "O2", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([binary], trace)
    assert recorded.returncode == 0, describe(recorded)
    frames = list(TraceReader(trace).frames())
    main = frames[0].tid
    per_thread: dict[int, int] = {}
    for f in frames:
        if isinstance(f, CpuidFrame) and f.tid != main:
            per_thread[f.tid] = per_thread.get(f.tid, 0) + 1
    assert sorted(per_thread.values()) == [300, 300, 300], per_thread
    assert_replay_matches(recorded, replay(trace, timeout=90))


_WITHOUT_FAULTING = ("import sys; from rrgdb import native; "
                     "native.cpuid_faulting_available = lambda: False; "
                     "from rrgdb.cli import main; sys.exit(main())")


def _drop_cpuid_faulting_key(trace: Path) -> None:
    """Makes the header of a trace recorded without faulting say what a version-4 trace's
    said: nothing about cpuid faulting (version 4 frames are read by test_trace)."""
    reader = TraceReader(trace)
    frames: list[Frame] = list(reader.frames())
    extra = {k: v for k, v in reader.header.extra.items() if k != "cpuid_faulting"}
    old = trace.with_name("with-key")
    trace.rename(old)
    writer = TraceWriter(trace, dataclasses.replace(reader.header, extra=extra))
    for path in sorted((old / "files").rglob("*")):
        if path.is_file() and path.name not in ("index", "names"):
            writer.add_file(path)
    for frame in frames:
        writer.write(frame)
    writer.close()


def test_recording_without_cpuid_faulting(build, tmp_path: Path) -> None:
    """Where arch_prctl(ARCH_SET_CPUID) is unavailable the recording goes on without it
    (the header says so, no CpuidFrame) and replay leaves cpuid alone, as it does for a
    version-4 trace, whose header does not say; had it made cpuid fault, the replay would
    stop at the first one."""
    binary = build("cpuid", "static")
    trace = tmp_path / "trace"
    command = [sys.executable, "-c", _WITHOUT_FAULTING,
               *rrgdb_command(["record", "-o", trace, "--", binary])[3:]]
    recorded = subprocess.run(command, env=rrgdb_env(), capture_output=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert recorded.returncode == 0, describe(recorded)
    assert not recorded_cpuid_faulting(TraceReader(trace).header)
    assert not _cpuid_frames(trace)
    assert_replay_matches(recorded, replay(trace))
    _drop_cpuid_faulting_key(trace)
    assert_replay_matches(recorded, replay(trace))


def test_recording_with_cpuid_faulting_turned_off(build, tmp_path: Path) -> None:
    """`record --no-cpuid-faulting` (rr's --disable-cpuid-faulting): cpuid runs untrapped,
    the header says so, and the trace replays on the same CPU."""
    binary = build("cpuid", "O2")
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", "--no-cpuid-faulting", "-o", trace, "--", binary])
    assert recorded.returncode == 0, describe(recorded)
    assert not recorded_cpuid_faulting(TraceReader(trace).header)
    assert not _cpuid_frames(trace)
    assert_replay_matches(recorded, replay(trace))


def test_dump_shows_cpuid_frames(build, tmp_path: Path) -> None:
    binary = build("cpuid", "static")
    trace = tmp_path / "trace"
    recorded = record([binary], trace)
    assert recorded.returncode == 0, describe(recorded)
    (_, leaf, subleaf, values), *_ = _printed(recorded.stdout)
    answer = " ".join(f"{v:#010x}" for v in values)
    dump = run_rrgdb(["dump", trace])
    assert f"cpuid leaf={leaf:#x} subleaf={subleaf:#x} = {answer}".encode() in dump.stdout
    stats = run_rrgdb(["dump", "--stats", trace]).stdout.decode()
    assert "cpuid faulting\ton" in stats
    assert re.search(rf"^  CpuidFrame\t{len(_cpuid_frames(trace))}$", stats, re.M), stats


@requires_gdb
def test_gdb_stepi_over_cpuid_and_back(tmp_path: Path) -> None:
    """stepi over the program's cpuid (its breakpoint, then the trap the step causes) gives
    the recorded answer, not a SIGSEGV; reverse-stepi goes back to the question (leaf in
    eax) and stepi again to the same answer."""
    rec = record_program("cpuid", "O0", tmp_path)
    assert rec.status == 0, rec
    (_, _, _, values), *_ = _printed(rec.stdout)
    s = GdbScript()
    s("break *cpuid_insn")
    stop = s("continue")
    at = [s("print/x $pc"), s("print/x $rax"), s("print/x $rcx")]
    step = s("stepi")
    after = [s("print/x $pc"), s("print/x $rax"), s("print/x $rbx"), s("print/x $rcx"),
             s("print/x $rdx")]
    back = s("reverse-stepi")
    before = [s("print/x $pc"), s("print/x $rax"), s("print/x $rcx")]
    s("stepi")
    again = [s("print/x $pc"), s("print/x $rbx")]
    second = s("continue")
    second_leaf = s("print/x $rax")
    # back over the first cpuid under its breakpoint: replay steps off the int3 onto the
    # fault, with the int3 back in place when it checks the instruction
    earlier = s("reverse-continue")
    earlier_leaf = s("print/x $rax")
    s("stepi")
    earlier_answer = s("print/x $rbx")
    with replay_server(rec, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(stop, "Breakpoint 1")
    pc = int(t.value(at[0]), 16)
    assert [t.value(i) for i in at[1:]] == ["0x0", "0x0"], t.context()
    assert "SIGSEGV" not in t[step], t.context(step)
    assert [int(t.value(i), 16) for i in after] == [pc + 2, *values], t.context()
    assert "SIGSEGV" not in t[back] and "No more" not in t[back], t.context(back)
    assert [t.value(i) for i in before] == [hex(pc), "0x0", "0x0"], t.context()
    assert [int(t.value(i), 16) for i in again] == [pc + 2, values[1]], t.context()
    t.expect(second, "Breakpoint 1")
    assert t.value(second_leaf) == "0x1", t.context(second_leaf)
    t.expect(earlier, "Breakpoint 1")
    assert t.value(earlier_leaf) == "0x0", t.context(earlier_leaf)
    assert int(t.value(earlier_answer), 16) == values[1], t.context(earlier_answer)


def test_recordings_see_no_rdrand_nor_rdseed(build, tmp_path: Path) -> None:
    """cpuid tells a recorded program that the CPU has neither RDRAND nor RDSEED, so one
    that asks (rdrand_probe.c, as libstdc++'s std::random_device does) draws its random
    number from getrandom(), which the trace holds. It used RDRAND when told it could,
    and the replay printed another number than the recording, with no divergence
    reported. Natively the program says what this CPU has."""
    trace = tmp_path / "trace"
    recorded = record([build("rdrand_probe", "O2")], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.startswith(b"rdrand: no, rdseed: no\n"), describe(recorded)
    assert_replay_matches(recorded, replay(trace))


@pytest.mark.skipif("rdrand" not in Path("/proc/cpuinfo").read_text(),
                    reason="this CPU has no RDRAND")
@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
def test_output_that_differs_in_replay_is_a_divergence(
        build, tmp_path: Path, options: list[str]) -> None:
    """A program that runs RDRAND without asking cpuid prints a number replay cannot
    reproduce; the write to stdout is where replay sees it (the trace holds a CRC-32 of
    every write to stdout and stderr). Replay printed the other number and exited 0."""
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", *options, "-o", trace, "--",
                          build("rdrand_probe", "O2"), "always"])
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.startswith(b"rdrand: yes, rdseed: no\n"), describe(recorded)
    replayed = replay(trace)
    assert replayed.returncode != 0, describe(replayed)
    # (with the buffer, the registers printf leaves at the write may differ first)
    assert re.search(rb"^rrgdb: replay diverged at event \d+ \(write, tid \d+\): (the program "
                     rb"wrote other bytes to stdout than recorded: b'rdrand: yes|registers "
                     rb"differ)", replayed.stderr, re.M), describe(replayed)
    assert not replayed.stdout, describe(replayed)


def test_the_hidden_features_are_cleared_from_their_leaves_only() -> None:
    """RDRAND from leaf 1's ECX; RDSEED, RTM and HLE from leaf 7 subleaf 0's EBX; other
    leaves and subleaves, and the other bits, are answered as the CPU answers."""
    every_bit = (0xFFFFFFFF,) * 4
    assert recordable_answer(1, 0, every_bit) == (
        0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF & ~(1 << 30), 0xFFFFFFFF)
    assert recordable_answer(7, 0, every_bit) == (
        0xFFFFFFFF, 0xFFFFFFFF & ~(1 << 18 | 1 << 11 | 1 << 4), 0xFFFFFFFF, 0xFFFFFFFF)
    assert recordable_answer(7, 1, every_bit) == every_bit
    assert recordable_answer(0xD, 0, every_bit) == every_bit
