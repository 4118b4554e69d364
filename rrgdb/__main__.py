"""`python -m rrgdb` runs the command-line interface."""

from rrgdb.cli import entry

entry()
