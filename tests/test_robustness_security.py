"""What the gdb server exposes, and to whom.

* It listens on 127.0.0.1 only, unless --host says otherwise (checked in /proc/net/tcp
  and tcp6, and by connecting through other local addresses).
* vFile serves only files that belong to the trace, and their recorded bytes: never
  /etc/passwd or any other host file, never the trace's own bookkeeping files.
* No shell is ever run: no shell=True, os.system, os.popen, spawn*p or /bin/sh anywhere
  in rrgdb's Python or C sources.
"""

from __future__ import annotations

import ast
import re
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, describe, record
from test_robustness_support import (
    GdbClient,
    compile_c,
    live_descendants,
    replay_server,
    wait_until,
)

GDB_ENOENT, GDB_EACCES = 2, 13


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(trace, program) of a short run."""
    out = tmp_path_factory.mktemp("robust-security")
    program = compile_c("many_syscalls", out)
    trace = out / "trace"
    result = record([str(program), "50"], trace)
    assert result.returncode == 0, describe(result)
    return trace, program


def listeners(port: int) -> list[tuple[str, str]]:
    """(file, local address hex) of every LISTEN socket on port in /proc/net/tcp{,6}."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                found.append((name, address))
    return found


def other_local_addresses() -> list[str]:
    """IPv4 addresses of this host other than 127.0.0.1 (127.0.0.2 always works: all
    of 127/8 is local), for connection attempts that must be refused."""
    addresses = {"127.0.0.2"}
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                             text=True, timeout=10).stdout
        addresses.update(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out))
    except (OSError, subprocess.TimeoutExpired):
        pass
    addresses.discard("127.0.0.1")
    return sorted(addresses)


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except OSError:
        return True


def test_the_server_listens_on_loopback_only_by_default(recorded: tuple[Path, Path]) -> None:
    trace, _ = recorded
    with replay_server(trace) as server:
        assert server.host == "127.0.0.1", server.output()
        assert listeners(server.port) == [("tcp", "0100007F")], listeners(server.port)
        for host in other_local_addresses():
            assert refused(host, server.port), f"reachable through {host}"
        with server.client() as client:  # and it does serve 127.0.0.1
            client.handshake()


def test_host_chooses_the_address(recorded: tuple[Path, Path]) -> None:
    trace, _ = recorded
    with replay_server(trace, "--host", "127.0.0.2") as server:
        assert listeners(server.port) == [("tcp", "0200007F")], listeners(server.port)
        assert refused("127.0.0.1", server.port)
        with GdbClient(server.port, host="127.0.0.2") as client:
            client.handshake()


def hex_path(path: str | Path) -> bytes:
    return str(path).encode().hex().encode()


def open_reply(client: GdbClient, path: str | Path, flags: int = 0) -> bytes:
    return client.request(b"vFile:open:" + hex_path(path) + b",%x,0" % flags)


def read_all(client: GdbClient, fd: int) -> bytes:
    data = b""
    while True:
        reply = client.request(b"vFile:pread:%x,%x,%x" % (fd, 4096, len(data)))
        assert reply.startswith(b"F"), reply
        count_text, _, payload = reply[1:].partition(b";")
        count = int(count_text, 16)
        if count == 0:
            return data
        unescaped = re.sub(rb"}(.)", lambda m: bytes([m.group(1)[0] ^ 0x20]), payload,
                           flags=re.DOTALL)
        assert len(unescaped) == count
        data += unescaped


