"""TraceWriter: creates a trace directory and appends frames and file copies to it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import zstandard

from . import _layout as L
from ._codec import encode_complete, encode_header, encode_index_entry, pack_block
from ._file_cache import FileCache, default_cache_dir, stat_key
from ._frame_codec import encode_frame
from ._frames import Frame, TraceHeader

_COPY_CHUNK = 1 << 20
_ZSTD_LEVEL = 1  # level 3 costs twice the time for ~8% smaller blocks


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write path so that a reader sees either no file or all of data."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_path(path.parent)


class TraceWriter:
    """Writes a trace directory; crash-safe: what was flushed stays readable if the process dies.

    Frames are buffered into blocks of up to BLOCK_MAX_FRAMES frames or BLOCK_MAX_BYTES raw
    bytes; each block reaches the events file in whole os.write calls. The trace reads as
    incomplete until close() puts the completion marker in place. Used as a context manager,
    leaving on an exception flushes but leaves the trace incomplete.
    """

    def __init__(
        self, directory: Path | str, header: TraceHeader, file_cache: Path | None = None
    ) -> None:
        """file_cache: the FileCache directory (default: _file_cache.default_cache_dir())."""
        header_bytes = encode_header(header)
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True)
        except FileExistsError:
            if not self.directory.is_dir() or any(self.directory.iterdir()):
                raise FileExistsError(
                    f"{self.directory}: exists and is not an empty directory"
                ) from None
        self._files_dir = self.directory / L.FILES_DIR
        self._files_dir.mkdir()
        # The header goes last: a directory with a header always has the other files.
        self._events_fd = _open_append(self.directory / L.EVENTS_FILE)
        self._index_fd = _open_append(self._files_dir / L.FILES_INDEX)
        self._names_fd = _open_append(self._files_dir / L.FILES_NAMES)
        self._names: set[tuple[str, str]] = set()
        _write_atomically(self.directory / L.HEADER_FILE, header_bytes)
        self._compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self._block: list[bytes] = []  # encoded frames not yet flushed
        self._block_size = 0
        self._frames_written = 0
        self._events_size = 0
        self._stored: set[str] = set()  # file ids in files/ (and in files/index)
        self._by_stat: dict[tuple[int, int, int, int], str] = {}
        cache_dir = file_cache or default_cache_dir()
        self._cache = FileCache(cache_dir) if cache_dir is not None else None
        self._closed = False

    @property
    def frames_written(self) -> int:
        """How many frames write() has accepted (flushed or not)."""
        return self._frames_written

    def write(self, frame: Frame) -> None:
        """Append frame; it reaches the disk with its block (see flush)."""
        self._check_open()
        data = encode_frame(frame)
        self._block.append(data)
        self._block_size += len(data)
        self._frames_written += 1
        if len(self._block) >= L.BLOCK_MAX_FRAMES or self._block_size >= L.BLOCK_MAX_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the frames buffered so far to the events file as one block."""
        self._check_open()
        if not self._block:
            return
        count = len(self._block)
        raw = b"".join(self._block)
        block = pack_block(raw, self._frames_written - count, count, self._compressor)
        try:
            _write_all(self._events_fd, block)
        except BaseException:
            # Never leave a torn block in front of the blocks that come after it.
            os.ftruncate(self._events_fd, self._events_size)
            raise
        self._events_size += len(block)
        self._block.clear()
        self._block_size = 0

    def add_file(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy the file at path into the trace (once per content) and return its file_id.

        The file_id is the sha256 of the content; the copy is read-only and keeps the
        executable bit (replay execve()s it). A file whose (device, inode, size, mtime) was
        seen before is not read again; one that an earlier recording copied in the same
        state is hard-linked from the file cache. `name` is the path the program knew the
        file by (a debugger asks for files by those names); it is remembered in files/names.
        """
        self._check_open()
        with open(path, "rb") as src:
            st = os.fstat(src.fileno())
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            file_id = self._by_stat.get(key)
            if file_id is None:
                file_id = self._link_cached(st)
                if file_id is None:
                    file_id = self._copy(src, st)
                    unchanged = stat_key(os.fstat(src.fileno())) == stat_key(st)
                    if self._cache is not None and unchanged:
                        self._cache.add(st, file_id, self._files_dir / file_id)
                self._by_stat[key] = file_id
        if name is not None and (file_id, name) not in self._names:
            self._names.add((file_id, name))
            line = f"{file_id} {os.fsencode(name).hex()}\n".encode()
            _write_all(self._names_fd, line)
        return file_id

    def _link_cached(self, st: os.stat_result) -> str | None:
        """The file_id of the file whose stat is st if the file cache has it (its copy is
        then in the trace), else None."""
        if self._cache is None:
            return None
        file_id = self._cache.lookup(st)
        if file_id is None:
            return None
        if file_id not in self._stored:
            if not self._cache.link(file_id, st, self._files_dir / file_id):
                return None
            self._stored_now(file_id, st.st_size)
        return file_id

    def _copy(self, src: BinaryIO, st: os.stat_result) -> str:
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=self._files_dir)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
                os.fchmod(dst.fileno(), 0o555 if st.st_mode & 0o111 else 0o444)
                dst.flush()
                os.fsync(dst.fileno())  # durable before the file cache can link it elsewhere
            file_id = digest.hexdigest()
            if file_id in self._stored:
                os.unlink(tmp)
            else:
                os.replace(tmp, self._files_dir / file_id)
                self._stored_now(file_id, size)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return file_id

    def _stored_now(self, file_id: str, size: int) -> None:
        _write_all(self._index_fd, encode_index_entry(file_id, size))
        self._stored.add(file_id)

    def close(self) -> None:
        """Flush, make everything durable, then mark the trace complete (atomically)."""
        if self._closed:
            return
        self.flush()
        os.fsync(self._events_fd)
        os.fsync(self._index_fd)
        os.fsync(self._names_fd)
        _fsync_path(self._files_dir)  # the files' names (their contents were synced when copied)
        _write_atomically(
            self.directory / L.COMPLETE_FILE,
            encode_complete(self._frames_written, self._events_size),
        )
        self._release()
        if self._cache is not None:
            self._cache.prune()

    def _release(self) -> None:
        self._closed = True
        os.close(self._events_fd)
        os.close(self._index_fd)
        os.close(self._names_fd)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.directory}: trace writer is closed")

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            try:
                self.flush()
            finally:
                self._release()
