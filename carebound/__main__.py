"""``python -m carebound``: the same as the ``carebound`` command (and ``python -m
carebound.cli``)."""

from carebound.cli import main

if __name__ == "__main__":
    main()