def test_vfile_serves_only_the_files_of_the_trace(recorded: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    trace, program = recorded
    link = tmp_path / "passwd-link"
    link.symlink_to("/etc/passwd")
    host_files = [
        "/etc/passwd", "/etc/shadow", "/proc/self/environ", "/proc/self/cmdline",
        "/root/.bash_history", str(link), str(trace / "header"), str(trace / "events"),
        str(trace / "files" / "index"), "header", "../header", "files/index",
        str(REPO_ROOT / "pyproject.toml"), "", "/", ".",
    ]
    host_files += [str(path) for path in (trace / "files").iterdir()]  # copies by their id
    with replay_server(trace) as server:
        with server.client() as client:
            client.handshake()
            for path in host_files:
                reply = open_reply(client, path)
                assert reply.startswith(b"F-1,"), (path, reply)
            # writing, even to a file of the trace, is refused
            assert open_reply(client, program, flags=1) == b"F-1,%x" % GDB_EACCES
            assert open_reply(client, program, flags=0x202) == b"F-1,%x" % GDB_EACCES
            # unknown descriptors
            assert client.request(b"vFile:pread:63,10,0").startswith(b"F-1,")
            assert client.request(b"vFile:fstat:63").startswith(b"F-1,")
            assert client.request(b"vFile:close:63").startswith(b"F-1,")
            # the program itself is served, from the trace
            reply = open_reply(client, program)
            assert reply.startswith(b"F") and not reply.startswith(b"F-"), reply
            fd = int(reply[1:], 16)
            assert read_all(client, fd) == program.read_bytes()
            assert client.request(b"vFile:close:%x" % fd) == b"F0"
            client.send(b"D")
            assert client.reply() == b"OK"
        wait_until(lambda: not live_descendants(server.pid), 10, "the tracee to go")


def test_vfile_serves_the_recorded_bytes_not_the_current_file(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Replace the program on the host after recording: gdb still gets the recorded copy."""
    _, program = recorded
    copy = tmp_path / "program"
    copy.write_bytes(program.read_bytes())
    copy.chmod(0o755)
    trace = tmp_path / "trace"
    assert record([str(copy), "5"], trace).returncode == 0
    original = copy.read_bytes()
    copy.write_bytes(b"#!/bin/sh\necho replaced\n")
    with replay_server(trace) as server:
        with server.client() as client:
            client.handshake()
            reply = open_reply(client, copy)
            fd = int(reply[1:], 16)
            assert read_all(client, fd) == original


# ------------------------------------------------------------------ no shell


def python_sources() -> list[Path]:
    return sorted((REPO_ROOT / "rrgdb").rglob("*.py"))


SHELL_CALLS = {
    ("os", "system"), ("os", "popen"), ("os", "spawnlp"), ("os", "spawnlpe"),
    ("os", "spawnvp"), ("os", "spawnvpe"), ("os", "execlp"), ("os", "execlpe"),
    ("os", "execvp"), ("os", "execvpe"), ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"), ("pty", "spawn"), ("commands", "getoutput"),
}
SHELL_NAMES = {"sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "-c"}


def shell_uses(source: Path) -> list[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    found = []
    for node in ast.walk(tree):
        where = f"{source.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{where}: shell={ast.unparse(keyword.value)}")
            func = node.func
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and (func.value.id, func.attr) in SHELL_CALLS):
                found.append(f"{where}: {func.value.id}.{func.attr}")
            if isinstance(func, ast.Name) and func.id in {"system", "popen", "getoutput"}:
                found.append(f"{where}: {func.id}()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
            node.value in SHELL_NAMES
        ):
            found.append(f"{where}: the string {node.value!r}")
    return found


def test_no_shell_is_ever_invoked() -> None:
    sources = python_sources()
    assert len(sources) > 20, "rrgdb's sources were not found"
    found = [use for source in sources for use in shell_uses(source)]
    c_sources = [p for p in (REPO_ROOT / "rrgdb").rglob("*") if p.suffix in (".c", ".h")]
    c_sources += [p for p in (REPO_ROOT / "rrgdb").rglob("*.py") if "cdef" in p.read_text()]
    for source in c_sources:
        text = source.read_text(errors="replace")
        for pattern in (r"\bsystem\s*\(", r"\bpopen\s*\(", r"/bin/sh", r"\bexecl?p\s*\("):
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{source.relative_to(REPO_ROOT)}:{line}: {match.group(0)}")
    assert not found, "shell use in rrgdb:\n" + "\n".join(found)


def test_the_shell_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself catches each form (so a passing check means something)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, subprocess\n"
        "subprocess.run(cmd, shell=True)\n"
        "os.system(cmd)\n"
        "os.popen(cmd)\n"
        "subprocess.run(['/bin/sh', '-c', cmd])\n"
        "subprocess.run(cmd, shell=False)\n"
    )
    original = REPO_ROOT
    try:
        globals()["REPO_ROOT"] = tmp_path
        found = shell_uses(sample)
    finally:
        globals()["REPO_ROOT"] = original
    assert len(found) == 5, found
