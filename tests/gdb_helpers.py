"""Helpers for the end-to-end tests that drive a real gdb against ``rrgdb replay -s``.

* ``record_program(name, variant, workdir)`` compiles ``tests/programs/NAME.c`` and records
  it; the returned ``Recording`` knows the lines marked ``L:name`` in the source.
* ``ReplayServer`` runs ``python -m rrgdb replay -s PORT TRACE`` (stdout/stderr to files),
  waits for its ready line and ends it by pid (SIGTERM, then SIGKILL) — use it as a
  context manager so a failing test still ends it.
* ``GdbScript`` collects gdb commands and runs them in one ``gdb -batch`` session (against
  a server, or natively on a binary); each command's output can be read back separately.
* ``MiSession`` drives gdb's MI3 interpreter through pygdbmi, as IDEs do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import PROGRAMS_DIR, Variant, compile_program, describe, record, rrgdb_env

GDB = shutil.which("gdb")
requires_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed")

#: gdb's own ``record full`` cannot record AVX instructions; native reference runs make
#: glibc pick its SSE2 string functions instead.
NATIVE_RECORD_ENV = "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-AVX,-AVX512F,-AVX512VL,-EVEX"

#: A gdb command ``where-line`` printing ``@@ FUNCTION LINE SYMBOL+OFFSET`` for the
#: selected frame: a position that compares across gdb sessions (same binary, no ASLR).
WHERE_PY = r"""
import gdb

class WhereLine(gdb.Command):
    def __init__(self):
        super().__init__("where-line", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        frame = gdb.selected_frame()
        sal = frame.find_sal()
        sym = gdb.execute("info symbol $pc", to_string=True).split(" in section")[0]
        print("@@ %s %s %s" % (frame.name(), sal.line, sym.strip().replace(" ", "")))

WhereLine()
"""


# --------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class Recording:
    """A compiled test program and its recording."""

    name: str
    variant: Variant
    binary: Path
    source: Path
    trace: Path
    stdout: bytes
    status: int
    lines: dict[str, int]

    def line(self, marker: str) -> int:
        """The line number of the source line marked ``L:marker``."""
        return self.lines[marker]


def marked_lines(source: Path) -> dict[str, int]:
    """``{marker: line number}`` for every ``L:marker`` comment in a C source."""
    found: dict[str, int] = {}
    for number, text in enumerate(source.read_text().splitlines(), start=1):
        for marker in re.findall(r"L:([\w-]+)", text):
            found[marker] = number
    return found


def record_program(name: str, variant: Variant, workdir: Path) -> Recording:
    """Compile tests/programs/NAME.c with -VARIANT -g and record one run of it."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = PROGRAMS_DIR / f"{name}.c"
    binary = workdir / f"{name}-{variant}"
    compile_program(source, binary, variant, ())
    trace = workdir / f"trace-{name}-{variant}"
    recorded = record([binary], trace, cwd=workdir)
    assert trace.is_dir(), describe(recorded)
    return Recording(
        name,
        variant,
        binary,
        source,
        trace,
        recorded.stdout,
        recorded.returncode,
        marked_lines(source),
    )


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReplayServer:
    """``python -m rrgdb replay -s PORT TRACE`` with its output captured in files
    (``launcher``: what runs rrgdb's command line instead of ``-m rrgdb``)."""

    def __init__(self, trace: Path, logdir: Path, ready_timeout: float = 60.0,
                 options: Sequence[str] = (), launcher: Sequence[str] = ("-m", "rrgdb")) -> None:
        self.trace = trace
        self.port = free_port()
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / f"server-{self.port}.out"
        self.stderr_path = logdir / f"server-{self.port}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, *launcher, "replay", "-s", str(self.port), *options,
                 str(trace)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=rrgdb_env(),
            )
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float) -> None:
        ready = f"target extended-remote {self.address}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready in self.stderr():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"rrgdb replay -s exited with {self.proc.returncode} before listening:\n"
                    f"{self.stderr()}"
                )
            time.sleep(0.02)
        raise AssertionError(f"rrgdb replay -s never printed {ready!r}:\n{self.stderr()}")

    def stdout(self) -> bytes:
        """What the replayed program has printed so far."""
        return self.stdout_path.read_bytes()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_stdout(self, expected: bytes, timeout: float = 5.0) -> bytes:
        """The server's stdout once it contains ``expected`` (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while expected not in (out := self.stdout()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """End the server by pid: SIGTERM, then SIGKILL if it does not go within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> ReplayServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def replay_server(recording: Recording, logdir: Path,
                  options: Sequence[str] = ()) -> Iterator[ReplayServer]:
    """A replay server for one recording (extra `replay` options: e.g. -p PID), ended (by
    pid) when the block exits."""
    server = ReplayServer(recording.trace, logdir, options=options)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- gdb -batch

