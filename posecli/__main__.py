"""``python -m posecli``: the command line, as the ``posecli`` script."""
from posecli.cli import main

if __name__ == "__main__":
    main()
