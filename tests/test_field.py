"""Regressions found by recording real programs (docs/testing.md, "Field tests"): each
case is the smallest program that failed, recorded and replayed exactly."""

from __future__ import annotations

from pathlib import Path

from conftest import assert_replay_matches, describe, record, replay


def test_pseudo_terminal_session(build, tmp_path: Path) -> None:
    """openpty's TIOCGPTPEER and a controlling terminal's TIOCSCTTY / TIOCNOTTY (script(1),
    Python's pty.fork) were refused as unknown ioctls; the SIGHUP the kernel sends on
    TIOCNOTTY kills the child as it did in the recording."""
    trace = tmp_path / "trace"
    recorded = record([str(build("pty_session", "O2"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"child on a 80x24 tty, discipline 0" in recorded.stdout, describe(recorded)
    assert b"child status 0x1\n" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_offsets_datagrams_and_io_uring(build, tmp_path: Path) -> None:
    """copy_file_range, sendfile and splice write the advanced offsets back through their
    pointers (replay diverged when the program printed them); recvmmsg was refused; an
    io_uring ring (memory the kernel fills while the program runs) is refused with ENOSYS,
    which programs handle as a kernel without io_uring."""
    data = tmp_path / "data"
    data.mkdir()
    trace = tmp_path / "trace"
    recorded = record([str(build("offset_transfers", "O2")), str(data)], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert (b"copy_file_range 24: in 32 out 24; sendfile 16: from 56; splice 32: from 112"
            in recorded.stdout), describe(recorded)
    assert b'datagram 0: 5 bytes "first"' in recorded.stdout, describe(recorded)
    assert b"io_uring_setup: Function not implemented" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))
