"""Benchmark rrgdb against native execution: wall time of record and replay vs native.

Compiles bench/syscall_heavy.c, bench/compute.c, bench/threads_condvar.c and
bench/threads_compute.c, and also runs
two shell loops (fork/exec and pipelines) and a Python json workload; runs each natively,
under ``rrgdb record`` and under ``rrgdb replay -a`` (several runs each), and prints the
median times and the record/native and replay/native ratios. Run on demand:

    python bench/run.py [--runs 3] [--syscall-iterations 200000] [--compute-iterations N]

(the compute workload defaults to about 5 s native). The *_long rows run the same
programs 10x (syscall_heavy) or 50x (python) longer: rrgdb's fixed start-up (the startup
row) is then a small part of the time, and their ratios show the cost per syscall.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TIMEOUT = 3600.0


# $1 is the workload's size argument
FORK_EXEC_SCRIPT = "i=0; while [ $i -lt $1 ]; do /bin/true; i=$((i+1)); done"
PIPELINE_SCRIPT = 'i=0; while [ $i -lt $1 ]; do echo $i | cat | wc -c >/dev/null; i=$((i+1)); done'
# sys.argv[1] is the number of json documents
PYTHON_SCRIPT = (
    "import json, os, sys; "
    "d = [json.dumps({'k': i, 'v': os.urandom(8).hex()}) for i in range(int(sys.argv[1]))]; "
    "print(len(d))"
)


@dataclass(frozen=True)
class Workload:
    """One benchmark: a C program (source, compiled with cflags), a shell script run as
    ``sh -c SCRIPT sh N`` or Python code run as ``python -c CODE N`` (this interpreter),
    and the argument N that sets its size."""

    name: str
    source: Path | None
    iterations: int
    cflags: tuple[str, ...] = ()
    script: str = ""
    python: str = ""


@dataclass(frozen=True)
class Result:
    """Median wall times (seconds) of one workload in the three modes."""

    workload: str
    native: float
    record: float
    replay: float


def rrgdb_env() -> dict[str, str]:
    """Our environment, plus the repository on PYTHONPATH if rrgdb is not installed."""
    probe = subprocess.run(
        [sys.executable, "-c", "import rrgdb"], cwd="/", capture_output=True, check=False
    )
    if probe.returncode == 0:
        return dict(os.environ)
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def compile_workload(source: Path, output: Path, cflags: Sequence[str] = ()) -> None:
    subprocess.run(["gcc", "-O2", *cflags, "-o", str(output), str(source)], check=True)


def timed(cmd: Sequence[str], env: dict[str, str]) -> float:
    """Wall time of one run; raises if the command fails."""
    start = time.perf_counter()
    result = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {result.returncode}:\n"
            f"{result.stderr.decode(errors='replace')}"
        )
    return elapsed


def measure(
    workload: Workload, binary: Path | None, scratch: Path, runs: int, env: dict[str, str]
) -> Result:
    """Run the workload natively, under record and under replay -a, ``runs`` times each."""
    if binary is not None:
        program = [str(binary), str(workload.iterations)]
    elif workload.python:
        program = [sys.executable, "-c", workload.python, str(workload.iterations)]
    else:
        program = ["/bin/sh", "-c", workload.script, "sh", str(workload.iterations)]
    rrgdb = [sys.executable, "-m", "rrgdb"]
    native, recorded, replayed = [], [], []
    for run in range(runs):
        trace = scratch / f"{workload.name}-{run}"
        native.append(timed(program, env))
        recorded.append(timed([*rrgdb, "record", "-o", str(trace), "--", *program], env))
        replayed.append(timed([*rrgdb, "replay", "-a", str(trace)], env))
        shutil.rmtree(trace, ignore_errors=True)
        print(
            f"  {workload.name} run {run + 1}/{runs}: native {native[-1]:.3f}s "
            f"record {recorded[-1]:.3f}s replay {replayed[-1]:.3f}s",
            file=sys.stderr,
        )
    return Result(
        workload.name,
        statistics.median(native),
        statistics.median(recorded),
        statistics.median(replayed),
    )


def report(results: Sequence[Result], runs: int) -> str:
    """The results as a table of medians and ratios."""
    lines = [
        f"medians of {runs} run(s), wall-clock seconds",
        f"{'workload':<18} {'native':>9} {'record':>9} {'replay':>9} "
        f"{'record/native':>14} {'replay/native':>14}",
    ]
    for r in results:
        lines.append(
            f"{r.workload:<18} {r.native:>9.3f} {r.record:>9.3f} {r.replay:>9.3f} "
            f"{r.record / r.native:>13.2f}x {r.replay / r.native:>13.2f}x"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument(
        "--syscall-iterations",
        type=int,
        default=200_000,
        help="read+write pairs of syscall_heavy (default 200000)",
    )
    parser.add_argument(
        "--compute-iterations",
        type=int,
        default=2_000_000_000,
        help="loop rounds of compute (default 2000000000, ~5 s: rrgdb's fixed start-up "
        "cost, ~0.3 s, is reported by the startup row)",
    )
    parser.add_argument(
        "--thread-items",
        type=int,
        default=20_000,
        help="items handed from 2 producer to 2 consumer threads (default 20000)",
    )
    parser.add_argument(
        "--thread-turns",
        type=int,
        default=100_000_000,
        help="loop turns of each of threads_compute's 4 threads (default 100000000)",
    )
    parser.add_argument(
        "--fork-iterations",
        type=int,
        default=200,
        help="fork+exec of /bin/true in the fork_exec shell loop (default 200)",
    )
    parser.add_argument(
        "--pipeline-iterations",
        type=int,
        default=100,
        help="'echo | cat | wc -c' pipelines in the pipeline shell loop (default 100)",
    )
    parser.add_argument(
        "--python-items",
        type=int,
        default=2000,
        help="json documents the python workload makes (default 2000, ~0.1 s)",
    )
    parser.add_argument(
        "--only",
        choices=["syscall_heavy", "syscall_heavy_long", "compute", "startup", "threads",
                 "threads_compute", "fork_exec", "pipeline", "python", "python_long"],
        action="append",
        help="run only this workload (repeatable)",
    )
    args = parser.parse_args(argv)

    workloads = [
        Workload("syscall_heavy", BENCH_DIR / "syscall_heavy.c", args.syscall_iterations),
        Workload(
            "syscall_heavy_long", BENCH_DIR / "syscall_heavy.c", 10 * args.syscall_iterations
        ),
        Workload("python", None, args.python_items, python=PYTHON_SCRIPT),
        Workload("python_long", None, 50 * args.python_items, python=PYTHON_SCRIPT),
        Workload("compute", BENCH_DIR / "compute.c", args.compute_iterations),
        # compute with one round: rrgdb's fixed cost (start-up, exec, trace files)
        Workload("startup", BENCH_DIR / "compute.c", 1),
        Workload(
            "threads", BENCH_DIR / "threads_condvar.c", args.thread_items, cflags=("-pthread",)
        ),
        Workload(
            "threads_compute", BENCH_DIR / "threads_compute.c", args.thread_turns,
            cflags=("-pthread",),
        ),
        Workload("fork_exec", None, args.fork_iterations, script=FORK_EXEC_SCRIPT),
        Workload("pipeline", None, args.pipeline_iterations, script=PIPELINE_SCRIPT),
    ]
    if args.only:
        workloads = [w for w in workloads if w.name in args.only]
    env = rrgdb_env()
    # as `pip install` would: rrgdb's start-up is measured with its bytecode compiled
    # (PYTHONDONTWRITEBYTECODE=1 would otherwise make every run compile edited modules)
    compileall.compile_dir(REPO_ROOT / "rrgdb", quiet=1)
    with tempfile.TemporaryDirectory(prefix="rrgdb-bench-") as tmp:
        scratch = Path(tmp)
        results = []
        for workload in workloads:
            binary = None
            if workload.source is not None:
                binary = scratch / workload.name
                compile_workload(workload.source, binary, workload.cflags)
            try:
                results.append(measure(workload, binary, scratch, args.runs, env))
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"bench: {workload.name}: {error}", file=sys.stderr)
                return 1
    print(report(results, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
