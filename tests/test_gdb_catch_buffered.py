"""gdb's `catch syscall` on the calls the syscall buffer makes in the recorded process.

The debuggee, tests/programs/catch_buffered.c, calls getuid, writes to a pipe and reads it
back into `got`, three times, with work between; with the buffer all of these are
buffered calls, which leave only records and which replay runs without a stop of its own.
With a catchpoint, replay stops at each caught one as at a traced syscall: at its entry
(rax -ENOSYS, orig_rax its number, its outputs not written yet) and at its return (rax
its recorded result, its outputs written), forwards and backwards. The tests run the same
gdb session on a recording made with the buffer and on one made without it, and compare
the stops and values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import PROGRAMS_DIR, compile_program, describe, run_rrgdb
from gdb_helpers import GdbScript, Recording, Transcript, marked_lines, replay_server, requires_gdb

pytestmark = [requires_gdb, pytest.mark.needs_syscallbuf]

NAME = "catch_buffered"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    """The program recorded with the syscall buffer ("buffered") and without ("traced")."""
    workdir = tmp_path_factory.mktemp("gdb-catch-buffered")
    binary = workdir / NAME
    source = PROGRAMS_DIR / f"{NAME}.c"
    compile_program(source, binary, "O0", ())
    made = {}
    for kind, options in (("buffered", []), ("traced", ["--no-syscallbuf"])):
        trace = workdir / kind
        recorded = run_rrgdb(["record", *options, "-o", trace, "--", binary])
        assert recorded.returncode == 0 and b"got msg-2" in recorded.stdout, describe(recorded)
        made[kind] = Recording(NAME, "O0", binary, source, trace, recorded.stdout, 0,
                               marked_lines(source))
    stats = run_rrgdb(["dump", "--stats", made["buffered"].trace]).stdout.decode()
    assert re.search(r"  getuid\t3\t\(3 buffered\)", stats), stats  # no stop of their own
    return made


def _remote(s: GdbScript, rec: Recording, logdir: Path) -> Transcript:
    with replay_server(rec, logdir) as server:
        t = s.run_remote(server)
    assert t.returncode == 0, t.context()
    return t


def _essence(output: str) -> str:
    """What a command printed, without where it stopped (the buffer's stubs, or libc) and
    gdb's value-history numbers."""
    lines = [re.sub(r"^(Catchpoint \d+ \(.*?\)).*", r"\1", line)
             for line in output.splitlines() if line.startswith(("Catchpoint", "$"))]
    return "\n".join(re.sub(r"^\$\d+ = ", "= ", line) for line in lines)


def _frames(output: str) -> list[str]:
    """The function names of a backtrace."""
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+|\?\?)", output, re.MULTILINE)


def _both(recordings: dict[str, Recording], s: GdbScript, shown: list[int],
          tmp_path: Path) -> tuple[list[str], Transcript]:
    """The essence of the commands in shown, the same with the buffer and without it; and
    the transcript of the buffered recording's session."""
    sessions = {kind: _remote(s, rec, tmp_path / kind) for kind, rec in recordings.items()}
    essences = {kind: [_essence(t[i]) for i in shown] for kind, t in sessions.items()}
    assert essences["buffered"] == essences["traced"], "\n".join(
        f"{a!r}\n  vs {b!r}" for a, b in zip(essences["buffered"], essences["traced"],
                                             strict=True) if a != b)
    return essences["buffered"], sessions["buffered"]


def test_buffered_calls_stop_forwards_and_backwards(recordings: dict[str, Recording],
                                                    tmp_path: Path) -> None:
    s = GdbScript()
    s("break main")
    s("continue")
    s("catch syscall getuid read")
    shown = []
    backtraces = []
    for _ in range(6):  # getuid and read of rounds 0 and 1: entry, then return
        shown += [s("continue"), s("print $rax"), s("print $orig_rax"), s("print got"),
                  s("print round_no")]
        backtraces.append(s("bt"))
    for _ in range(3):  # back: read's entry, getuid's return, then its entry
        shown += [s("reverse-continue"), s("print $rax"), s("print got")]
    shown += [s("continue"), s("print $rax"), s("continue"), s("print $rax"), s("print got")]
    essence, t = _both(recordings, s, shown, tmp_path)
    empty, first = r'= "' + r"\000" * 7 + '"', r'= "msg-0\000\000"'
    uid = f"= {os.getuid()}"
    assert [essence[i:i + 5] for i in range(0, 30, 5)] == [
        ["Catchpoint 2 (call to syscall getuid)", "= -38", "= 102", empty, "= 0"],
        ["Catchpoint 2 (returned from syscall getuid)", uid, "= 102", empty, "= 0"],
        ["Catchpoint 2 (call to syscall read)", "= -38", "= 0", empty, "= 0"],
        ["Catchpoint 2 (returned from syscall read)", "= 6", "= 0", first, "= 0"],
        ["Catchpoint 2 (call to syscall getuid)", "= -38", "= 102", first, "= 1"],
        ["Catchpoint 2 (returned from syscall getuid)", uid, "= 102", first, "= 1"],
    ], "\n".join(essence)
    assert essence[30:39] == [
        "Catchpoint 2 (call to syscall getuid)", "= -38", first,
        "Catchpoint 2 (returned from syscall read)", "= 6", first,
        "Catchpoint 2 (call to syscall read)", "= -38", empty,
    ], "\n".join(essence)
    assert essence[39:] == ["Catchpoint 2 (returned from syscall read)", "= 6",
                            "Catchpoint 2 (call to syscall getuid)", "= -38", first]
    # the backtrace from a buffered call's stops reaches the program through the library
    for index in backtraces:
        frames = _frames(t[index])
        assert frames[-1] == "main" and frames[0] == "??", t.context(index)
    assert _frames(t[backtraces[0]])[-2:] == ["ask_uid", "main"], t.context(backtraces[0])


