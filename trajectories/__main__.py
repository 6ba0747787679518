"""``python -m trajectories run|bench|figure ...``: the entry point of the command line, which lives in ``cli/``.

This file belongs to the CLI, not to the engine: nothing in ``trajectories/`` imports it, and it is the one
module here allowed to import ``cli`` (``tests/test_layout.py`` holds that rule).
"""
import sys

from cli.main import entry

if __name__ == "__main__":
    sys.exit(entry())
