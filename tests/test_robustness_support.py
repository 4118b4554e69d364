"""Helpers shared by the robustness tests (tests/test_robustness_*.py); no tests here.

* C programs written for these tests (compiled once per session by ``robust_programs``),
* ``GdbClient``: a minimal GDB Remote Serial Protocol client over a TCP socket,
* ``ReplayServer``: ``python -m rrgdb replay -s 0 TRACE`` started, waited for and ended by pid,
* /proc helpers: resident memory, children, process liveness.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from conftest import descendants, rrgdb_command, rrgdb_env

# --------------------------------------------------------------------------- programs

SOURCES: dict[str, str] = {
    # Buffered syscalls without end once it has said so: killed at any moment, it leaves
    # records made since its last event.
    "buffered_spinner": r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    long sum = 0;
    for (long i = 0;; i++) {
        sum += getppid() & 1;
        if (i == 1000) {
            printf("spinning %ld\n", sum);
            fflush(stdout);
        }
    }
}
""",
    # Prints a line and sleeps 1 ms, COUNT times (default: a long time): enough syscalls
    # for the trace writer to have flushed several blocks after about a second.
    "ticker": r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 1000000;
    struct timespec pause = {0, 1000 * 1000};
    for (long i = 0; i < count; i++) {
        printf("tick %ld\n", i);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
    return 0;
}
""",
    # Says it is ready, then writes 1 MiB to stdout in one call: on a pipe nobody reads,
    # the write blocks once the pipe is full, part of it written.
    "stuck_writer": r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    size_t size = 1 << 20;
    char *bytes = malloc(size);
    memset(bytes, 'x', size);
    if (write(1, "ready\n", 6) != 6)
        return 1;
    return write(1, bytes, size) < 0;
}
""",
    # execve of a file that does not exist: the call fails with ENOENT and the program
    # goes on.
    "exec_missing": r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char *argv[] = {"/nonexistent/rrgdb-missing-program", NULL};
    char *envp[] = {NULL};
    int r = execve(argv[0], argv, envp);
    printf("execve returned %d errno %d (%s)\n", r, errno, strerror(errno));
    return 5;
}
""",
    # Limits its address space to 64 MiB, then allocates until malloc fails.
    "out_of_memory": r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
int main(void) {
    struct rlimit lim = {64 << 20, 64 << 20};
    if (setrlimit(RLIMIT_AS, &lim) != 0) { perror("setrlimit"); return 1; }
    size_t total = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (p == NULL) break;
        memset(p, 1, 1 << 20);
        total += 1 << 20;
    }
    printf("malloc failed after %zu MiB\n", total >> 20);
    char *big = malloc((size_t)1 << 30);
    printf("1 GiB malloc: %s\n", big ? "ok" : "NULL");
    return 0;
}
""",
    # Reads 4000 x 64 KiB of incompressible bytes: about 256 MiB of trace data.
    "urandom_reader": r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
static char buf[65536];
int main(void) {
    int fd = open("/dev/urandom", O_RDONLY);
    long total = 0;
    for (int i = 0; i < 4000; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        total += n;
    }
    printf("read %ld bytes, first %d\n", total, buf[0]);
    return 0;
}
""",
    # A few syscalls, then ROUNDS rounds of pure computation (no events for seconds),
    # then a few more syscalls: a `continue` across the middle runs for a long time.
    "long_compute": r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 3000000000UL;
    printf("start %d\n", (int)getpid());
    fflush(stdout);
    volatile unsigned long x = 88172645463325252UL;
    for (unsigned long i = 0; i < rounds; i++) {
        unsigned long v = x;
        v ^= v << 13; v ^= v >> 7; v ^= v << 17;
        x = v;
    }
    printf("done %lu\n", (unsigned long)x);
    return 0;
}
""",
    # Many short traced syscalls (getpgid), printing now and then: many events to step through.
    "many_syscalls": r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 20000;
    long sum = 0;
    for (long i = 0; i < count; i++) {
        sum += syscall(SYS_getpgid, 0) & 1; /* traced: keeps the replay long */
        if (i % 1000 == 0) printf("at %ld\n", i);
    }
    printf("sum %ld\n", sum);
    return 0;
}
""",
}


def compile_c(name: str, out_dir: Path) -> Path:
    """Compile SOURCES[name] with gcc -O2 -g into out_dir; return the executable."""
    source = out_dir / f"{name}.c"
    source.write_text(SOURCES[name])
    exe = out_dir / name
    cmd = ["gcc", "-O2", "-g", "-Wall", "-Werror", "-o", str(exe), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr}")
    return exe


# --------------------------------------------------------------------------- /proc


def alive(pid: int) -> bool:
    """Whether pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def live_descendants(pid: int) -> list[int]:
    """Pids of the live (non-zombie) processes below pid."""
    return sorted(info.pid for info in descendants(pid).values() if info.state not in "ZX")


