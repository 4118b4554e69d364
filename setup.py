"""Build hook: setup.cfg holds the metadata; cffi_modules can only be passed here, and the
preload library (stubs/preload.c) is built beside the cffi extension."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

PRELOAD = "librrgdb_preload.so"


class BuildExtWithPreload(build_ext):
    """Also builds the syscall-buffer library that recorded programs preload."""

    def run(self) -> None:
        super().run()
        outputs = [Path("rrgdb/native") / PRELOAD]
        if not self.inplace:
            outputs.append(Path(self.build_lib) / "rrgdb" / "native" / PRELOAD)
        for output in outputs:
            output.parent.mkdir(parents=True, exist_ok=True)
            subprocess.check_call(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(output),
                                   "stubs/preload.c"])


setup(cffi_modules=["rrgdb/native/_build.py:ffibuilder"],
      cmdclass={"build_ext": BuildExtWithPreload})
