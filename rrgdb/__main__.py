"""`python -m rrgdb` runs the command-line interface."""

from rrgdb.cli import main

raise SystemExit(main())
