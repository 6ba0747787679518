"""Tests of optimizers/linalg.py and the Gram-matrix methods: IMTL-G, Aligned-MTL, UPGrad, DualProj.

Expected values come from methods-spec.md §9 (T1-T5), from the math, or from float64 numpy references
written here independently of the code under test (numpy.linalg, a primal brute-force projection onto
the dual cone, the published algorithms re-typed in numpy).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import optimizers
from optimizers import linalg, shared
from optimizers.methods import alignedmtl, dualproj, imtlg, upgrad
from optimizers.base import Context, clip1

KEYS = ("imtlg", "alignedmtl", "upgrad", "dualproj")
PIPES = ("reference", "clean")
DTYPES = (torch.float32, torch.float64)


# ---------------------------------------------------------------------------------------------
# Helpers.

def tol(dtype):
    return dict(rtol=1e-5, atol=2e-6) if dtype == torch.float64 else dict(rtol=1e-4, atol=2e-5)


def make_ctx(pipeline, B, K, dtype):
    return Context(pipeline=pipeline, t=torch.ones(B, dtype=dtype), key=torch.arange(B, dtype=torch.int64),
                   loss_floor=torch.zeros(B, K, dtype=dtype))


def hp_tensors(method, B, dtype, **over):
    vals = {**method.defaults(), **over}
    return {k: (v if method.hparam(k).static else torch.full((B,), float(v), dtype=dtype)) for k, v in vals.items()}


def run(key, G, pipeline, **hp):
    G = torch.as_tensor(G)
    if G.dim() == 2:
        G = G[None]
    m = optimizers.get(key)
    B, K, D = G.shape
    state = m.init(B, K, D, hp_tensors(m, B, G.dtype, **hp), dtype=G.dtype, device=G.device)
    d, _, aux = m.step(G, torch.zeros(B, K, dtype=G.dtype), state, hp_tensors(m, B, G.dtype, **hp),
                       make_ctx(pipeline, B, K, G.dtype))
    assert d.shape == (B, D) and d.dtype == G.dtype
    assert set(m.aux) <= set(aux)
    assert aux["weights"].shape == (B, K)
    return d, aux


def post(key, d, K, pipeline):
    p = optimizers.get(key).post(pipeline)
    if p.times_k:
        d = d * K
    if p.clip:
        d = clip1(d)
    return d


def rand_G(rng, n, K, D, dtype=torch.float64):
    return torch.tensor(rng.normal(size=(n, K, D)), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# §9 test vectors.

from vectors import TV  # noqa: E402

# native d, then the reference-pipeline vector (None: same as native, no post-processing)
EXPECTED = {
    "imtlg": {"T1": ((0.5, 0.5), None), "T2": ((0.242641, 0.585786), None),
              "T3": ((0.156863, 0.078431), None), "T4": ((0.0, 0.0), None), "T5": ((1.0, 2.0), None)},
    "alignedmtl": {"T1": ((1.0, 1.0), (0.707107, 0.707107)),
                   "T2": ((0.552786, 1.105573), (0.447213, 0.894427)),
                   "T3": ((0.111795, 0.017320), (0.223590, 0.034641)),
                   "T4": ((-1.0, -2.0), (-0.447213, -0.894427)),
                   "T5": ((2.0, 4.0), (0.447214, 0.894427))},
    "upgrad": {"T1": ((0.5, 0.5), None), "T2": ((0.500075, 0.999850), None), "T3": ((1.55, 2.0), None),
               "T4": ((-0.000437, -0.000875), None), "T5": ((1.0, 2.0), None)},
    "dualproj": {"T1": ((0.5, 0.5), None), "T2": ((0.5, 0.5), None), "T3": ((1.55, 2.0), None),
                 "T4": ((0.0, 0.0), None), "T5": ((1.0, 2.0), None)},
}
# the spec rounds to 6 decimals; DualProj's T4 is listed as "0" but is O(reg_eps): (-0.0005, -0.001)
ATOL_SPEC = {("dualproj", "T4"): 1.2e-3}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", PIPES)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("tv", list(TV))
def test_spec_vectors(key, tv, pipeline, dtype):
    G = torch.tensor(TV[tv], dtype=dtype)
    d, _ = run(key, G, pipeline)
    native, piped = EXPECTED[key][tv]
    atol = ATOL_SPEC.get((key, tv), 2e-6 if dtype == torch.float64 else 2e-5)
    torch.testing.assert_close(d[0], torch.tensor(native, dtype=dtype), rtol=2e-6, atol=atol)
    if pipeline == "reference":
        want = native if piped is None else piped
        torch.testing.assert_close(post(key, d, 2, "reference")[0], torch.tensor(want, dtype=dtype),
                                   rtol=2e-6, atol=atol)
    else:
        assert optimizers.get(key).clean.times_k is False and optimizers.get(key).clean.clip is False


def test_spec_weights():
    """Weights the spec lists: UPGrad T2 w = (0.749963, 0.999850); DualProj T4 exactly by its K = 2 formula."""
    _, aux = run("upgrad", torch.tensor(TV["T2"], dtype=torch.float64), "clean")
    torch.testing.assert_close(aux["weights"][0], torch.tensor([0.749963, 0.999850], dtype=torch.float64),
                               rtol=0, atol=1e-6)
    # DualProj T4: M = [[5,-10],[-10,20]], tr 25, Ghat = [[.2001, -.4], [-.4, .8001]]; (Ghat u)_1 < 0
    h11, h12 = 0.2 + 1e-4, -0.4
    w1 = 0.5 - 0.5 * (h11 + h12) / h11
    want = w1 * np.array([1.0, 2.0]) + 0.5 * np.array([-2.0, -4.0])
    d, aux = run("dualproj", torch.tensor(TV["T4"], dtype=torch.float64), "clean")
    np.testing.assert_allclose(d[0].numpy(), want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(aux["weights"][0].numpy(), [w1, 0.5], rtol=1e-12)


def test_method_metadata():
    fam = {"imtlg": "game-theoretic", "alignedmtl": "gradient surgery", "upgrad": "gradient surgery",
           "dualproj": "gradient surgery"}
    for key in KEYS:
        m = optimizers.get(key)
        assert m.family == fam[key]
        assert set(m.pipelines) == set(PIPES)
        assert m.aux == ("weights",)
    a = optimizers.get("alignedmtl")
    assert a.reference.times_k and a.reference.clip and not a.clean.times_k and not a.clean.clip
    for key in ("imtlg", "upgrad", "dualproj"):
        m = optimizers.get(key)
        assert not (m.reference.times_k or m.reference.clip or m.clean.times_k or m.clean.clip)
    for key in ("upgrad", "dualproj"):
        assert optimizers.get(key).defaults() == {"reg_eps": 1e-4, "norm_eps": 1e-4}
    assert optimizers.get("imtlg").hparams == () and optimizers.get("alignedmtl").hparams == ()


# ---------------------------------------------------------------------------------------------
# Edge cases (K = 2).

EDGES = {
    "zero1": [[0.0, 0.0], [1.0, 2.0]],
    "zero2": [[3.0, -1.0], [0.0, 0.0]],
    "both_zero": [[0.0, 0.0], [0.0, 0.0]],
    "equal": [[1.5, -0.5], [1.5, -0.5]],
    "opposite": [[1.0, 2.0], [-2.0, -4.0]],
    "opposite_eq": [[1.0, -3.0], [-1.0, 3.0]],
    "parallel": [[1.0, 2.0], [2.0, 4.0]],
    "parallel3": [[0.3, -0.7], [0.9, -2.1]],
    "tiny": [[1e-3, 0.0], [0.0, 2e-3]],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", KEYS)
def test_edges_finite_in_clean(key, dtype):
    G = torch.tensor(list(EDGES.values()), dtype=dtype)
    d, aux = run(key, G, "clean")
    assert torch.isfinite(d).all() and torch.isfinite(aux["weights"]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_imtlg_edges(dtype):
    E = {k: torch.tensor(v, dtype=dtype) for k, v in EDGES.items()}
    # clean: closed-form limits
    for name in ("zero1", "zero2", "both_zero", "opposite", "opposite_eq"):
        d, _ = run("imtlg", E[name], "clean")
        torch.testing.assert_close(d[0], torch.zeros(2, dtype=dtype), rtol=0, atol=1e-6)
    _, aux = run("imtlg", E["zero1"], "clean")
    torch.testing.assert_close(aux["weights"][0], torch.tensor([1.0, 0.0], dtype=dtype))
    _, aux = run("imtlg", E["both_zero"], "clean")
    torch.testing.assert_close(aux["weights"][0], torch.tensor([0.5, 0.5], dtype=dtype))
    d, _ = run("imtlg", E["parallel"], "clean")                       # (2 n2 / (n1 + n2)) g1 = 4/3 g1
    torch.testing.assert_close(d[0], 4.0 / 3.0 * E["parallel"][0], **tol(dtype))
    d, _ = run("imtlg", E["equal"], "clean")
    torch.testing.assert_close(d[0], E["equal"][0], **tol(dtype))
    # reference: published quirks
    for name in ("zero1", "zero2", "both_zero"):
        d, aux = run("imtlg", E[name], "reference")
        assert torch.isnan(d).all() and torch.isnan(aux["weights"]).all()
    for name in ("parallel", "equal"):                               # exactly singular D U^T: d = g1
        d, aux = run("imtlg", E[name], "reference")
        torch.testing.assert_close(d[0], E[name][0], rtol=0, atol=0)
        torch.testing.assert_close(aux["weights"][0], torch.tensor([1.0, 0.0], dtype=dtype), rtol=0, atol=0)
    for name in ("opposite", "opposite_eq"):
        d, _ = run("imtlg", E[name], "reference")
        torch.testing.assert_close(d[0], torch.zeros(2, dtype=dtype), rtol=0, atol=1e-6)
    d, _ = run("imtlg", E["parallel3"], "reference")                  # round-off in U: finite, as published
    assert torch.isfinite(d).all()
    # the code multiplies by inverse(D U^T): alpha_2 = first * (1/den), not first / den (its rounding is
    # what moves the published runs off the symmetry axis); these mirrored float32 gradients (the one-optimum
    # toy at (0, 8)) give alpha_2 != 1/2 and d_x = 7.450581e-09 in the published code
    g = torch.tensor([[0.19986584782600403, 0.0046368129551410675],
                      [-0.19986584782600403, 0.0046368129551410675]], dtype=torch.float32)
    if dtype == torch.float32:
        U = g / torch.stack([torch.norm(r) for r in g])[:, None]      # as the code: torch.norm per task
        first = (g[0] * (U[0] - U[1])).sum()
        den = ((g[0] - g[1]) * (U[0] - U[1])).sum()
        a2 = first * (1.0 / den)
        d, aux = run("imtlg", g, "reference")
        assert aux["weights"][0, 1].item() == a2.item() and a2.item() != 0.5
        assert d[0, 0].item() == ((1 - a2) * g[0, 0] + a2 * g[1, 0]).item() != 0.0
        dc, _ = run("imtlg", g, "clean")
        assert dc[0, 0].item() == 0.0                                 # clean: exactly symmetric


def test_imtlg_reference_norm_is_torch_norm():
    """The reference pipeline rounds |g| as the published code's torch.norm does (float32, D = 2)."""
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(3000, 2, generator=gen) * torch.exp(3 * torch.randn(3000, 1, generator=gen))
    want = torch.stack([torch.norm(r) for r in g])
    assert torch.equal(imtlg.torch_norm(g[:, None, :])[:, 0], want)


