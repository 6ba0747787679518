"""How often Nash-MTL's sensitive grid runs end where the reference allows, over perturbed starts.

Not a test (it takes a few minutes): the measurement behind the README's "Fidelity" paragraph on Nash-MTL.
Each of the 25 grid starts of ``../shared/reference/grid_reference.npz`` (``two_optima``) is run as given and
from 16 starts moved by 1e-4 in random directions (as the reference's own robustness check does), 21 000 steps,
float32, reference pipeline; prints per start the outcome regions reached and the share in an allowed region.

    .venv/bin/python tests/ridge_study.py --stop-test 0      # how the grid was made (exact weights)
    .venv/bin/python tests/ridge_study.py --stop-test 1      # the published solver's stop test
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import landscapes  # noqa: E402
import trajectories  # noqa: E402
from test_fidelity import REF_DIR, region  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stop-test", type=int, choices=(0, 1), default=0)
    ap.add_argument("--landscape", default="two_optima", choices=("one_optimum", "two_optima"))
    ap.add_argument("--copies", type=int, default=16, help="perturbed starts per grid start")
    a = ap.parse_args(argv)
    z = np.load(REF_DIR / "grid_reference.npz")
    pre = f"{a.landscape}/nashmtl/"
    starts, allowed = z[pre + "starts"], [set(str(o).split(",")) for o in z[pre + "outcomes"]]
    steps = (z[pre + "positions"].shape[1] - 1) * 50
    rng = np.random.default_rng(0)
    runs, owner = [], []
    for i, s in enumerate(starts):
        v = rng.normal(size=(a.copies, 2))
        runs += [s] + list(s + 1e-4 * v / np.linalg.norm(v, axis=1, keepdims=True))
        owner += [i] * (a.copies + 1)
    res = trajectories.simulate(a.landscape, ["nashmtl"], np.array(runs, dtype=np.float32), steps,
                                hparams={"nashmtl": {"stop_test": a.stop_test}}, record=("positions",),
                                dtype="float32")
    got = region(landscapes.get(a.landscape), res.final[0], res.diverged_step[0] >= 0)
    owner = np.array(owner)
    total = 0
    for i, s in enumerate(starts):
        mine = [got[j] for j in np.nonzero(owner == i)[0]]
        ok = sum(r in allowed[i] for r in mine)
        total += ok
        print(f"start {tuple(float(v) for v in s)}: allowed {sorted(allowed[i])}, as given {mine[0]}, "
              f"{ok}/{len(mine)} allowed, {dict(Counter(mine))}")
    print(f"total {total}/{len(runs)} runs end in an allowed region (stop_test = {a.stop_test})")


if __name__ == "__main__":
    main()
