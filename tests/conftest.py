"""Shared fixtures for the engine tests: the C test programs, rrgdb helpers, leak checks.

The C programs under tests/programs/ are compiled once per session (-O0 and -O2, a few
also -static). Tests that take a ``program`` argument are parametrised over every
(program, variant) pair, so each test id reads like ``clocks-O2``.

`pytest --no-syscallbuf` records every program without the syscall buffer (tests marked
`needs_syscallbuf`, which check the buffer itself, are skipped): every other record/replay
test must pass both ways.

Every test is also checked for leaked processes: the pytest process is made a child
subreaper, so anything a test starts (rrgdb, its tracees, their orphans) stays in
pytest's process tree; whatever is still alive after the test is reported as a failure
and then killed by pid.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from elftools.elf.elffile import ELFFile

from rrgdb import native
from rrgdb.kernel.breakpoints import INT3
from rrgdb.kernel.task import Task

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
STATIC_LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.a")
TIMEOUT = 120.0

Variant = Literal["O0", "O2", "static"]
Varies = Literal["always", "aslr", "never"]


# --------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class ProgramSpec:
    """One C test program: its source name, how to run it and what it should do.

    ``args`` may hold two placeholders: ``{dir}`` (a fresh empty directory per run) and
    ``{clocks}`` (the path of the clocks program built with the same variant).
    ``varies`` says whether two native runs print different output: always, only when
    ASLR is on, or never.
    """

    name: str
    args: tuple[str, ...] = ()
    status: int = 0
    cflags: tuple[str, ...] = ()
    static: bool = False
    varies: Varies = "always"


PROGRAMS: tuple[ProgramSpec, ...] = (
    ProgramSpec("clocks", static=True),
    ProgramSpec("randomness"),
    ProgramSpec("tsc", static=True),
    ProgramSpec("pids"),
    ProgramSpec("pointers", static=True, varies="aslr"),
    ProgramSpec("canary", cflags=("-fstack-protector-all",), static=True),
    ProgramSpec("file_io", args=("{dir}",)),
    ProgramSpec("mmap_io", args=("{dir}",)),
    ProgramSpec("sigsegv", varies="aslr"),
    ProgramSpec("signals"),
    ProgramSpec("abort", status=128 + signal.SIGABRT),
    ProgramSpec("exit_code", status=3),
    ProgramSpec("interleave"),
    ProgramSpec("exec_chain", args=("{clocks}",)),
    ProgramSpec("context", varies="never"),
)
PROGRAMS_BY_NAME = {spec.name: spec for spec in PROGRAMS}


def variants(spec: ProgramSpec) -> tuple[Variant, ...]:
    """The build variants of one program."""
    return ("O0", "O2", "static") if spec.static else ("O0", "O2")


@dataclass(frozen=True)
class Program:
    """A compiled test program: spec, variant and executable path."""

    spec: ProgramSpec
    variant: Variant
    path: Path
    clocks_path: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> str:
        return f"{self.spec.name}-{self.variant}"

    def command(self, scratch: Path) -> list[str]:
        """The command line for one run; ``{dir}`` becomes a new directory in scratch."""
        argv = [str(self.path)]
        for arg in self.spec.args:
            if arg == "{dir}":
                data_dir = scratch / f"data-{len(list(scratch.glob('data-*')))}"
                data_dir.mkdir(parents=True)
                argv.append(str(data_dir))
            elif arg == "{clocks}":
                argv.append(str(self.clocks_path))
            else:
                argv.append(arg)
        return argv


def compile_program(source: Path, output: Path, variant: Variant, cflags: Sequence[str]) -> None:
    """Compile one C source with gcc; raise with gcc's message on failure."""
    flags = ["-O0"] if variant == "O0" else ["-O2"]
    if variant == "static":
        flags.append("-static")
    cmd = [
        "gcc",
        *flags,
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        *cflags,
        "-o",
        str(output),
        str(source),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr}")


