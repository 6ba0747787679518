"""SAM-GS (optimizers/methods/samgs.py): methods-spec.md §5.14 and its §9 test vectors.

Expected values come from the §9 table (the native g_SAM at t = 1 with gamma 0.1, beta1 0.9, beta2 0.99, and
the reference pipeline's clip1(K g_SAM)), from the arithmetic of §5.14 (the strict branch test, the zero-gradient
edge cases) and from an independent float64 numpy re-implementation of §5.14 written here (many steps, K = 2
and 3, per-run hyperparameters, both pipelines), never from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optimizers
from optimizers.base import Context, Post

from vectors import TV

# §9: (branch: 1 = equalisation, native g_SAM, reference-pipeline clip1(K g_SAM))
SPEC = {
    "T1": (0, (1000.0, 1000.0), (0.707107, 0.707107)),
    "T2": (0, (52.447827, 17.482609), (0.948683, 0.316228)),
    "T3": (1, (4.08, 2.04), (0.894427, 0.447214)),
    "T4": (0, (-15.0, -60.0), (-0.242536, -0.970142)),
    "T5": (0, (2000.0, 8000.0), (0.242536, 0.970143)),
}
DEFAULTS = {"gamma": 0.1, "beta1": 0.9, "beta2": 0.99}


def steps(G_seq, pipeline, hp=None, dtype=torch.float64):
    """Run SAM-GS over ``G_seq[n, B, K, D]``; returns per step (d, branch, similarity) and the final state."""
    m = optimizers.get("samgs")
    G_seq = torch.as_tensor(np.asarray(G_seq), dtype=dtype)
    _, B, K, D = G_seq.shape
    values = {**DEFAULTS, **(hp or {})}
    hps = {k: torch.as_tensor(np.broadcast_to(v, (B,)).copy(), dtype=dtype) for k, v in values.items()}
    state = m.init(B, K, D, hps, dtype=dtype, device="cpu")
    out = []
    for t, G in enumerate(G_seq, start=1):
        ctx = Context(pipeline, torch.full((B,), float(t), dtype=dtype), torch.arange(B), torch.zeros(B, K, dtype=dtype))
        d, state, aux = m.step(G, torch.ones(B, K, dtype=dtype), state, hps, ctx)
        out.append((d, aux["branch"], aux["similarity"]))
    return out, state


def clip1_by_hand(d):
    """torch's clip_grad_norm_(max_norm=1) on one tensor: d * min(1, 1 / (|d| + 1e-6)) (methods-spec.md §1.1)."""
    d = np.asarray(d, dtype=np.float64)
    return d * min(1.0, 1.0 / (np.linalg.norm(d) + 1e-6))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("name", list(SPEC))
def test_the_spec_vectors_give_the_published_first_step_in_both_pipelines(name, dtype):
    branch, native, written = SPEC[name]
    tol = dict(rtol=2e-5, atol=1e-6)             # §9 prints 6 significant digits (T4's -15 is -14.99981...)
    for pipeline in optimizers.PIPELINES:        # no zero gradient here, so the pipelines agree on g_SAM
        [(d, b, _)], _ = steps([[TV[name]]], pipeline, dtype=dtype)
        assert int(b[0]) == branch
        np.testing.assert_allclose(d[0].double().numpy(), native, **tol)
    post = optimizers.get("samgs").post("reference")
    assert post == Post(times_k=True, clip=True) and optimizers.get("samgs").post("clean") == Post()
    np.testing.assert_allclose(clip1_by_hand(2 * np.array(native)), written, atol=2e-6)


def test_the_magnitude_threshold_for_two_tasks_is_where_the_ratio_passes_5_percent():
    """§5.14: GMS < gamma iff r = n_min / n_max < (1 - sqrt(1 - gamma^2)) / gamma; r < 0.0501 for gamma 0.1."""
    r_star = (1 - math.sqrt(1 - 0.1 ** 2)) / 0.1
    G = [[[[[1.0, 0.0], [0.0, r]]]] for r in (r_star * 0.999, r_star * 1.001)]
    (below, _), (above, _) = [steps(g, "clean")[0][0][1:] for g in G]
    assert int(below[0]) == 1 and int(above[0]) == 0


