"""`python -m plugins.backup [--inventory PATH] [--hosts a,b] [--job]`: back up every host now (make backup);
`python -m plugins.backup restore --host NAME [--from VOLID]`: restore one (make restore)."""

from __future__ import annotations

import sys

from plugins.backup.cli import main

if __name__ == "__main__":
    sys.exit(main())
