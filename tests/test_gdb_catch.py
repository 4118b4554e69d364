"""gdb's `catch syscall` over ``rrgdb replay -s`` (QCatchSyscalls), forwards and backwards.

The debuggee, tests/programs/catch_writes.c, writes three lines from three functions with
uname, umask and getppid between them. Forwards a caught syscall stops at its entry and
then at its return, where native gdb stops; backwards (reverse-continue) at its return and
then at its entry. Only traced syscalls are caught: with the syscall buffer getppid is
buffered and not seen, so the tests look at write and uname, which are always traced.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gdb_helpers import (
    GdbScript,
    Recording,
    Transcript,
    record_program,
    replay_server,
    requires_gdb,
)

pytestmark = requires_gdb

NAME = "catch_writes"


@pytest.fixture(scope="module")
def writes(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program(NAME, "O0", tmp_path_factory.mktemp("gdb-catch"))
    assert rec.status == 0 and rec.stdout == b"first line\nsecond line\nthird line\n", rec
    return rec


def _remote(s: GdbScript, rec: Recording, logdir: Path) -> Transcript:
    with replay_server(rec, logdir) as server:
        t = s.run_remote(server)
    assert t.returncode == 0, t.context()
    return t


def _essence(output: str) -> list[str]:
    """The catchpoint and backtrace lines a command printed, without addresses."""
    keep = [line for line in output.splitlines() if line.startswith(("Catchpoint", "#", "@@"))]
    return [re.sub(r"0x[0-9a-f]+ in |0x[0-9a-f]+", "", line) for line in keep]


def _frames(output: str) -> list[str]:
    """The function names of a backtrace."""
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+)", output, re.MULTILINE)


def test_catch_write_forwards_matches_native_gdb(writes: Recording, tmp_path: Path) -> None:
    def session(start: str) -> tuple[GdbScript, list[int]]:
        s = GdbScript()
        s("catch syscall write")
        shown = [s(start), s("where-line"), s("bt"), s("print $rax"), s("print $orig_rax")]
        shown += [s("continue"), s("where-line"), s("bt"), s("print $rax")]
        shown += [s("continue"), s("where-line"), s("bt"), s("continue"), s("where-line")]
        return s, shown

    s, shown = session("continue")
    remote = _remote(s, writes, tmp_path)
    n, native_shown = session("run")
    native = n.run_native(writes.binary)
    assert native.returncode == 0, native.context()
    remote.expect(shown[0], "Catchpoint 1 (call to syscall write)")
    remote.expect(shown[5], "Catchpoint 1 (returned from syscall write)")
    assert remote.value(shown[3]) == "-38"  # -ENOSYS at the entry, as natively
    assert remote.value(shown[4]) == "1"
    assert remote.value(shown[8]) == "11"  # write's result: "first line\n"
    assert _frames(remote[shown[2]])[1:] == ["say", "first_line", "main"]
    assert _frames(remote[shown[11]])[1:] == ["say", "second_line", "main"]
    for mine, theirs in zip(shown, native_shown, strict=True):
        assert _essence(remote[mine]) == _essence(native[theirs]), (
            f"{remote.context(mine)}\n---- native ----\n{native.context(theirs)}")


def test_reverse_continue_from_the_end_finds_the_last_write(writes: Recording,
                                                            tmp_path: Path) -> None:
    s = GdbScript()
    end = s("continue")
    s("catch syscall write")
    back = [s("reverse-continue"), s("bt"), s("print $rax")]
    entry = [s("reverse-continue"), s("bt"), s("print $rax"), s("print $orig_rax")]
    finish = [s("reverse-finish"), s("where-line")]
    again = [s("continue"), s("bt"), s("continue"), s("print $rax")]
    t = _remote(s, writes, tmp_path)
    t.expect(end, "SIGKILL")
    t.expect(back[0], "Catchpoint 1 (returned from syscall write)")
    assert _frames(t[back[1]])[1:] == ["say", "third_line", "main"]
    assert t.value(back[2]) == "11"
    t.expect(entry[0], "Catchpoint 1 (call to syscall write)")
    assert _frames(t[entry[1]])[1:] == ["say", "third_line", "main"]
    assert t.value(entry[2]) == "-38"
    assert t.value(entry[3]) == "1"
    assert t.where(finish[1]).startswith(f"say {writes.line('write')} ")
    t.expect(again[0], "Catchpoint 1 (call to syscall write)")
    assert _frames(t[again[1]])[1:] == ["say", "third_line", "main"]
    t.expect(again[2], "Catchpoint 1 (returned from syscall write)")
    assert t.value(again[3]) == "11"


def test_catch_by_number_and_by_group(writes: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    number = s("catch syscall 63")
    forward = [s("continue"), s("bt"), s("continue")]
    s("delete")
    end = s("continue")
    group = s("catch syscall group:descriptor")
    back = [s("reverse-continue"), s("bt")]
    t = _remote(s, writes, tmp_path)
    t.expect(number, "'uname' [63]")
    t.expect(forward[0], "Catchpoint 1 (call to syscall uname)")
    assert _frames(t[forward[1]])[1:] == ["main"]
    t.expect(forward[2], "Catchpoint 1 (returned from syscall uname)")
    t.expect(group, "'write' [1]")
    t.expect(end, "SIGKILL")
    t.expect(back[0], "Catchpoint 2 (returned from syscall write)")
    assert _frames(t[back[1]])[1:] == ["say", "third_line", "main"]


def test_catch_any_syscall_and_delete(writes: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    end = s("continue")
    caught = s("catch syscall")
    back = [s("reverse-continue") for _ in range(4)]
    where = s("bt")
    forward = s("continue")
    s("delete")
    rest = s("continue")
    t = _remote(s, writes, tmp_path)
    t.expect(end, "SIGKILL")
    t.expect(caught, "(any syscall)")
    t.expect(back[0], "Catchpoint 1 (returned from syscall write)")
    t.expect(back[1], "Catchpoint 1 (call to syscall write)")
    t.expect(back[2], "Catchpoint 1 (returned from syscall uname)")
    t.expect(back[3], "Catchpoint 1 (call to syscall uname)")
    assert _frames(t[where])[1:] == ["main"]
    t.expect(forward, "Catchpoint 1 (returned from syscall uname)")
    # deleted (QCatchSyscalls:0): the next continue runs to the end of the recording
    out = t.expect(rest, "SIGKILL")
    assert "Catchpoint" not in out, t.context(rest)


def test_reverse_continue_from_a_syscall_entry_to_a_breakpoint(writes: Recording,
                                                               tmp_path: Path) -> None:
    s = GdbScript()
    s("continue")
    s("catch syscall write")
    entry = [s("reverse-continue"), s("reverse-continue")]
    s("delete")
    s("break third_line")
    s(f"break {NAME}.c:{writes.line('return')}")  # hit after the present: not a stop back
    hit = s("reverse-continue")
    where = s("where-line")
    t = _remote(s, writes, tmp_path)
    t.expect(entry[1], "Catchpoint 1 (call to syscall write)")
    t.expect(hit, "Breakpoint 2, third_line")
    assert t.where(where).startswith("third_line ")
