"""``python -m trajectories bench --jobs-speed``: the job system measured (placeholder, filled in below)."""


def main(argv=None) -> int:
    return 0
