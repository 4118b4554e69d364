"""FileCache: the copies of mapped files kept between recordings, so that recording a
program again hard-links its executable and libraries into the new trace instead of
reading, hashing, copying and syncing them again.

Layout of the cache directory (by default ~/.cache/rrgdb/files):

    objects/<file_id>   a copy of a file, hard-linked into every trace that holds it
    keys/<stat key>     a symbolic link whose target is the file_id of the file that had
                        this (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)

The key includes st_ctime_ns, which no program can set: any write, truncation, chmod or
utime of the original file changes it, so a changed file is never served from the cache.
Every operation may fail (another filesystem, no home directory, a concurrent recorder
pruning): the caller then copies the file as if there were no cache.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from pathlib import Path

from ._codec import FILE_ID

# An object no trace links to any more is deleted when it has not been linked or unlinked
# for this long (seconds); pruning runs when a recording adds objects. A day keeps the
# copies of a program rebuilt all day long from piling up.
PRUNE_AGE = 24 * 3600


def default_cache_dir() -> Path | None:
    """$RRGDB_CACHE_DIR, else $XDG_CACHE_HOME/rrgdb/files, else ~/.cache/rrgdb/files
    (created when first needed, as XDG asks); None (no cache) when there is no home
    directory to put it in."""
    env = os.environ.get("RRGDB_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "rrgdb" / "files"
    home = os.path.expanduser("~")
    return Path(home) / ".cache" / "rrgdb" / "files" if os.path.isdir(home) else None


def stat_key(st: os.stat_result) -> str:
    """The name under keys/ of a file in this state."""
    return (f"{st.st_dev:x}-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"
            f"-{st.st_ctime_ns:x}")


class FileCache:
    """Content-addressed copies of files shared by the traces of one filesystem."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._objects = directory / "objects"
        self._keys = directory / "keys"
        self._usable = True
        self._added = False

    def lookup(self, st: os.stat_result) -> str | None:
        """The file_id of the file whose stat is st, if it was cached in that state."""
        if not self._usable:
            return None
        try:
            file_id = os.readlink(self._keys / stat_key(st))
        except OSError as e:
            self._give_up_on(e)
            return None
        return file_id if FILE_ID.fullmatch(file_id) else None

    def link(self, file_id: str, st: os.stat_result, target: Path) -> bool:
        """Hard-links the cached copy of file_id to target, if it fits the file whose stat
        is st (its size, and an executable bit if the file has one)."""
        try:
            os.link(self._objects / file_id, target)
        except OSError as e:
            self._give_up_on(e)
            return False
        copy = target.stat()
        if copy.st_size == st.st_size and (copy.st_mode & 0o111 or not st.st_mode & 0o111):
            return True
        target.unlink()
        if copy.st_size != st.st_size:  # a damaged cache entry
            self.forget(file_id)
        return False

    def add(self, st: os.stat_result, file_id: str, copy: Path) -> None:
        """Keep copy (a trace's copy of the file whose stat is st) for later recordings."""
        if not self._usable:
            return
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._keys.mkdir(exist_ok=True)
            with suppress(FileExistsError):
                os.link(copy, self._objects / file_id)
                self._added = True
            with suppress(FileExistsError):
                os.symlink(file_id, self._keys / stat_key(st))
        except OSError as e:
            self._give_up_on(e)

    def forget(self, file_id: str) -> None:
        """Drop the cached copy of file_id (its keys go at the next prune)."""
        with suppress(OSError):
            os.unlink(self._objects / file_id)

    def prune(self) -> None:
        """After a recording that added objects: delete the objects that no trace has
        linked or unlinked for PRUNE_AGE, then the keys that lead nowhere."""
        if not self._added:
            return
        now = time.time()
        try:
            with os.scandir(self._objects) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if st.st_nlink == 1 and now - st.st_ctime > PRUNE_AGE:
                        self.forget(entry.name)
            with os.scandir(self._keys) as entries:
                for entry in entries:
                    if not (self._objects / os.readlink(entry.path)).exists():
                        with suppress(OSError):
                            os.unlink(entry.path)
        except OSError:
            pass

    def _give_up_on(self, error: OSError) -> None:
        """A missing key is a miss; any other failure (another filesystem, no permission)
        would recur, so the cache is not tried again by this writer."""
        if not isinstance(error, FileNotFoundError):
            self._usable = False
