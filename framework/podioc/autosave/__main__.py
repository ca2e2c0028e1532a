"""``python -m podioc.autosave check FILE... | reseal FILE``: inspect autosave files."""

import sys

from .fileformat import main

sys.exit(main(sys.argv[1:]))