_MARK = "@@CMD"


@dataclass
class Transcript:
    """The output of one ``gdb -batch`` session, split per command."""

    commands: list[str]
    outputs: list[str]
    text: str
    returncode: int
    seconds: float
    #: what the setup commands (``target extended-remote``…) printed
    setup: list[str]
    #: what the server had written to its stderr when gdb exited (tracebacks of E01s)
    server_log: str = ""

    def __getitem__(self, index: int) -> str:
        return self.outputs[index]

    def context(self, index: int | None = None) -> str:
        """A readable transcript for assertion messages."""
        head = f"gdb exited {self.returncode} after {self.seconds:.1f}s"
        if index is not None:
            head += f"; command {index}: {self.commands[index]!r} printed:\n{self.outputs[index]}"
        pairs = zip(self.commands, self.outputs, strict=True)
        body = "\n".join(f"({i}) {cmd}\n{out.rstrip()}" for i, (cmd, out) in enumerate(pairs))
        log = f"\n---- server stderr ----\n{self.server_log[-4000:]}" if self.server_log else ""
        return (f"{head}\n---- whole session ----\n{self.text[:3000]}\n---- per command ----\n"
                f"{body}{log}")

    def expect(self, index: int, *needles: str) -> str:
        """Assert that command ``index`` printed every needle; return its output."""
        out = self.outputs[index]
        for needle in needles:
            assert needle in out, f"missing {needle!r}\n{self.context(index)}"
        return out

    def expect_re(self, index: int, pattern: str) -> re.Match[str]:
        """Assert that command ``index``'s output matches a regex (MULTILINE)."""
        match = re.search(pattern, self.outputs[index], re.MULTILINE)
        assert match, f"no match for {pattern!r}\n{self.context(index)}"
        return match

    def expect_line(self, index: int, line: int) -> None:
        """Assert that command ``index`` stopped at source line ``line`` (gdb prints it)."""
        self.expect_re(index, rf"^{line}\t|:{line}\n")

    def value(self, index: int) -> str:
        """The value a ``print`` command printed (``$N = VALUE``)."""
        return self.expect_re(index, r"^\$\d+ = (.*)$").group(1)

    def where(self, index: int) -> str:
        """The ``@@ FUNC LINE SYM`` a ``where-line`` command printed."""
        return self.expect_re(index, r"^@@ (.*)$").group(1)


class GdbScript:
    """gdb commands run one after the other in a single ``gdb -batch`` session.

    ``script(cmd)`` appends a command and returns its index into the transcript. Errors
    do not stop the session (each command is a separate ``-ex``).
    """

    def __init__(self, *commands: str) -> None:
        self.commands: list[str] = []
        for command in commands:
            self(command)

    def __call__(self, command: str) -> int:
        self.commands.append(command)
        return len(self.commands) - 1

    def many(self, *commands: str) -> list[int]:
        return [self(command) for command in commands]

    def run_remote(
        self, server: ReplayServer | str, *, timeout: float = 120.0, binary: Path | None = None
    ) -> Transcript:
        """Run against a server: the first command is ``target extended-remote``."""
        if isinstance(server, str):
            return self._run([f"target extended-remote {server}"], binary, timeout)
        transcript = self._run([f"target extended-remote {server.address}"], binary, timeout)
        return replace(transcript, server_log=server.stderr())

    def run_native(self, binary: Path, *, timeout: float = 120.0) -> Transcript:
        """Run natively on ``binary`` (no rrgdb), for gdb's own ``record full``."""
        return self._run([f"set environment {NATIVE_RECORD_ENV}"], binary, timeout)

    def _run(self, setup: Sequence[str], binary: Path | None, timeout: float) -> Transcript:
        assert GDB is not None
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as helper:
            helper.write(WHERE_PY)
        try:
            argv: list[str] = [GDB, "-batch", "-nx", "-q"]
            for setting in (
                "set pagination off",
                "set confirm off",
                "set width 0",
                "set height 0",
                f"source {helper.name}",
            ):
                argv += ["-ex", setting]
            commands = [*setup, *self.commands]
            for index, command in enumerate(commands):
                argv += ["-ex", f"echo \\n{_MARK} {index}\\n", "-ex", command]
            argv += ["-ex", f"echo \\n{_MARK} end\\n"]
            if binary is not None:
                argv.append(str(binary))
            started = time.monotonic()
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                text=True,
                errors="replace",
            )
            seconds = time.monotonic() - started
        finally:
            os.unlink(helper.name)
        outputs = [""] * len(commands)
        current: int | None = None
        for line in result.stdout.splitlines(keepends=True):
            mark = re.fullmatch(rf"{_MARK} (\d+|end)\n?", line)
            if mark:
                current = None if mark.group(1) == "end" else int(mark.group(1))
            elif current is not None:
                outputs[current] += line
        skip = len(setup)
        return Transcript(
            commands[skip:],
            outputs[skip:],
            result.stdout,
            result.returncode,
            seconds,
            outputs[:skip],
        )