def test_imtlg_reference_matches_published_steps():
    """Published IMTL-G (torch.norm, torch.inverse, as in the SAM-GS code) on gradients along a trajectory of
    the one-optimum toy from the symmetric start (0, 8): the same weights bit for bit."""
    def published(g):
        u = torch.stack([r / torch.norm(r) for r in g])
        D, U = g[0] - g[1:], u[0] - u[1:]
        try:
            inv = torch.inverse(D @ U.T)
        except Exception:
            inv = torch.inverse(torch.eye(1) * 1e-8 + D @ U.T)
        a = (g[0] @ U.T) @ inv
        return torch.cat(((1 - a.sum()).unsqueeze(-1), a))

    def toy(th):      # the CAGrad / SAM-GS one-optimum toy, as written in the published code
        x, y = th[0], th[1]
        f1 = torch.log(torch.max(torch.abs(0.5 * (-x - 7) - torch.tanh(-y)), torch.tensor(5e-6))) + 6
        f2 = torch.log(torch.max(torch.abs(0.5 * (-x + 3) + torch.tanh(-y) + 2), torch.tensor(5e-6))) + 6
        c1, c2 = torch.clamp(torch.tanh(y * 0.5), 0), torch.clamp(torch.tanh(-y * 0.5), 0)
        q1 = ((-x + 7) ** 2 + 0.1 * (-y - 8) ** 2) / 10 - 20
        q2 = ((-x - 7) ** 2 + 0.1 * (-y - 8) ** 2) / 10 - 20
        return torch.stack([f1 * c1 + q1 * c2, f2 * c1 + q2 * c2])

    th = torch.tensor([0.0, 8.0], requires_grad=True)
    opt = torch.optim.Adam([th], lr=1e-3)
    for _ in range(300):
        L = toy(th)
        g = torch.stack([torch.autograd.grad(L[k], th, retain_graph=True)[0] for k in range(2)])
        a = published(g)
        assert torch.equal(imtlg.reference_weights(g[None])[0], a)
        th.grad = (a @ g).detach()
        opt.step()
    assert th[0].item() != 0.0                                       # the rounding left the symmetry axis


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", PIPES)
def test_alignedmtl_edges(pipeline, dtype):
    E = {k: torch.tensor(v, dtype=dtype) for k, v in EDGES.items()}
    for name in ("zero1", "zero2", "equal", "opposite", "opposite_eq", "parallel", "parallel3"):
        d, aux = run("alignedmtl", E[name], pipeline)                 # rank 1: the plain sum
        torch.testing.assert_close(d[0], E[name].sum(0), **tol(dtype))
        # weights M 1 / tr M (B = v1 v1^T)
        M = E[name].double() @ E[name].double().T
        torch.testing.assert_close(aux["weights"][0].double(), M.sum(1) / M.trace(), **tol(dtype))
    d, aux = run("alignedmtl", E["both_zero"], pipeline)              # rank 0: d = 0, B = I
    assert (d == 0).all()
    torch.testing.assert_close(aux["weights"][0], torch.ones(2, dtype=dtype))
    # near parallel but rank 2: the small aligned direction, |d| = sqrt(2 lambda_min)
    G = torch.tensor([[1.0, 2.0], [1.0, 2.01]], dtype=torch.float64)
    lam = np.linalg.eigvalsh((G @ G.T).numpy())
    d, _ = run("alignedmtl", G.to(dtype), pipeline)
    assert abs(d[0].double().norm().item() - math.sqrt(2 * lam[0])) < 1e-4 * math.sqrt(lam[1])
    # the reference tolerance tests lambda_min > lambda_max * K * eps(dtype)
    eps = torch.finfo(dtype).eps
    for t_, rank2 in ((1e-3, True), (math.sqrt(eps) * 0.1, False)):
        Gt = torch.tensor([[1.0, 0.0], [1.0, t_]], dtype=dtype)
        lam = np.linalg.eigvalsh((Gt.double() @ Gt.double().T).numpy())
        assert (lam[0] > lam[1] * 2 * eps) == rank2
        d, _ = run("alignedmtl", Gt, pipeline)
        if rank2:
            assert d[0].norm().item() < 0.1
        else:
            torch.testing.assert_close(d[0], Gt.sum(0), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", ("upgrad", "dualproj"))
def test_projection_edges(key, dtype):
    E = {k: torch.tensor(v, dtype=dtype) for k, v in EDGES.items()}
    for pipeline in PIPES:
        for name in ("equal",):
            d, _ = run(key, E[name], pipeline)
            torch.testing.assert_close(d[0], E[name][0], **tol(dtype))
        for name in ("opposite", "opposite_eq"):                     # O(reg_eps)
            d, _ = run(key, E[name], pipeline)
            assert d[0].norm().item() < 5e-3 * E[name].norm().item()
        d, aux = run(key, E["both_zero"], pipeline)
        assert (d == 0).all()
        torch.testing.assert_close(aux["weights"][0], torch.full((2,), 0.5, dtype=dtype))
        d, _ = run(key, E["tiny"], pipeline)                          # tr(M) < norm_eps: the mean
        torch.testing.assert_close(d[0], E["tiny"].mean(0), **tol(dtype))
        d, _ = run(key, E["zero1"], pipeline)                         # zero task: half the other
        torch.testing.assert_close(d[0], 0.5 * E["zero1"][1], **tol(dtype))
        for name in ("parallel", "parallel3"):                        # no conflict: the mean
            d, _ = run(key, E[name], pipeline)
            torch.testing.assert_close(d[0], E[name].mean(0), **tol(dtype))


# ---------------------------------------------------------------------------------------------
# Independent numpy references.

def np_cone_project(J, y):
    """Euclidean projection of y onto {x : J x >= 0} by brute force over active constraint sets."""
    m = J.shape[0]
    best, best_dist = None, np.inf
    scale = max(np.abs(J).max(), 1e-300) * max(np.linalg.norm(y), 1e-300)
    for r in range(m + 1):
        for A in itertools.combinations(range(m), r):
            if A:
                JA = J[list(A)]
                x = y - JA.T @ (np.linalg.pinv(JA @ JA.T) @ (JA @ y))
            else:
                x = y.copy()
            if (J @ x >= -1e-9 * scale).all():
                dist = np.linalg.norm(x - y)
                if best is None or dist < best_dist:
                    best, best_dist = x, dist
    return best


def np_aug_jacobian(G, reg_eps=1e-4, norm_eps=1e-4):
    """J' with J' J'^T = torchjd's Ghat = M/tr(M) + reg I, so the regularised dual QP is a plain projection."""
    K = G.shape[0]
    tr = (G * G).sum()
    Jn = np.zeros_like(G) if tr < norm_eps else G / np.sqrt(tr)
    return np.concatenate([Jn, np.sqrt(reg_eps) * np.eye(K)], 1), tr


def np_upgrad(G, reg_eps=1e-4, norm_eps=1e-4):
    K, D = G.shape
    J, _ = np_aug_jacobian(G, reg_eps, norm_eps)
    w = sum(np_cone_project(J, J.T @ (np.eye(K)[i] / K))[D:] for i in range(K)) / np.sqrt(reg_eps)
    return w @ G, w


def np_dualproj(G, reg_eps=1e-4, norm_eps=1e-4):
    K, D = G.shape
    J, _ = np_aug_jacobian(G, reg_eps, norm_eps)
    w = np_cone_project(J, J.T @ (np.ones(K) / K))[D:] / np.sqrt(reg_eps)
    return w @ G, w


def np_aligned(G, rank_cap=None):
    """The published Aligned-MTL (eigh, descending, tol = lambda_max K eps), float64; optional rank cap."""
    M = G @ G.T
    lam, V = np.linalg.eigh(M)
    o = np.argsort(lam)[::-1]
    lam, V = lam[o], V[:, o]
    tol = lam.max() * M.shape[0] * np.finfo(np.float64).eps
    r = int((lam > tol).sum())
    if rank_cap is not None:
        r = min(r, rank_cap)
    if r == 0:
        w = np.ones(G.shape[0])
    else:
        lam, V = lam[:r], V[:, :r]
        Bm = np.sqrt(lam[-1]) * V @ np.diag(1 / np.sqrt(lam)) @ V.T
        w = Bm @ np.ones(G.shape[0])
    return w @ G, w


def np_imtlg_code(G):
    """The published IMTL-G formula in numpy."""
    u = G / np.linalg.norm(G, axis=1, keepdims=True)
    Dm, Um = G[0] - G[1:], u[0] - u[1:]
    a = (G[0] @ Um.T) @ np.linalg.inv(Dm @ Um.T)
    alpha = np.concatenate([[1 - a.sum()], a])
    return alpha @ G, alpha


@pytest.mark.parametrize("K,D", [(3, 3), (3, 5), (4, 4), (4, 6), (3, 2), (4, 2)])
def test_upgrad_dualproj_general_vs_numpy(K, D):
    rng = np.random.default_rng(10 * K + D)
    G = rng.normal(size=(12, K, D))
    G[1] = G[0]                                 # a few structured cases
    G[2, 1] = -G[2, 0]
    G[3, 0] = 0.0
    G[4] = np.abs(G[4])                         # no conflict
    G[5] = 1e-3 * G[5]                          # tr(M) < norm_eps
    Gt = torch.tensor(G)
    for key, ref in (("upgrad", np_upgrad), ("dualproj", np_dualproj)):
        for pipeline in PIPES:
            d, aux = run(key, Gt, pipeline)
            for b in range(len(G)):
                want_d, want_w = ref(G[b])
                np.testing.assert_allclose(aux["weights"][b].numpy(), want_w, rtol=1e-6, atol=1e-8,
                                           err_msg=f"{key} case {b}")
                np.testing.assert_allclose(d[b].numpy(), want_d, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("K", [3, 4])
def test_upgrad_unregularised_is_mean_of_projections(K):
    """With reg_eps -> 0, UPGrad = mean of the projections of the g_i onto the dual cone (primal brute force)."""
    rng = np.random.default_rng(K)
    G = rng.normal(size=(10, K, K + 1))
    d, _ = run("upgrad", torch.tensor(G), "clean", reg_eps=1e-8)
    dp, _ = run("dualproj", torch.tensor(G), "clean", reg_eps=1e-8)
    for b in range(len(G)):
        want = np.mean([np_cone_project(G[b], G[b, i]) for i in range(K)], 0)
        np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dp[b].numpy(), np_cone_project(G[b], G[b].mean(0)), rtol=1e-4, atol=1e-5)
        assert (G[b] @ d[b].numpy() >= -1e-5).all()                # no conflict with any task


@pytest.mark.parametrize("K,D", [(3, 3), (3, 4), (4, 4), (4, 7)])
def test_alignedmtl_general_vs_numpy(K, D):
    rng = np.random.default_rng(100 + 10 * K + D)
    G = rng.normal(size=(10, K, D))
    G[1, 1] = 2.5 * G[1, 0]                      # rank K-1
    G[2, :] = rng.normal(size=D) * rng.normal(size=(K, 1))   # rank 1: the plain sum
    G[3] = 0.0                                   # rank 0
    G[4, 0] *= 30.0                              # imbalanced
    for pipeline in PIPES:
        d, aux = run("alignedmtl", torch.tensor(G), pipeline)
        for b in range(len(G)):
            want_d, want_w = np_aligned(G[b])
            np.testing.assert_allclose(aux["weights"][b].numpy(), want_w, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(d[b].numpy(), want_d, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(d[2].numpy(), G[2].sum(0), rtol=1e-9)
    # full rank: the aligned gradients G^T B are orthogonal with equal norms sqrt(lambda_min)
    _, aux = run("alignedmtl", torch.tensor(G[0:1]), "clean")
    lam, V = np.linalg.eigh(G[0] @ G[0].T)
    Bm = V @ np.diag(np.sqrt(lam[0] / lam)) @ V.T
    np.testing.assert_allclose(Bm @ G[0] @ G[0].T @ Bm, lam[0] * np.eye(K), atol=1e-9)
    np.testing.assert_allclose(aux["weights"][0].numpy(), Bm.sum(1), rtol=1e-8)


@pytest.mark.parametrize("K", [3, 4])
def test_alignedmtl_more_tasks_than_parameters(K):
    """K > D = 2: rank <= 2 (eigenvalues past D are never kept); matches numpy with the same rank cap."""
    rng = np.random.default_rng(7 + K)
    G = rng.normal(size=(8, K, 2))
    d, aux = run("alignedmtl", torch.tensor(G), "clean")
    for b in range(len(G)):
        want_d, want_w = np_aligned(G[b], rank_cap=2)
        np.testing.assert_allclose(d[b].numpy(), want_d, rtol=1e-6, atol=1e-9)
        # the aligned gradients G^T B have Gram B M B = lambda_2 P (P: projector on the top-2 eigenvectors),
        # so |d|^2 = lambda_2 |P 1|^2
        lam, V = np.linalg.eigh(G[b] @ G[b].T)
        P = V[:, -2:] @ V[:, -2:].T
        assert abs(np.linalg.norm(d[b].numpy()) ** 2 - lam[-2] * np.sum((P @ np.ones(K)) ** 2)) < 1e-8 * lam[-1]


@pytest.mark.parametrize("K,D", [(3, 3), (3, 5), (4, 4), (4, 6)])
def test_imtlg_general_vs_numpy(K, D):
    rng = np.random.default_rng(200 + 10 * K + D)
    G = rng.normal(size=(10, K, D))
    G[1, 1] *= 20.0
    for pipeline in PIPES:
        d, aux = run("imtlg", torch.tensor(G), pipeline)
        for b in range(len(G)):
            M = G[b] @ G[b].T
            n = np.linalg.norm(G[b], axis=1)
            x = np.linalg.solve(M, n)
            alpha = x / x.sum()
            np.testing.assert_allclose(aux["weights"][b].numpy(), alpha, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(aux["weights"][b].numpy(), np_imtlg_code(G[b])[1], rtol=1e-6, atol=1e-8)
            # impartiality: equal projections on all unit gradients
            proj = (G[b] / n[:, None]) @ d[b].numpy()
            np.testing.assert_allclose(proj, proj[0], rtol=1e-6, atol=1e-9)
            assert abs(aux["weights"][b].sum().item() - 1) < 1e-9


@pytest.mark.parametrize("K", [3, 4])
def test_imtlg_more_tasks_than_parameters(K):
    """K > D = 2: only d = 0 has equal projections; alpha is the null vector of G^T normalised to sum 1."""
    rng = np.random.default_rng(300 + K)
    G = rng.normal(size=(6, K, 2))
    for dtype in DTYPES:
        d, aux = run("imtlg", torch.tensor(G, dtype=dtype), "clean")
        assert d.abs().max().item() < (1e-3 if dtype == torch.float32 else 1e-9)
        if K == 3 and dtype == torch.float64:
            for b in range(len(G)):
                null = np.linalg.svd(G[b].T)[2][-1]
                np.testing.assert_allclose(aux["weights"][b].numpy(), null / null.sum(), rtol=1e-5, atol=1e-8)
    d, aux = run("imtlg", torch.tensor(G), "reference")
    if K == 3:      # D U^T is 2 x 2 and invertible: the code's d = 0 too
        assert d.abs().max().item() < 1e-9
    else:           # D U^T is 3 x 3 of rank 2: the code inverts round-off (finite, meaningless), as published
        assert torch.isfinite(d).all()


@pytest.mark.parametrize("K", [3, 4])
def test_imtlg_general_edges(K):
    rng = np.random.default_rng(400 + K)
    G = rng.normal(size=(3, K, K + 1))
    G[0, 1] = 0.0                                # one zero gradient
    G[1, :2] = 0.0                               # two zero gradients
    G[2] = 0.0                                   # all zero
    d, aux = run("imtlg", torch.tensor(G), "clean")
    assert (d == 0).all()
    np.testing.assert_allclose(aux["weights"][0].numpy(), np.eye(K)[1])
    np.testing.assert_allclose(aux["weights"][1].numpy(), np.r_[0.5, 0.5, np.zeros(K - 2)])
    np.testing.assert_allclose(aux["weights"][2].numpy(), np.full(K, 1.0 / K))
    d, _ = run("imtlg", torch.tensor(G), "reference")
    assert torch.isnan(d).all()
    # exactly parallel first two tasks in the reference: singular D U^T, the 1e-8 ridge retry stays finite
    Gp = rng.normal(size=(1, K, K + 1))
    Gp[0, 1] = 2.0 * Gp[0, 0]
    d, _ = run("imtlg", torch.tensor(Gp), "reference")
    assert torch.isfinite(d).all()


# ---------------------------------------------------------------------------------------------
# K = 2 general paths vs the closed forms.

def test_k2_general_paths_match_closed_forms():
    rng = np.random.default_rng(5)
    G = torch.tensor(rng.normal(size=(200, 2, 3)))
    G[:20, 1] = -0.7 * G[:20, 0]                 # opposite
    G[20:30, 1] = 3.0 * G[20:30, 0]              # parallel
    G[30:35, 0] = 0.0
    for key, mod in (("upgrad", upgrad), ("dualproj", dualproj)):
        hp = hp_tensors(optimizers.get(key), len(G), G.dtype)
        H = shared.normalized_gram(G, hp["norm_eps"], hp["reg_eps"])
        closed = mod.weights(H)
        if key == "upgrad":
            general = linalg.box_qp(H, torch.eye(2, dtype=G.dtype).expand(len(G), 2, 2) / 2).sum(1)
        else:
            general = linalg.box_qp(H, torch.full((len(G), 2), 0.5, dtype=G.dtype))
        torch.testing.assert_close(general, closed, rtol=1e-10, atol=1e-12)
    Gf = G[35:]                                  # Aligned: rank-2 rows
    torch.testing.assert_close(alignedmtl.weights_general(Gf), alignedmtl.weights_2(Gf), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(alignedmtl.weights_general(G[20:35]), alignedmtl.weights_2(G[20:35]),
                               rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(imtlg.clean_weights_general(G[35:]), imtlg.clean_weights(G[35:]),
                               rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(imtlg.clean_weights_general(G[:20]), imtlg.clean_weights(G[:20]),
                               rtol=1e-6, atol=1e-8)    # opposite: ridge limit = closed form
    torch.testing.assert_close(imtlg.reference_weights(G[35:]), imtlg.clean_weights(G[35:]),
                               rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# linalg against numpy.linalg.

def spd(rng, n, K, cond=None):
    X = rng.normal(size=(n, K, K))
    A = X @ np.transpose(X, (0, 2, 1))
    if cond is not None:                         # near-singular: eigenvalues spread over `cond`
        Q = np.linalg.qr(rng.normal(size=(n, K, K)))[0]
        lam = np.geomspace(1.0, 1.0 / cond, K)
        A = Q @ (lam[None, :, None] * np.transpose(Q, (0, 2, 1)))
    return A


def npsolve(A, b):
    return np.linalg.solve(A, b[..., None])[..., 0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [2, 3, 4])
def test_solve_vs_numpy(K, dtype):
    rng = np.random.default_rng(K)
    A = spd(rng, 50, K) + 0.1 * np.eye(K)
    b = rng.normal(size=(50, K))
    r = 1e-4 if dtype == torch.float32 else 1e-10
    x = linalg.solve(torch.tensor(A, dtype=dtype), torch.tensor(b, dtype=dtype))
    np.testing.assert_allclose(x.numpy(), npsolve(A, b), rtol=r * 100, atol=r * 100)
    x = linalg.solve(torch.tensor(A, dtype=dtype), torch.tensor(b, dtype=dtype), pivot=False)
    np.testing.assert_allclose(x.numpy(), npsolve(A, b), rtol=r * 100, atol=r * 100)
    # near-singular SPD with a ridge
    As = spd(rng, 50, K, cond=1e12)
    ridge = 1e-3
    x = linalg.solve(torch.tensor(As, dtype=dtype), torch.tensor(b, dtype=dtype), ridge=ridge)
    want = npsolve(As + ridge * np.eye(K), b)
    np.testing.assert_allclose(x.numpy(), want, rtol=r * 100, atol=r * 1e3)
    # a ridge per run
    rr = rng.uniform(0.1, 1.0, size=50)
    x = linalg.solve(torch.tensor(As, dtype=dtype), torch.tensor(b, dtype=dtype), ridge=torch.tensor(rr, dtype=dtype))
    want = npsolve(As + rr[:, None, None] * np.eye(K), b)
    np.testing.assert_allclose(x.numpy(), want, rtol=r * 100, atol=r * 100)
    # general matrices that need pivoting (a zero leading entry; permutations)
    P = rng.normal(size=(50, K, K))
    P[:, 0, 0] = 0.0
    P[0] = np.eye(K)[::-1]
    x = linalg.solve(torch.tensor(P, dtype=dtype), torch.tensor(b, dtype=dtype))
    np.testing.assert_allclose(x.numpy(), npsolve(P, b), rtol=r * 1e3, atol=r * 1e3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [1, 2, 3, 4])
def test_inverse_vs_numpy(K, dtype):
    rng = np.random.default_rng(60 + K)
    A = rng.normal(size=(50, K, K))
    A = A[np.abs(np.linalg.det(A)) > 0.1]
    r = 1e-3 if dtype == torch.float32 else 1e-9
    inv = linalg.inverse(torch.tensor(A, dtype=dtype)).double().numpy()
    np.testing.assert_allclose(inv, np.linalg.inv(A), rtol=r, atol=r)
    inv = linalg.inverse(torch.tensor(A, dtype=dtype), ridge=0.5).double().numpy()
    np.testing.assert_allclose(inv, np.linalg.inv(A + 0.5 * np.eye(K)), rtol=r * 10, atol=r * 10)
    rr = rng.uniform(0.1, 1.0, size=len(A))
    inv = linalg.inverse(torch.tensor(A, dtype=dtype), ridge=torch.tensor(rr, dtype=dtype)).double().numpy()
    np.testing.assert_allclose(inv, np.linalg.inv(A + rr[:, None, None] * np.eye(K)), rtol=r * 10, atol=r * 10)
    if K == 1:       # the published IMTL-G's 1 x 1 case: 1/x exactly, as torch.inverse
        x = torch.tensor(A, dtype=dtype)
        assert torch.equal(linalg.inverse(x), 1.0 / x)


def test_solve_singular_is_nonfinite():
    A = torch.tensor([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    x = linalg.solve(A, torch.ones(2, 2, dtype=torch.float64))
    assert not torch.isfinite(x).all(-1).any()
    assert not torch.isfinite(linalg.inverse(A)).flatten(1).all(-1).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [2, 3, 4, 5, 6])
def test_sym_eig_vs_numpy(K, dtype):
    rng = np.random.default_rng(20 + K)
    cases = [spd(rng, 40, K), spd(rng, 20, K, cond=1e10)]
    X = rng.normal(size=(20, K, 1))
    cases.append(X @ np.transpose(X, (0, 2, 1)))                # rank 1 (near-singular in float)
    cases.append(np.broadcast_to(np.eye(K), (3, K, K)) * 2.0)   # repeated eigenvalues
    S = rng.normal(size=(20, K, K))
    cases.append(S + np.transpose(S, (0, 2, 1)))                # indefinite symmetric
    A = np.concatenate(cases)
    lam, V = linalg.sym_eig(torch.tensor(A, dtype=dtype))
    lam, V = lam.double().numpy(), V.double().numpy()
    want = np.linalg.eigvalsh(A)[:, ::-1]
    scale = np.abs(want).max(1, keepdims=True)
    eps = 1e-5 if dtype == torch.float32 else 1e-13
    assert (np.abs(lam - want) <= eps * scale).all()
    assert (np.diff(lam, axis=1) <= 0).all()                       # descending
    recon = V @ (lam[:, :, None] * np.transpose(V, (0, 2, 1)))
    assert (np.abs(recon - A) <= 10 * eps * scale[:, :, None]).all()
    np.testing.assert_allclose(np.transpose(V, (0, 2, 1)) @ V, np.broadcast_to(np.eye(K), A.shape), atol=10 * eps)
    # well separated eigenvalues: eigenvectors agree with numpy's up to sign
    _, Vn = np.linalg.eigh(A[:40])
    Vn = Vn[:, :, ::-1]
    dots = np.abs((V[:40] * Vn).sum(1))
    gaps = np.abs(np.diff(want[:40], axis=1)).min(1) / scale[:40, 0]
    ok = gaps > 1e-2
    np.testing.assert_allclose(dots[ok], 1.0, atol=1e-3 if dtype == torch.float32 else 1e-9)


def test_sort_network():
    rng = np.random.default_rng(0)
    for K in range(1, 7):
        x = rng.normal(size=(100, K))
        x[:10, 0] = x[:10, -1]                                     # ties
        lam, _ = linalg.sort_desc([torch.tensor(x[:, i]) for i in range(K)])
        np.testing.assert_array_equal(torch.stack(lam, 1).numpy(), -np.sort(-x, axis=1))


def np_box_qp(H, lower):
    """argmin v^T H v s.t. v >= lower as a projection: H = J J^T (Cholesky), v = lower + w with
    J^T v the projection of J^T lower onto the dual cone {x : J x >= 0} (Proposition 1 of Quinton & Rey)."""
    J = np.linalg.cholesky(H)
    x = np_cone_project(J, J.T @ lower)
    return np.linalg.solve(J.T, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [2, 3, 4])
def test_box_qp_vs_numpy(K, dtype):
    rng = np.random.default_rng(30 + K)
    H = np.concatenate([spd(rng, 30, K) + 1e-2 * np.eye(K), spd(rng, 10, K, cond=1e4)])
    M = spd(rng, 10, K, cond=1e12)                                 # trace-normalised, nearly singular + 1e-4 I
    H = np.concatenate([H, M / np.trace(M, axis1=1, axis2=2)[:, None, None] + 1e-4 * np.eye(K)])
    lower = rng.normal(size=(len(H), K))
    lower[:10] = np.abs(lower[:10])
    lower[10:15] = 0.0
    lower[15:20, 0] = 0.0
    v = linalg.box_qp(torch.tensor(H, dtype=dtype), torch.tensor(lower, dtype=dtype)).double().numpy()
    r = 2e-3 if dtype == torch.float32 else 1e-8
    for b in range(len(H)):
        want = np_box_qp(H[b], lower[b])
        s = max(1.0, np.abs(want).max())
        np.testing.assert_allclose(v[b], want, rtol=r, atol=r * s, err_msg=f"case {b}")
    assert (v >= torch.tensor(lower, dtype=dtype).double().numpy()).all()
    # a problem axis: P problems sharing H
    low3 = torch.tensor(rng.normal(size=(len(H), 3, K)), dtype=dtype)
    v3 = linalg.box_qp(torch.tensor(H, dtype=dtype), low3)
    for p in range(3):
        torch.testing.assert_close(v3[:, p], linalg.box_qp(torch.tensor(H, dtype=dtype), low3[:, p]))
    # coordinate descent fallback converges to the same point on well-conditioned problems
    cd = linalg.box_qp_cd(torch.tensor(H[:30]), torch.tensor(lower[:30]), iters=3000).numpy()
    np.testing.assert_allclose(cd, linalg.box_qp(torch.tensor(H[:30]), torch.tensor(lower[:30])).numpy(),
                               rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# dtype, per-run hyperparameters (row independence, traceability and the C kernel: tests/test_method_contract.py)

@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("key", KEYS)
def test_float32_matches_float64(key, K):
    rng = np.random.default_rng(50 + K)
    G = rng.normal(size=(200, K, 3))
    if K <= 3:      # keep well-conditioned Gram matrices (IMTL-G's weights are as ill-conditioned as M)
        G = G[np.linalg.cond(G @ np.transpose(G, (0, 2, 1))) < 100][:40]
    G = torch.tensor(G)
    for pipeline in PIPES:
        d64, _ = run(key, G, pipeline)
        d32, _ = run(key, G.float(), pipeline)
        scale = G.norm(dim=-1).amax(-1, keepdim=True)
        assert ((d32.double() - d64).abs() / scale).max().item() < 2e-3


def test_hparams_per_run():
    """reg_eps / norm_eps are per-run tensors: one batch can hold a sweep."""
    G = torch.tensor([TV["T4"], TV["T4"], TV["T4"]], dtype=torch.float64)
    m = optimizers.get("upgrad")
    hp = {"reg_eps": torch.tensor([1e-4, 1e-2, 1e-4], dtype=torch.float64),
          "norm_eps": torch.tensor([1e-4, 1e-4, 100.0], dtype=torch.float64)}
    d, _, _ = m.step(G, torch.zeros(3, 2, dtype=torch.float64), {}, hp, make_ctx("clean", 3, 2, torch.float64))
    for b, (r, n) in enumerate([(1e-4, 1e-4), (1e-2, 1e-4), (1e-4, 100.0)]):
        np.testing.assert_allclose(d[b].numpy(), np_upgrad(G[b].numpy(), r, n)[0], rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(d[2], G[2].mean(0))
