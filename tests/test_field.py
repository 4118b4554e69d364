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
