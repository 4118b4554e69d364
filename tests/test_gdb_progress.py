"""A reverse search that runs for more than a second reports its progress in gdb's
console (issue 7), and still lands where it should."""

from __future__ import annotations

from pathlib import Path

from gdb_helpers import GdbScript, record_program, replay_server


def test_long_reverse_search_reports_progress(tmp_path: Path) -> None:
    recording = record_program("many_events", "O0", tmp_path / "rec")
    s = GdbScript()
    s("break main")
    s("continue")
    end = s("continue")
    back = s("reverse-continue")
    with replay_server(recording, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(end, "SIGKILL")
    t.expect(back, "rrgdb: searching backwards", "Breakpoint 1, main ()")