@pytest.fixture(scope="session")
def built_programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Program]:
    """Every test program compiled in every variant, keyed by ``name-variant``."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the test programs")
    out = tmp_path_factory.mktemp("programs")
    jobs: list[tuple[ProgramSpec, Variant]] = [
        (spec, variant)
        for spec in PROGRAMS
        for variant in variants(spec)
        if variant != "static" or STATIC_LIBC.exists()
    ]
    if not PROGRAMS_BY_NAME["clocks"].static:
        raise AssertionError("exec_chain needs a clocks build in every variant")

    def build(job: tuple[ProgramSpec, Variant]) -> None:
        spec, variant = job
        compile_program(
            PROGRAMS_DIR / f"{spec.name}.c", out / f"{spec.name}-{variant}", variant, spec.cflags
        )

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(build, jobs))
    return {
        f"{spec.name}-{variant}": Program(
            spec, variant, out / f"{spec.name}-{variant}", out / f"clocks-{variant}"
        )
        for spec, variant in jobs
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``program_id`` over every (program, variant) pair."""
    if "program_id" not in metafunc.fixturenames:
        return
    marks: dict[str, list[pytest.MarkDecorator]] = {}
    if not STATIC_LIBC.exists():
        marks["static"] = [pytest.mark.skip(reason=f"no static libc ({STATIC_LIBC} missing)")]
    params = [
        pytest.param(
            f"{spec.name}-{variant}", id=f"{spec.name}-{variant}", marks=marks.get(variant, [])
        )
        for spec in PROGRAMS
        for variant in variants(spec)
    ]
    metafunc.parametrize("program_id", params)


@pytest.fixture
def program(program_id: str, built_programs: dict[str, Program]) -> Program:
    """The compiled program of this parametrisation."""
    return built_programs[program_id]


@pytest.fixture
def build(tmp_path: Path) -> Callable[..., Path]:
    """Compile a C source from tests/programs into the test's tmp dir: build(name, variant)."""

    def _build(name: str, variant: Variant = "O2", *cflags: str) -> Path:
        output = tmp_path / "bin" / f"{name}-{variant}"
        output.parent.mkdir(exist_ok=True)
        spec = PROGRAMS_BY_NAME.get(name)
        flags = (*(spec.cflags if spec else ()), *cflags)
        compile_program(PROGRAMS_DIR / f"{name}.c", output, variant, flags)
        return output

    return _build


