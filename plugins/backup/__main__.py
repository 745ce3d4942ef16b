"""`python -m plugins.backup [--inventory PATH] [--hosts a,b] [--job]`: back up every host now (make backup);
`python -m plugins.backup restore --host NAME [--from VOLID]`: restore one (make restore);
`python -m plugins.backup restore-db --host NAME --database NAME`: one database from the off-site copy."""

from __future__ import annotations

import sys

from plugins.backup.cli import main

if __name__ == "__main__":
    sys.exit(main())