# --------------------------------------------------------------------------- MI


class MiSession:
    """gdb's MI3 interpreter through pygdbmi, the way IDE front ends drive gdb."""

    def __init__(self, timeout: float = 60.0) -> None:
        from pygdbmi.gdbcontroller import GdbController

        assert GDB is not None
        self.timeout = timeout
        self.controller = GdbController(
            [GDB, "--nx", "--quiet", "--interpreter=mi3"],
            time_to_check_for_additional_output_sec=0.01,
        )
        self.token = 100
        self.log: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []

    def close(self) -> None:
        process = self.controller.gdb_process
        if process is not None and process.poll() is None:
            try:
                self.controller.write(
                    "-gdb-exit", timeout_sec=2, raise_error_on_timeout=False, read_response=False
                )
                process.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                pass
        self.controller.exit()

    def __enter__(self) -> MiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        remaining = max(0.05, min(0.5, deadline - time.monotonic()))
        records = self.controller.get_gdb_response(
            timeout_sec=remaining, raise_error_on_timeout=False
        )
        self.log.extend(records)
        return records

    def _wait(
        self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float | None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, rec in enumerate(self.pending):
                if match(rec):
                    del self.pending[: i + 1]
                    return rec
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.dump()}")
            self.pending.extend(self._read(deadline))

    def command(self, command: str, timeout: float | None = None) -> dict[str, Any]:
        """Send an MI command; return its result record (``^done``, ``^running``, ``^error``…)."""
        self.token += 1
        token = self.token
        self.controller.write(f"{token}{command}", read_response=False)
        return self._wait(
            lambda rec: rec.get("type") == "result" and rec.get("token") == token,
            f"the result of {command!r}",
            timeout,
        )

    def done(self, command: str, timeout: float | None = None) -> dict[str, Any]:
        """Send a command that must succeed; return the result's payload."""
        rec = self.command(command, timeout)
        assert rec["message"] in ("done", "connected", "running"), (
            f"{command!r} failed: {rec}\n{self.dump()}"
        )
        return rec.get("payload") or {}

    def stopped(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the next ``*stopped`` record; return its payload."""
        rec = self._wait(
            lambda rec: rec.get("type") == "notify" and rec.get("message") == "stopped",
            "*stopped",
            timeout,
        )
        return rec.get("payload") or {}

    def run(self, command: str, timeout: float | None = None) -> dict[str, Any]:
        """An execution command: expect ``^running`` and return the ``*stopped`` payload."""
        rec = self.command(command, timeout)
        assert rec["message"] == "running", f"{command!r}: {rec}\n{self.dump()}"
        return self.stopped(timeout)

    def console_since(self, start: int) -> str:
        """Console stream output received since ``len(self.log)`` was ``start``."""
        return "".join(
            rec.get("payload") or ""
            for rec in self.log[start:]
            if rec.get("type") in ("console", "log", "output", "target")
        )

    def dump(self, last: int = 60) -> str:
        return "\n".join(repr(rec) for rec in self.log[-last:])
