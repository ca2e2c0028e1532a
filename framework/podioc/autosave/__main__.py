"""``python -m podioc.autosave check FILE... | reseal FILE``: inspect autosave files."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
