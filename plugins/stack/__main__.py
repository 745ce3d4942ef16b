"""`python -m plugins.stack`: see cli.py."""

import sys

from plugins.stack.cli import main

sys.exit(main(sys.argv[1:]))
