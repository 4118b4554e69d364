"""The gdb Python extension rrgdb ships: `last`, `leak-roots` and rr's command names.

The extension is one script, run by gdb's own Python (`source PATH` or `gdb -x PATH`); it
imports nothing from rrgdb, so it works whichever Python rrgdb itself is installed in.
`rrgdb gdbinit` prints SCRIPT; `rrgdb replay` passes it to the gdb it starts.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).resolve().with_name("rrgdb_commands.py")
