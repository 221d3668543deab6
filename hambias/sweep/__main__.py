"""``python -m hambias.sweep CONFIG --out PATH``: the same as ``hambias sweep``."""

import sys

from ..cli import sweep_main

sys.exit(sweep_main(command=True))
