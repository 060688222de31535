"""The ``infra`` console command: process settings first, then the command line (infra.cli).

Planning imports the provider SDKs (hundreds of thousands of long-lived objects: classes,
enums, type hints) and registers every resource, and the cyclic garbage collector would walk
all of them again on each of its passes: a quarter of the CPU time of ``infra plan``. The
process ends when the command does and the plan leaves little cyclic garbage, so the
collector is off while the modules load and the program runs; commands that keep running
(``infra dev``) turn it back on, see ``infra.cli.main``.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    """Entry point of the ``infra`` console command."""
    gc.disable()
    from infra.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