def test_the_branch_test_is_strict():
    """Norms 1 and 2 give GMS = 4/5 exactly: gamma = 0.8 keeps the momentum branch, a hair above equalises."""
    G = [[[[1.0, 0.0], [0.0, 2.0]]]]
    [(_, at, s)], _ = steps(G, "clean", {"gamma": 0.8})
    assert float(s[0]) == 0.8 and int(at[0]) == 0
    [(_, above, _)], _ = steps(G, "clean", {"gamma": float(np.nextafter(0.8, 1.0))})
    assert int(above[0]) == 1


def test_a_zero_gradient_is_nan_in_the_reference_pipeline_and_masked_out_in_clean():
    G = [[[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]]
    [(ref, _, _)], _ = steps(G, "reference")
    assert torch.isnan(ref).all()                             # 0/0 in the equalisation branch, as published
    [(clean, branch, sim)], _ = steps(G, "clean")
    # one zero task: S = 0 < gamma, equalisation with u_1 = 0 and nbar = (0 + 5) / 2
    np.testing.assert_allclose(clean[0].numpy(), 2.5 * np.array([0.6, 0.8]), rtol=1e-12)
    assert int(branch[0]) == 1
    # both zero: S = 1 (equal norms), momentum branch with m = 0, so d = 0
    assert float(sim[1]) == 1.0 and int(branch[1]) == 0 and torch.equal(clean[1], torch.zeros(2, dtype=clean.dtype))


def np_samgs(G_seq, gamma, b1, b2, clean):
    """§5.14 for one run, re-typed in float64 numpy: d, branch, sbar per step and the final (m, v)."""
    n_steps, K, D = G_seq.shape
    m, v, out = np.zeros((K, D)), 0.0, []
    for t in range(1, n_steps + 1):
        G = G_seq[t - 1]
        n = np.linalg.norm(G, axis=1)
        pairs = []
        for i in range(K):
            for j in range(i + 1, K):
                den = n[i] ** 2 + n[j] ** 2
                pairs.append(1.0 if (clean and den == 0) else 2 * n[i] * n[j] / den)
        sbar = float(np.mean(pairs))
        m = b1 * m + (1 - b1) * G
        v = b2 * v + (1 - b2) * (1 - sbar) ** 2 + 1e-8
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        if sbar < gamma:
            u = np.array([G[k] / n[k] if n[k] > 0 or not clean else np.zeros(D) for k in range(K)])
            d = n.mean() * u.sum(0)
        else:
            d = (G * np.abs(mhat)).sum(0) / math.sqrt(vhat)
        out.append((d, float(sbar < gamma), sbar))
    return out, m, v


@pytest.mark.parametrize("pipeline", optimizers.PIPELINES)
@pytest.mark.parametrize("K", (2, 3))
def test_a_numpy_reimplementation_agrees_over_forty_steps_with_per_run_settings(K, pipeline):
    rs = np.random.default_rng(40 + K)
    n, B = 40, 6
    G_seq = rs.normal(size=(n, B, K, 2))
    G_seq[::3, :, 0] *= 60.0                      # every third step one task dominates: the equalisation branch
    gamma = np.array([0.1, 0.3, 0.7, 0.9, 0.05, 0.5])
    b1 = np.array([0.9, 0.5, 0.99, 0.0, 0.8, 0.9])
    b2 = np.array([0.99, 0.9, 0.999, 0.5, 0.0, 0.99])
    got, state = steps(G_seq, pipeline, {"gamma": gamma, "beta1": b1, "beta2": b2})
    branches = 0
    for b in range(B):
        want, m, v = np_samgs(G_seq[:, b], gamma[b], b1[b], b2[b], pipeline == "clean")
        for t, ((d, br, s), (wd, wbr, ws)) in enumerate(zip(got, want)):
            np.testing.assert_allclose(d[b].numpy(), wd, rtol=1e-9, atol=1e-12, err_msg=f"run {b}, step {t + 1}")
            assert float(br[b]) == wbr and float(s[b]) == pytest.approx(ws, rel=1e-12)
            branches += int(wbr)
        np.testing.assert_allclose(state["m"][b].numpy(), m, rtol=1e-12)      # updated in both branches
        np.testing.assert_allclose(float(state["v"][b]), v, rtol=1e-12)
    assert 0 < branches < n * B                    # both branches ran