@contextmanager
def traced_at_label(name: str, directory: Path) -> Iterator[Task]:
    """tests/programs/NAME.c built static (no ld.so, whose rdtsc would fault under the
    spawn's PR_TSC_SIGSEGV), traced and stopped at its global label `window`; killed at
    the end."""
    binary = directory / name
    compile_program(PROGRAMS_DIR / f"{name}.c", binary, "static", ())
    with binary.open("rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        window = symbols.get_symbol_by_name("window")[0].entry.st_value
    pid = native.spawn(str(binary), [str(binary).encode()], [], None, None, True, 2)
    task = Task(pid)
    try:
        assert task.wait().signo == signal.SIGSTOP
        native.ptrace(native.PTRACE_SETOPTIONS, pid, 0, native.PTRACE_O_EXITKILL)
        task.resume(native.PTRACE_CONT)
        assert task.wait().signo == signal.SIGTRAP  # its execve
        original = task.read(window, 1)
        task.write(window, INT3)
        task.resume(native.PTRACE_CONT)
        assert task.wait().signo == signal.SIGTRAP
        task.write(window, original)
        regs = task.regs()
        regs.rip = window
        task.set_regs(regs)
        yield task
    finally:
        task.kill()


# --------------------------------------------------------------------------- running rrgdb


def _rrgdb_import_env() -> dict[str, str]:
    """Extra environment that lets ``python -m rrgdb`` import the package from any cwd.

    With the package installed (``pip install -e .``) nothing is needed; from a bare
    source checkout the repository root goes on PYTHONPATH.
    """
    probe = subprocess.run(
        [sys.executable, "-c", "import rrgdb"],
        cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        timeout=TIMEOUT,
    )
    return {} if probe.returncode == 0 else {"PYTHONPATH": str(REPO_ROOT)}


_IMPORT_ENV: dict[str, str] | None = None


def rrgdb_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an rrgdb process: ``env`` (default: ours) plus what imports it."""
    global _IMPORT_ENV
    if _IMPORT_ENV is None:
        _IMPORT_ENV = _rrgdb_import_env()
    return {**(os.environ if env is None else env), **_IMPORT_ENV}


RECORD_OPTIONS: list[str] = []  # ["--no-syscallbuf"] under pytest --no-syscallbuf


def rrgdb_command(args: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``python -m rrgdb ARGS``; a record command gets this session's RECORD_OPTIONS."""
    words = [str(arg) for arg in args]
    if words[:1] == ["record"]:
        words[1:1] = RECORD_OPTIONS
    return [sys.executable, "-m", "rrgdb", *words]


def run_rrgdb(
    args: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m rrgdb ARGS`` with stdin from /dev/null, output captured, a timeout."""
    options: dict[str, Any] = {"stdin": subprocess.DEVNULL, "timeout": TIMEOUT}
    if "stdout" not in kw and "stderr" not in kw:
        options["capture_output"] = True
    options.update(kw)
    return subprocess.run(rrgdb_command(args), env=rrgdb_env(env), **options)


def record(
    cmd: Sequence[str | os.PathLike[str]], trace_dir: Path | None, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """``rrgdb record [-o TRACE_DIR] -- CMD``."""
    out = ["-o", str(trace_dir)] if trace_dir is not None else []
    return run_rrgdb(["record", *out, "--", *cmd], **kw)


def replay(trace_dir: Path | None, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """``rrgdb replay -a [TRACE_DIR]``."""
    return run_rrgdb(["replay", "-a", *([str(trace_dir)] if trace_dir is not None else [])], **kw)


def run_native(
    cmd: Sequence[str | os.PathLike[str]], **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run a command directly (no rrgdb) the same way record() runs it."""
    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "timeout": TIMEOUT,
        "capture_output": True,
    }
    options.update(kw)
    return subprocess.run([str(c) for c in cmd], **options)


def rrgdb_lines(stderr: bytes) -> list[bytes]:
    """The lines rrgdb itself printed on stderr."""
    return [line for line in stderr.splitlines() if line.startswith(b"rrgdb:")]


def program_stderr(stderr: bytes) -> bytes:
    """stderr without the lines rrgdb itself printed."""
    return b"".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(b"rrgdb:")
    )


def saved_trace_dir(recorded: subprocess.CompletedProcess[bytes]) -> Path:
    """The directory named by record's closing line; checks that line is rrgdb's only one
    and comes last on stderr."""
    lines = rrgdb_lines(recorded.stderr)
    prefix = b"rrgdb: trace saved to "
    assert len(lines) == 1 and lines[0].startswith(prefix), describe(recorded)
    assert recorded.stderr.splitlines()[-1] == lines[0], "the trace line must come last"
    return Path(lines[0].removeprefix(prefix).decode())


def describe(result: subprocess.CompletedProcess[bytes]) -> str:
    """A readable summary of a finished process for assertion messages."""
    return (
        f"command: {' '.join(map(str, result.args))}\nstatus: {result.returncode}\n"
        f"stdout: {result.stdout!r:.2000}\nstderr: {result.stderr!r:.4000}"
    )


def assert_replay_matches(
    recorded: subprocess.CompletedProcess[bytes], replayed: subprocess.CompletedProcess[bytes]
) -> None:
    """Replay printed the recorded bytes on both streams and exited with the same status."""
    assert replayed.returncode == recorded.returncode, describe(replayed)
    assert replayed.stdout == recorded.stdout, describe(replayed)
    assert program_stderr(replayed.stderr) == program_stderr(recorded.stderr), describe(replayed)


