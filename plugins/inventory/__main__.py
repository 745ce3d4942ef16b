"""`python -m plugins.inventory …`: see plugins/inventory/cli.py."""

import sys

from plugins.inventory.cli import main

sys.exit(main(sys.argv[1:]))