def test_reverse_continue_from_the_end_and_any_syscall(recordings: dict[str, Recording],
                                                       tmp_path: Path) -> None:
    s = GdbScript()
    s("continue")
    s("catch syscall read")
    shown = []
    for _ in range(3):
        shown += [s("reverse-continue"), s("print $rax"), s("print got"), s("print round_no")]
    s("delete")
    s("break main")
    s("reverse-continue")
    s("delete")
    s("catch syscall")  # every syscall, buffered or traced, to the end
    shown += [s("continue") for _ in range(26)]
    essence, t = _both(recordings, s, shown, tmp_path)
    assert essence[:12] == [
        "Catchpoint 1 (returned from syscall read)", "= 6", r'= "msg-2\000\000"', "= 2",
        "Catchpoint 1 (call to syscall read)", "= -38", r'= "msg-1\000\000"', "= 2",
        "Catchpoint 1 (returned from syscall read)", "= 6", r'= "msg-1\000\000"', "= 1",
    ], "\n".join(essence)
    calls = [e.removeprefix("Catchpoint 3 ") for e in essence[12::2]]
    assert calls[:7] == ["(call to syscall pipe2)", "(call to syscall getuid)",
                         "(call to syscall write)", "(call to syscall read)",
                         "(call to syscall getuid)", "(call to syscall write)",
                         "(call to syscall read)"], "\n".join(essence)


def test_stepping_through_a_caught_call(recordings: dict[str, Recording],
                                        tmp_path: Path) -> None:
    """From a buffered call's entry stop, in the stub of rrgdb's scratch page that stands
    for its syscall: reverse-stepi goes back to that stub's `syscall` and into the library
    that called it, stepi forwards again to the entry, and continue to the return."""
    s = GdbScript()
    s(f"break {NAME}.c:{recordings['buffered'].line('getuid')}")
    s("continue")
    s("catch syscall getuid")
    entry = s("continue")
    back = [s("reverse-stepi"), s("print $pc"), s("reverse-stepi"), s("bt 1")]
    forward = [s("stepi"), s("stepi"), s("print $pc"), s("print $rax")]
    done = [s("continue"), s("print $rax")]
    t = _remote(s, recordings["buffered"], tmp_path)
    t.expect(entry, "Catchpoint 2 (call to syscall getuid), 0x0000000070000012 in ?? ()")
    assert t.value(back[1]) == "(void (*)()) 0x70000010"
    t.expect(back[3], "librrgdb_preload.so")  # the library's call to the stub
    assert t.value(forward[2]) == "(void (*)()) 0x70000012"
    assert t.value(forward[3]) == "-38"
    t.expect(done[0], "Catchpoint 2 (returned from syscall getuid)")
    assert t.value(done[1]) == str(os.getuid())


def test_watchpoint_on_what_a_caught_call_writes(recordings: dict[str, Recording],
                                                 tmp_path: Path) -> None:
    """A watchpoint on `got` with read caught: the read's entry, then the watchpoint where
    read() returned (in the buffered recording the library's copy fires it, and replay
    runs on past the return stub, trapping for the catch, to the caller), as without the
    buffer, where the watchpoint stop takes the place of the return's."""
    s = GdbScript()
    s("break main")
    s("continue")
    s("catch syscall read")
    s("watch got")
    shown = []
    for _ in range(2):
        shown += [s("continue"), s("print $orig_rax"), s("continue"), s("print got")]
    essence, t = _both(recordings, s, shown, tmp_path)
    assert essence[:4] == ["Catchpoint 2 (call to syscall read)", "= 0", "",
                           r'= "msg-0\000\000"'], "\n".join(essence)
    for index, got in ((shown[2], "msg-0"), (shown[6], "msg-1")):
        t.expect(index, "Hardware watchpoint 3: got", f'New value = "{got}')
        assert "E01" not in t[index], t.context(index)


def test_deleting_the_catchpoint_at_a_buffered_stop(recordings: dict[str, Recording],
                                                    tmp_path: Path) -> None:
    """Stopped at a buffered call's catch, the user deletes the catchpoint and steps back:
    the moments inside the call are reached through its stub's stops, which the stubs no
    longer made once nothing was caught. reverse-stepi then failed (E01) and left the
    replay elsewhere (in __brk); now the stubs keep trapping for that call (unreported),
    and reverse-stepi, stepi, reverse-continue and continue go where they should."""
    s = GdbScript()
    s("break main")
    s("continue")
    s("catch syscall getuid")
    s("continue")
    s("continue")
    at_entry = s("continue")  # the second call's entry
    s("delete 2")
    back = [s("reverse-stepi"), s("print $pc"), s("reverse-stepi"), s("print $pc")]
    forward = [s("stepi"), s("print $pc")]
    ends = [s("reverse-continue"), s("continue")]
    t = _remote(s, recordings["buffered"], tmp_path)
    t.expect(at_entry, "Catchpoint 2 (call to syscall getuid), 0x0000000070000012")
    for index in (*back, *forward, *ends):
        assert "E01" not in t[index] and "Remote failure" not in t[index], t.context(index)
    assert t.value(back[1]) == "(void (*)()) 0x70000010"  # the stub's start
    t.expect(back[2], "in plain () from")  # the library's call of the stub
    assert t.value(forward[1]) == "(void (*)()) 0x70000010"
    t.expect(ends[0], "Breakpoint 1, main ()")
    t.expect(ends[1], "SIGKILL")
