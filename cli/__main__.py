"""``python -m cli ...``: the same command line as ``python -m trajectories ...``."""
import sys

from cli.main import entry

if __name__ == "__main__":
    sys.exit(entry())
