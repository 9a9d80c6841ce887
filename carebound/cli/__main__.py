"""``python -m carebound.cli``: the same as the ``carebound`` command."""

from carebound.cli import main

if __name__ == "__main__":
    main()
