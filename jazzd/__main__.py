"""`python -m jazzd` runs the command line."""

import sys

from jazzd.cli import main

sys.exit(main())