# --------------------------------------------------------------------------- leak checks

PR_SET_CHILD_SUBREAPER = 36


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-syscallbuf", action="store_true",
                     help="record every program with rrgdb record --no-syscallbuf")


def pytest_configure(config: pytest.Config) -> None:
    """Make pytest the reaper of every orphan its tests leave, so leaks stay visible."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    config.addinivalue_line(
        "markers", "needs_syscallbuf: checks the syscall buffer itself (not run under "
        "--no-syscallbuf)")
    if config.getoption("--no-syscallbuf"):
        RECORD_OPTIONS.append("--no-syscallbuf")
    # The recordings share one file cache of their own, not the user's ~/.cache.
    os.environ["RRGDB_CACHE_DIR"] = tempfile.mkdtemp(prefix="rrgdb-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("RRGDB_CACHE_DIR", ""), ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--no-syscallbuf"):
        skip = pytest.mark.skip(reason="checks the syscall buffer (--no-syscallbuf)")
        for item in items:
            if item.get_closest_marker("needs_syscallbuf"):
                item.add_marker(skip)


@dataclass(frozen=True)
class ProcessInfo:
    """One /proc entry: enough to tell processes apart and describe them."""

    pid: int
    ppid: int
    state: str
    start_time: int
    cmdline: str


def _read_proc(pid: int) -> ProcessInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw_cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    cmdline = raw_cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    return ProcessInfo(pid, int(fields[1]), fields[0], int(fields[19]), cmdline or f"[{comm}]")


def descendants(root: int) -> dict[tuple[int, int], ProcessInfo]:
    """Every process below ``root``, keyed by (pid, start time) so reused pids differ."""
    table = [
        info
        for entry in os.listdir("/proc")
        if entry.isdigit()
        if (info := _read_proc(int(entry))) is not None
    ]
    children: dict[int, list[ProcessInfo]] = {}
    for info in table:
        children.setdefault(info.ppid, []).append(info)
    found: dict[tuple[int, int], ProcessInfo] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found[(child.pid, child.start_time)] = child
            stack.append(child.pid)
    return found


def _reap_zombie_children(known: set[tuple[int, int]]) -> None:
    """Reap orphans that died after being re-parented to us (we are their subreaper)."""
    me = os.getpid()
    for key, info in descendants(me).items():
        if info.ppid == me and info.state == "Z" and key not in known:
            try:
                os.waitpid(info.pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _alive_leftovers(before: set[tuple[int, int]]) -> list[ProcessInfo]:
    return [
        info
        for key, info in descendants(os.getpid()).items()
        if key not in before and info.state not in ("Z", "X")
    ]


@pytest.fixture(autouse=True)
def all_cpus() -> Iterator[None]:
    """A test that replays in-process binds pytest's thread to one CPU (as the tracer of
    its tracees); the next tests, and the programs they start, get every CPU back."""
    cpus = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, cpus)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fail the test if a process it started outlives it; kill such processes by pid."""
    before = set(descendants(os.getpid()))
    yield
    deadline = time.monotonic() + 2.0  # a tracee killed by PTRACE_O_EXITKILL takes a moment
    while True:
        _reap_zombie_children(before)
        leftovers = _alive_leftovers(before)
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not leftovers:
        return
    report = "\n".join(
        f"  pid {p.pid} ppid {p.ppid} state {p.state}: {p.cmdline}" for p in leftovers
    )
    for info in leftovers:
        try:
            os.kill(info.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5.0
    while _alive_leftovers(before) and time.monotonic() < deadline:
        _reap_zombie_children(before)
        time.sleep(0.05)
    _reap_zombie_children(before)
    pytest.fail(f"processes left behind by the test (now killed):\n{report}", pytrace=False)
