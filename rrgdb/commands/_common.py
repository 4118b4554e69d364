"""Helpers shared by the subcommands: messages, trace-directory naming."""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_BAD_TRACE = 2


def say(message: str) -> None:
    """Prints one rrgdb message on stderr (always prefixed, so it stands out from the
    program's own output)."""
    sys.stderr.write(f"rrgdb: {message}\n")
    sys.stderr.flush()


def trace_base() -> Path:
    """Where traces go by default: $RRGDB_TRACE_DIR or ~/.local/share/rrgdb."""
    env = os.environ.get("RRGDB_TRACE_DIR")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "share")
    return Path(data) / "rrgdb"


def new_trace_dir(program: str) -> Path:
    """A fresh <prog>-<n> directory name under the trace base (not yet created)."""
    base = trace_base()
    base.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(program) or "trace"
    n = 0
    while (base / f"{name}-{n}").exists():
        n += 1
    return base / f"{name}-{n}"


def point_latest(trace_dir: Path) -> None:
    """Atomically points <base>/latest-trace at trace_dir."""
    link = trace_dir.parent / "latest-trace"
    tmp = trace_dir.parent / f".latest-trace.{os.getpid()}"
    try:
        os.symlink(trace_dir.name, tmp)
        os.replace(tmp, link)
    except OSError:
        pass


def resolve_trace(arg: str | None) -> Path:
    """The trace a command should read: the argument, or the latest trace."""
    if arg:
        return Path(arg)
    return trace_base() / "latest-trace"
