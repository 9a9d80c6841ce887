"""``python -m carebound.web``: serve the inbox, set reviewer passwords, manage API tokens."""

from carebound.web._cli import main

if __name__ == "__main__":
    main()
