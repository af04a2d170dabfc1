"""`python -m valerie.cli`, the same as the `valerie-sessions` console script."""

from . import main

if __name__ == "__main__":
    main()