def wait_until(condition, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll condition() until it is true; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def end_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Send sig to one process by pid, wait for it; SIGKILL it if it does not go."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            raise AssertionError(f"pid {proc.pid} ignored signal {sig} for {timeout} s") from None
    return proc.returncode


def rrgdb_popen(args: Sequence[str | os.PathLike[str]], **kw) -> subprocess.Popen:
    """Start ``python -m rrgdb ARGS`` (stdin /dev/null, output piped unless given)."""
    options = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    options.update(kw)
    return subprocess.Popen(rrgdb_command(args), env=rrgdb_env(), **options)


# --------------------------------------------------------------------------- gdb client


def checksum(body: bytes) -> bytes:
    return b"%02x" % (sum(body) % 256)


def frame(body: bytes) -> bytes:
    return b"$" + body + b"#" + checksum(body)


class GdbClient:
    """A blocking RSP client: send packets, read replies (acks handled), raw bytes too."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.ack_mode = True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> GdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, body: bytes) -> None:
        self.sock.sendall(frame(body))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def reply(self) -> bytes:
        """The body of the next packet from the server (acks and O packets skipped)."""
        while True:
            start = self.buffer.find(b"$")
            while start < 0:
                self.buffer = b""
                self._fill()
                start = self.buffer.find(b"$")
            self.buffer = self.buffer[start:]
            while (end := self.buffer.find(b"#")) < 0 or len(self.buffer) < end + 3:
                self._fill()
            body = self.buffer[1:end]
            given = self.buffer[end + 1 : end + 3]
            self.buffer = self.buffer[end + 3 :]
            assert given == checksum(body), f"bad checksum in reply {body[:100]!r}"
            if self.ack_mode:
                self.sock.sendall(b"+")
            if body.startswith(b"O") and body != b"OK":
                continue
            return body

    def request(self, body: bytes) -> bytes:
        self.send(body)
        return self.reply()

    def handshake(self) -> bytes:
        """gdb's opening: qSupported, no-ack mode, the stop reason; returns qSupported's."""
        features = self.request(
            b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386;vContSupported+"
        )
        assert b"PacketSize=" in features, features
        assert self.request(b"QStartNoAckMode") == b"OK"
        self.ack_mode = False
        stop = self.request(b"?")
        assert stop[:1] in (b"T", b"S", b"W", b"X"), stop
        return features

    def drain(self, timeout: float = 0.2) -> bytes:
        """Whatever the server sends within timeout seconds (for junk streams)."""
        data = b""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data


# --------------------------------------------------------------------------- the server

_PORT_RE = re.compile(rb"target extended-remote ([0-9.]+|\[[0-9a-f:]+\]|[^:']+):(\d+)")


class ReplayServer:
    """``rrgdb replay -s 0 TRACE``: its process, its port and its stderr so far."""

    def __init__(self, trace: Path, *extra: str) -> None:
        self.proc = rrgdb_popen(["replay", "-s", "0", *extra, str(trace)],
                                stdout=subprocess.DEVNULL)
        self.stderr = b""
        self._lock = threading.Lock()
        self._port_seen = threading.Event()
        self.port = 0
        self.host = ""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._port_seen.wait(60):
            self.stop(signal.SIGKILL)
            raise AssertionError(f"the server never announced its port: {self.stderr!r}")

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self.stderr += line
            match = _PORT_RE.search(line)
            if match and not self._port_seen.is_set():
                self.host = match.group(1).decode()
                self.port = int(match.group(2))
                self._port_seen.set()
        self._port_seen.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, timeout: float = 60.0) -> GdbClient:
        return GdbClient(self.port, timeout=timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        """End the server by pid with sig; return its exit status."""
        status = end_process(self.proc, sig, timeout)
        self._reader.join(timeout=10)
        return status

    def output(self) -> str:
        with self._lock:
            return self.stderr.decode(errors="replace")


@contextmanager
def replay_server(trace: Path, *extra: str) -> Iterator[ReplayServer]:
    """A running server for the duration of the block; ended (SIGINT) by pid afterwards."""
    server = ReplayServer(trace, *extra)
    try:
        yield server
    finally:
        server.stop(signal.SIGINT)
