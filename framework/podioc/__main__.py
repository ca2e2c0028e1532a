"""``python -m podioc``: the same as the ``podioc`` command."""

from podioc.cli import main

if __name__ == "__main__":
    main()
