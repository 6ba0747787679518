"""Build ``figures/reference_data/published_paths.npz``: the published SAM-GS toy runs that Explore draws as ghosts.

Source: the reference files in ``../shared/reference/`` (their README says what they are):

* ``samgs_toy_reference.npz`` (source ``paper``): the SAM-GS authors' own toy code run from the paper's start
  points (float32, Adam lr 1e-3, torch 2.13);
* ``grid_reference.npz`` (source ``grid``): 25 more starts per landscape (θ1, θ2 ∈ {-8, -4, 0, 4, 8}) from an
  independent re-implementation of the authors' toy pipeline that reproduces every golden run of these methods
  bit for bit; CAGrad and Nash-MTL there use exact K = 2 weights.

Kept: every deterministic method (RLW and GradDrop draw random numbers, so their published path is one draw of
another random stream, not a path to compare with), every 100th step as float32 (the map draws at most 400 points
a path; 20 000 steps -> 201 points), the start, the robust / sensitive label and the allowed outcomes. Each entry
records the engine method key and the full hyperparameters the engine resolves for it (CAGrad c = 0.5; Nash-MTL
on the grid without the published solver's stop test), so a view's run is matched on what produced the path.

    .venv/bin/python scripts/build_published_paths.py [REFERENCE_DIR]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trajectories  # noqa: E402
from figures import published  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference"
FILES = (("paper", "samgs_toy_reference.npz"), ("grid", "grid_reference.npz"))
RANDOM = {"rlw", "graddrop"}
RECORD_EVERY = 50            # the reference files record every 50th step
STRIDE = 100                 # what is kept


def engine_method(source: str, ref_key: str) -> tuple[str, dict]:
    """The reference file's method key -> (engine key, hyperparameters given explicitly)."""
    if ref_key == "cagrad_c05":
        return "cagrad", {"c": 0.5}
    if ref_key == "nashmtl" and source == "grid":
        return "nashmtl", {"stop_test": 0}
    return ref_key, {}


def build(reference: Path, out: Path) -> dict:
    index, arrays = [], {}
    for source, name in FILES:
        with np.load(reference / name) as z:
            pairs = sorted({tuple(k.split("/")[:2]) for k in z.files})
            for land_key, ref_key in pairs:
                if ref_key in RANDOM:
                    continue
                pre = f"{land_key}/{ref_key}/"
                starts = z[pre + "starts"]
                pos = z[pre + "positions"]
                steps = (pos.shape[1] - 1) * RECORD_EVERY
                method, given = engine_method(source, ref_key)
                cfg = trajectories.Config.make(land_key, [method], starts, steps,
                                               hparams={method: given} if given else None)
                hp = dict(cfg.variants()[0].hparams)
                key = f"p{len(index)}"
                arrays[key] = np.ascontiguousarray(pos[:, ::STRIDE // RECORD_EVERY].astype(np.float32))
                index.append(dict(array=key, source=source, landscape=land_key, method=method, reference_key=ref_key,
                                  hparams=hp, steps=int(steps), stride=STRIDE, starts=starts.tolist(),
                                  robust=[bool(r) for r in z[pre + "robust"]],
                                  outcomes=[str(o) for o in z[pre + "outcomes"]], **published.RUN_SETTINGS))
    meta = dict(format=published.FORMAT, entries=index, sources=published.SOURCES)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, index=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return meta


if __name__ == "__main__":
    ref = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    meta = build(ref, published.DATA)
    runs = sum(len(e["starts"]) for e in meta["entries"])
    print(f"{published.DATA.relative_to(ROOT)}: {len(meta['entries'])} method entries, {runs} runs, "
          f"{published.DATA.stat().st_size / 1024:.0f} KiB")
