"""Build hook: setup.cfg holds the metadata; cffi_modules can only be passed here."""

from setuptools import setup

setup(cffi_modules=["rrgdb/native/_build.py:ffibuilder"])
