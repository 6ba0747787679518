"""PCGrad, GradDrop, GradVac, ConFIG, MSI / POMSI / POMSI-static (optimizers/methods/{pcgrad,graddrop,gradvac,
config,msi}.py; the projections in optimizers/shared.py).

Expected values come from methods-spec.md §9 (T1-T5), from the spec's formulas, or from the independent
float64 numpy implementations below (plain loops, np.linalg.pinv), never from the code under test.
"""
import itertools
import math

import numpy as np
import pytest
import torch

import optimizers
from optimizers import shared
from optimizers.methods import config as cfg
from optimizers.methods import graddrop as gd
from optimizers.methods import gradvac as gv
from optimizers.methods import msi as msi_mod
from optimizers.methods import pcgrad as pc
from optimizers.base import Context, clip1, combine

DTYPES = (torch.float32, torch.float64)
KEYS = ("pcgrad", "graddrop", "gradvac", "config", "msi", "pomsi", "pomsi_static")


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# harness

def make_ctx(pipeline, B, K, dtype, keys=None, t=1.0):
    key = torch.arange(B, dtype=torch.int64) * 7 + 3 if keys is None else torch.as_tensor(keys, dtype=torch.int64)
    return Context(pipeline, torch.full((B,), float(t), dtype=dtype), key, torch.zeros(B, K, dtype=dtype))


def hparams(method, B, dtype, **over):
    hp = {}
    for h in method.hparams:
        v = over.get(h.name, h.default)
        hp[h.name] = v if h.static else torch.as_tensor(v, dtype=dtype).expand(B).clone()
    return hp


def run(key, G, pipeline="clean", state=None, keys=None, t=1.0, **over):
    """One step of a method on G[B, K, D] (any array-like): (d, state, aux)."""
    m = optimizers.get(key)
    G = torch.as_tensor(G)
    B, K, D = G.shape
    hp = hparams(m, B, G.dtype, **over)
    if state is None:
        state = m.init(B, K, D, hp, dtype=G.dtype, device=G.device)
    ctx = make_ctx(pipeline, B, K, G.dtype, keys=keys, t=t)
    return m.step(G, torch.zeros(B, K, dtype=G.dtype), state, hp, ctx)


def apply_post(key, pipeline, d, K):
    p = optimizers.get(key).post(pipeline)
    if p.times_k:
        d = d * K
    if p.clip:
        d = clip1(d)
    return d


def ranks_to_orders(ranks):
    """ranks[B, K, K] (position of j in i's visit) -> orders[B, K, K] (j visited at position p)."""
    return np.argsort(np.asarray(ranks), axis=-1, kind="stable")


def uniform_orders(pipeline_salt, B, K, dtype=torch.float64, keys=None, t=1.0):
    ctx = make_ctx("clean", B, K, dtype, keys=keys, t=t)
    u = ctx.uniform((K, K), pipeline_salt).numpy()
    return np.argsort(u, axis=-1, kind="stable")


# ------------------------------------------------------------------------------------------------
# independent float64 numpy references

def np_pcgrad(G, orders, include_self):
    """Sequential PCGrad of one run: G[K, D], orders[K][K]; returns the projected gradients [K, D]."""
    G = np.asarray(G, dtype=np.float64)
    K = G.shape[0]
    out = np.zeros_like(G)
    for i in range(K):
        g = G[i].copy()
        for j in orders[i]:
            if j == i and not include_self:
                continue
            dot = float(g @ G[j])
            if dot < 0:
                g = g - dot / float(G[j] @ G[j]) * G[j]
        out[i] = g
    return out


def np_gradvac(G, phi_hat, beta, orders, eps=1e-8):
    G = np.asarray(G, dtype=np.float64)
    ph = np.array(phi_hat, dtype=np.float64)
    K = G.shape[0]
    out = np.zeros_like(G)
    for i in range(K):
        g = G[i].copy()
        for j in orders[i]:
            if j == i:
                continue
            ni, nj = np.linalg.norm(g), np.linalg.norm(G[j])
            phi = float(g @ G[j]) / (ni * nj + eps)
            t = ph[i, j]
            if phi < t:
                w = ni * (t * math.sqrt(max(1 - phi ** 2, 0)) - phi * math.sqrt(max(1 - t ** 2, 0))) \
                    / (nj * math.sqrt(max(1 - t ** 2, 0)) + eps)
                g = g + w * G[j]
            ph[i, j] = (1 - beta) * t + beta * phi
        out[i] = g
    return out.sum(0), ph


def np_config(G):
    G = np.asarray(G, dtype=np.float64)
    n = np.linalg.norm(G, axis=1)
    U = np.where(n[:, None] > 0, G / np.where(n > 0, n, 1)[:, None], 0.0)
    v = np.linalg.pinv(U) @ np.ones(G.shape[0])
    vhat = v / max(np.linalg.norm(v), 1e-12)
    return float((G @ vhat).sum()) * vhat


def np_msi(G):
    """The reconstructed MSI rule of methods-spec.md §6.13, written out with loops."""
    G = np.asarray(G, dtype=np.float64)
    K = G.shape[0]
    n = [float(np.linalg.norm(g)) for g in G]
    nbar = sum(n) / K
    r = []
    for k in range(K):
        sims = []
        for j in range(K):
            if j == k:
                continue
            den = n[k] ** 2 + n[j] ** 2
            sims.append(1.0 if den == 0 else 2 * n[k] * n[j] / den)
        s = sum(sims) / (K - 1)
        r.append((n[k] ** s * nbar ** (1 - s)) / n[k] if n[k] > 0 else 1.0)
    r = np.array(r)
    return (r[:, None] * G).sum(0), r


def np_graddrop(G, U):
    G = np.asarray(G, dtype=np.float64)
    P = 0.5 * (1 + G.sum(0) / (np.abs(G).sum(0) + 1e-8))
    M = ((P > U) & (G > 0)) | ((P < U) & (G < 0))
    return (G * M).mean(0)


# ------------------------------------------------------------------------------------------------
# §9 test vectors

from vectors import TV as T  # noqa: E402
SPEC = {   # (native d, reference post-processed d or None)
    "pcgrad": {"T1": ((1, 1), (0.707107, 0.707107)), "T2": ((1, 2), (0.447213, 0.894427)),
               "T3": ((3.1, 4), (0.612572, 0.790415)), "T4": ((0, 0), None),
               "T5": ((2, 4), (0.447213, 0.894427))},
    "gradvac": {"T1": ((1, 1), None), "T2": ((1, 2), None), "T3": ((3.1, 4), None), "T4": ((0, 0), None),
                "T5": ((2, 4), None)},
    "config": {"T1": ((1, 1), None), "T2": ((0.5, 1.207107), None), "T3": ((4.08, 2.04), None),
               "T4": ((0, 0), None), "T5": ((2, 4), None)},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", ("reference", "clean"))
@pytest.mark.parametrize("key", sorted(SPEC))
def test_spec_vectors(key, pipeline, dtype):
    names = list(T)
    G = torch.tensor([T[n] for n in names], dtype=dtype)
    d, _, _ = run(key, G, pipeline)
    post_d = apply_post(key, pipeline, d, 2)
    for b, name in enumerate(names):
        native, ref = SPEC[key][name]
        torch.testing.assert_close(d[b], torch.tensor(native, dtype=dtype), rtol=1e-6, atol=2e-6)
        if pipeline == "reference" and ref is not None:
            torch.testing.assert_close(post_d[b], torch.tensor(ref, dtype=dtype), rtol=0, atol=2e-6)
    if pipeline == "clean":       # no post-processing in the clean pipeline for these three
        torch.testing.assert_close(post_d, d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", ("msi", "pomsi", "pomsi_static"))
def test_msi_spec_vectors_by_hand(key, dtype):
    names = list(T)
    G = torch.tensor([T[n] for n in names], dtype=dtype)
    for pipeline in ("reference", "clean"):
        d, _, aux = run(key, G, pipeline)
        for b, name in enumerate(names):
            g = np.array(T[name])
            if key != "msi":
                g = np_pcgrad(g, [[0, 1], [1, 0]], include_self=False)
            want, r = np_msi(g)
            np.testing.assert_allclose(d[b].numpy(), want, **tol(dtype))
        assert torch.equal(apply_post(key, pipeline, d, 2), d)


def test_msi_hand_values():
    """A few values worked out from §6.13's formulas with a calculator-style computation."""
    # T3: n = (5, 0.1), S = 2*0.5/25.01, nbar = 2.55.
    S = 1.0 / 25.01
    n1p = 5 ** S * 2.55 ** (1 - S)
    n2p = 0.1 ** S * 2.55 ** (1 - S)
    want = n1p * np.array([0.6, 0.8]) + n2p * np.array([1.0, 0.0])
    d, _, aux = run("msi", torch.tensor([T["T3"]], dtype=torch.float64))
    np.testing.assert_allclose(d[0].numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(aux["weights"][0].numpy(), [n1p / 5, n2p / 0.1], rtol=1e-12)
    # equal norms: S = 1, nothing changes
    d, _, aux = run("msi", torch.tensor([[[3.0, 4.0], [-4.0, 3.0]]], dtype=torch.float64))
    np.testing.assert_allclose(d[0].numpy(), [-1.0, 7.0], rtol=1e-12)
    np.testing.assert_allclose(aux["weights"][0].numpy(), [1.0, 1.0], rtol=1e-12)
    # a 100:1 imbalance is pulled almost to the mean norm 50.5
    d, _, aux = run("msi", torch.tensor([[[100.0, 0.0], [0.0, 1.0]]], dtype=torch.float64))
    new_norms = aux["weights"][0].numpy() * np.array([100.0, 1.0])
    assert np.all(np.abs(new_norms - 50.5) < 0.1 * 50.5)


# ------------------------------------------------------------------------------------------------
# edge cases

EDGE = {
    "zero": [[1.0, 2.0], [0.0, 0.0]],
    "both_zero": [[0.0, 0.0], [0.0, 0.0]],
    "equal": [[1.0, 2.0], [1.0, 2.0]],
    "opposite": [[1.0, 2.0], [-2.0, -4.0]],
    "parallel": [[1.0, 2.0], [2.0, 4.0]],
    "orthogonal": [[0.0, 3.0], [2.0, 0.0]],
}
EDGE_WANT = {
    "pcgrad": {"zero": (1, 2), "both_zero": (0, 0), "equal": (2, 4), "opposite": (0, 0), "parallel": (3, 6),
               "orthogonal": (2, 3)},
    "gradvac": {"zero": (1, 2), "both_zero": (0, 0), "equal": (2, 4), "opposite": (0, 0), "parallel": (3, 6),
                "orthogonal": (2, 3)},
    "config": {"zero": (1, 2), "both_zero": (0, 0), "equal": (2, 4), "opposite": (0, 0), "parallel": (3, 6),
               "orthogonal": (2.5, 2.5)},
    "msi": {"zero": (0.5, 1.0), "both_zero": (0, 0), "equal": (2, 4)},
    "pomsi": {"zero": (0.5, 1.0), "both_zero": (0, 0), "equal": (2, 4), "opposite": (0, 0)},
    "pomsi_static": {"zero": (0.5, 1.0), "both_zero": (0, 0), "equal": (2, 4), "opposite": (0, 0)},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", ("reference", "clean"))
@pytest.mark.parametrize("key", KEYS)
def test_edge_cases_finite(key, pipeline, dtype):
    names = list(EDGE)
    G = torch.tensor([EDGE[n] for n in names], dtype=dtype)
    d, state, aux = run(key, G, pipeline)
    assert torch.isfinite(d).all(), (key, d)
    for v in list(state.values()) + list(aux.values()):
        assert torch.isfinite(v).all()
    assert torch.isfinite(apply_post(key, pipeline, d, 2)).all()
    for b, name in enumerate(names):
        if name in EDGE_WANT.get(key, {}):
            torch.testing.assert_close(d[b], torch.tensor(EDGE_WANT[key][name], dtype=dtype), rtol=1e-6, atol=1e-6)
        elif key in ("msi", "pomsi", "pomsi_static"):
            g = np.array(EDGE[name])
            if key != "msi":
                g = np_pcgrad(g, [[0, 1], [1, 0]], include_self=False)
            np.testing.assert_allclose(d[b].numpy(), np_msi(g)[0], **tol(dtype))


def test_graddrop_edges():
    G = torch.tensor([EDGE[n] for n in EDGE], dtype=torch.float64)
    for pipeline in ("reference", "clean"):
        d, _, _ = run("graddrop", G, pipeline, keys=range(len(EDGE)))
        assert torch.isfinite(d).all()
        rows = dict(zip(EDGE, d))
        torch.testing.assert_close(rows["both_zero"], torch.zeros(2, dtype=torch.float64))
        torch.testing.assert_close(rows["zero"], torch.tensor([0.5, 1.0], dtype=torch.float64))   # mean of (g, 0)
        torch.testing.assert_close(rows["equal"], torch.tensor([1.0, 2.0], dtype=torch.float64))
        torch.testing.assert_close(rows["parallel"], torch.tensor([1.5, 3.0], dtype=torch.float64))
        # exactly opposite: P = 0.5, one sign per coordinate survives
        o = rows["opposite"].numpy() * 2
        assert o[0] in (1.0, -2.0) and o[1] in (2.0, -4.0)


# ------------------------------------------------------------------------------------------------
# PCGrad: orders, general K

def test_visit_ranks_matches_stable_argsort():
    rng = np.random.default_rng(0)
    for K in (2, 3, 4, 5):
        u = np.floor(rng.random((200, K, K)) * 3) / 3          # many ties
        r = shared.visit_ranks(torch.tensor(u)).numpy()
        want = np.argsort(np.argsort(u, axis=-1, kind="stable"), axis=-1, kind="stable")
        np.testing.assert_array_equal(r, want)


@pytest.mark.parametrize("K", (3, 4))
def test_pcgrad_explicit_orders_vs_numpy(K):
    rng = np.random.default_rng(K)
    B = 300
    G = rng.normal(size=(B, K, 2)) * rng.choice([0.1, 1, 10], size=(B, K, 1))
    perms = np.stack([np.stack([rng.permutation(K) for _ in range(K)]) for _ in range(B)])   # orders
    ranks = np.argsort(perms, axis=-1)                                                        # inverse
    for include_self, faithful in ((False, False), (True, True), (True, False)):
        gpc, W = shared.project(torch.tensor(G), torch.tensor(ranks, dtype=torch.float64),
                            include_self=include_self, faithful=faithful)
        for b in range(B):
            want = np_pcgrad(G[b], perms[b], include_self)
            np.testing.assert_allclose(gpc[b].numpy(), want, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(W @ torch.tensor(G), gpc, rtol=1e-9, atol=1e-9)


def test_pcgrad_self_visit_can_matter_for_k3():
    """The SAM-GS loop also visits j = i: with K = 3 that can change the result (never with K = 2)."""
    G = np.array([[1.0, -1.0], [6.0, 1.0], [-5.0, 4.0]])
    hits = 0
    for order in itertools.permutations(range(3)):
        a = np_pcgrad(G, [order] * 3, True)
        b = np_pcgrad(G, [order] * 3, False)
        hits += not np.allclose(a, b)
        ranks = torch.tensor(np.argsort([order] * 3, axis=-1), dtype=torch.float64)[None]
        np.testing.assert_allclose(shared.project(torch.tensor(G)[None], ranks, include_self=True)[0][0].numpy(), a,
                                   atol=1e-12)
    assert hits > 0


def test_pcgrad_k2_general_equals_closed_form():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(500, 2, 2))
    G = np.concatenate([G, np.array([EDGE[n] for n in EDGE])])
    Gt = torch.tensor(G)
    closed, Wc = shared.project_pair(Gt)
    for order in ((0, 1), (1, 0)):
        ranks = torch.tensor(np.argsort(np.array([order, order]), axis=-1), dtype=torch.float64)
        ranks = ranks.expand(len(G), 2, 2)
        for include_self in (False, True):
            gpc, W = shared.project(Gt, ranks, include_self=include_self)
            torch.testing.assert_close(gpc, closed, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(W, Wc, rtol=1e-12, atol=1e-12)
    # the spec's closed form d = (1 - c/a) g1 + (1 - c/b) g2 when c < 0
    a, b, c = (G[:, 0] ** 2).sum(1), (G[:, 1] ** 2).sum(1), (G[:, 0] * G[:, 1]).sum(1)
    neg = c < 0
    w1 = np.where(neg, 1 - c / np.where(neg, a, 1), 1)
    w2 = np.where(neg, 1 - c / np.where(neg, b, 1), 1)
    np.testing.assert_allclose(closed.sum(1).numpy(), w1[:, None] * G[:, 0] + w2[:, None] * G[:, 1], atol=1e-12)
    np.testing.assert_allclose(Wc.sum(1).numpy(), np.stack([w1, w2], 1), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", (3, 4))
@pytest.mark.parametrize("pipeline", ("reference", "clean"))
def test_pcgrad_step_orders_come_from_ctx_uniform(pipeline, K, dtype):
    rng = np.random.default_rng(10 + K)
    B = 200
    G = rng.normal(size=(B, K, 2))
    d, _, aux = run("pcgrad", torch.tensor(G, dtype=dtype), pipeline)
    orders = uniform_orders(pc.SALT_ORDER, B, K, dtype)
    for b in range(B):
        want = np_pcgrad(G[b], orders[b], include_self=(pipeline == "reference")).sum(0)
        np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-4 if dtype == torch.float32 else 1e-9,
                                   atol=1e-4 if dtype == torch.float32 else 1e-9)
    torch.testing.assert_close(combine(aux["weights"], torch.tensor(G, dtype=dtype)), d, **tol(dtype))


def test_pcgrad_orders_uniform_over_permutations():
    """Each run's visiting order is a uniformly random permutation, fresh at each step."""
    B, K = 6000, 3
    counts = {}
    for t in (1.0, 2.0):
        orders = uniform_orders(pc.SALT_ORDER, B, K, keys=range(B), t=t)
        for p, c in zip(*np.unique([tuple(o) for o in orders[:, 1]], axis=0, return_counts=True)):
            counts.setdefault(t, {})[tuple(p)] = c
        assert len(counts[t]) == 6
        for c in counts[t].values():
            assert abs(c - B / 6) < 5 * math.sqrt(B / 6 * 5 / 6)
    o1 = uniform_orders(pc.SALT_ORDER, B, K, keys=range(B), t=1.0)
    o2 = uniform_orders(pc.SALT_ORDER, B, K, keys=range(B), t=2.0)
    assert (o1 != o2).any(axis=(1, 2)).mean() > 0.9


def test_pcgrad_k3_order_dependence_is_real():
    """Sanity: with K = 3 the draws change d across keys for a fixed G (random=True matters for K >= 3)."""
    G = torch.tensor([[[1.0, 0.0], [-1.0, 1.5], [-1.0, -1.2]]], dtype=torch.float64).expand(64, 3, 2)
    d, _, _ = run("pcgrad", G, "clean")
    assert torch.unique(d.round(decimals=9), dim=0).shape[0] > 1
    d2, _, _ = run("pcgrad", G[:, :2], "clean")
    assert torch.unique(d2, dim=0).shape[0] == 1


# ------------------------------------------------------------------------------------------------
# GradDrop

def test_graddrop_explicit_draws_vs_numpy():
    rng = np.random.default_rng(2)
    for K in (2, 3, 4):
        G = rng.normal(size=(400, K, 2))
        G[::7, :, 0] = np.abs(G[::7, :, 0])               # some sign-consistent coordinates
        G[::11, :, 1] = 0.0                                # some all-zero coordinates
        U = rng.random((400, 2))
        d = gd.drop(torch.tensor(G), torch.tensor(U)).numpy()
        for b in range(400):
            np.testing.assert_allclose(d[b], np_graddrop(G[b], U[b]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_graddrop_step_uses_ctx_uniform(dtype):
    rng = np.random.default_rng(3)
    B, K = 300, 3
    G = torch.tensor(rng.normal(size=(B, K, 2)), dtype=dtype)
    d, _, aux = run("graddrop", G, "reference")
    assert aux == {}
    U = make_ctx("reference", B, K, dtype).uniform((2,), gd.SALT_U)
    torch.testing.assert_close(d, gd.drop(G, U), rtol=0, atol=0)


@pytest.mark.parametrize("K", (2, 3))
def test_graddrop_in_distribution(K):
    """E[K d_p] = P_p sum_k g_kp^+ + (1 - P_p) sum_k g_kp^- over many keys (methods-spec §5.7)."""
    g = np.array([[1.5, -2.0], [-0.5, 1.0], [0.7, 0.3]])[:K]
    B = 40000
    G = torch.tensor(g, dtype=torch.float64).expand(B, K, 2)
    for pipeline in ("reference", "clean"):
        d, _, _ = run("graddrop", G, pipeline, keys=range(B))
        Kd = (K * d).numpy()
        P = 0.5 * (1 + g.sum(0) / np.abs(g).sum(0))
        pos, neg = np.clip(g, 0, None).sum(0), np.clip(g, None, 0).sum(0)
        expect = P * pos + (1 - P) * neg
        sd = np.sqrt(P * (1 - P)) * (pos - neg) / math.sqrt(B)
        assert np.all(np.abs(Kd.mean(0) - expect) < 5 * sd + 1e-12), (Kd.mean(0), expect)
        for p in range(2):                                   # two-point support
            assert np.all(np.isclose(Kd[:, p], pos[p]) | np.isclose(Kd[:, p], neg[p]))
        # the engine's post-processing
        out = apply_post("graddrop", pipeline, d, K)
        if pipeline == "clean":
            torch.testing.assert_close(out, K * d)
        else:
            torch.testing.assert_close(out, clip1(K * d))


def test_graddrop_sign_consistent_coordinates_always_kept():
    B = 5000
    for dtype in DTYPES:
        G = torch.tensor([[1.0, -2.0], [3.0, -4.0]], dtype=dtype).expand(B, 2, 2)
        d, _, _ = run("graddrop", G, "clean", keys=range(B))
        torch.testing.assert_close(d, torch.tensor([2.0, -3.0], dtype=dtype).expand(B, 2))


# ------------------------------------------------------------------------------------------------
# GradVac

def test_gradvac_k2_multistep_vs_numpy():
    rng = np.random.default_rng(4)
    B, steps = 64, 8
    betas = np.array([0.5, 0.01, 0.0, 1.0] * (B // 4))
    seq = rng.normal(size=(steps, B, 2, 2))
    seq[:, :, 1] -= 0.8 * seq[:, :, 0]                       # plenty of conflict
    m = optimizers.get("gradvac")
    state = m.init(B, 2, 2, {}, dtype=torch.float64, device="cpu")
    ref_ph = np.zeros((B, 2, 2))
    for s in range(steps):
        d, state, aux = run("gradvac", torch.tensor(seq[s]), state=state, t=s + 1, beta=torch.tensor(betas))
        for b in range(B):
            want, ref_ph[b] = np_gradvac(seq[s, b], ref_ph[b], betas[b], [[1], [0]])
            np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(state["phi_hat"].numpy(), ref_ph, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(combine(aux["weights"], torch.tensor(seq[s])), d)
    assert np.abs(ref_ph).max() > 0.1          # the targets really moved


@pytest.mark.parametrize("K", (3, 4))
def test_gradvac_general_k_vs_numpy(K):
    rng = np.random.default_rng(20 + K)
    B, steps = 80, 4
    m = optimizers.get("gradvac")
    state = m.init(B, K, 2, {}, dtype=torch.float64, device="cpu")
    ref_ph = np.zeros((B, K, K))
    beta = 0.3
    for s in range(steps):
        G = rng.normal(size=(B, K, 2))
        d, state, aux = run("gradvac", torch.tensor(G), state=state, t=s + 1, beta=beta)
        orders = uniform_orders(gv.SALT_ORDER, B, K, t=s + 1)
        for b in range(B):
            want, ref_ph[b] = np_gradvac(G[b], ref_ph[b], beta, orders[b])
            np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(state["phi_hat"].numpy(), ref_ph, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(combine(aux["weights"], torch.tensor(G)), d)
    # explicit orders through vaccinate
    G = rng.normal(size=(B, K, 2))
    phi0 = rng.uniform(-0.9, 0.9, size=(B, K, K))
    perms = np.stack([np.stack([rng.permutation(K) for _ in range(K)]) for _ in range(B)])
    gvec, W, ph = gv.vaccinate(torch.tensor(G), torch.tensor(phi0), torch.full((B,), 0.2, dtype=torch.float64),
                               torch.tensor(np.argsort(perms, axis=-1), dtype=torch.float64))
    for b in range(B):
        want, wph = np_gradvac(G[b], phi0[b], 0.2, perms[b])
        np.testing.assert_allclose(gvec[b].sum(0).numpy(), want, rtol=1e-9, atol=1e-9)
        # the same tolerance as the direction: near phi = -1 a vaccinated gradient nearly cancels (|g| 1.8 -> 0.003
        # in run 45), so last-bit differences in the norms (numpy's against torch's) grow to ~1e-12 in phi_hat
        np.testing.assert_allclose(ph[b].numpy(), wph, rtol=1e-9, atol=1e-9)


def test_gradvac_zero_target_is_pcgrad():
    rng = np.random.default_rng(5)
    for K in (2, 3, 4):
        B = 200
        G = torch.tensor(rng.normal(size=(B, K, 2)))
        perms = np.stack([np.stack([rng.permutation(K) for _ in range(K)]) for _ in range(B)])
        ranks = torch.tensor(np.argsort(perms, axis=-1), dtype=torch.float64)
        gvec, _, _ = gv.vaccinate(G, torch.zeros(B, K, K, dtype=torch.float64),
                                  torch.zeros(B, dtype=torch.float64), ranks)
        gpc, _ = shared.project(G, ranks)
        torch.testing.assert_close(gvec, gpc, rtol=1e-6, atol=1e-6)


def test_gradvac_near_unit_targets_finite():
    G = torch.tensor([[[1.0, 0.0], [-1.0, 0.1]], [[1.0, 2.0], [-2.0, -4.0]], [[1.0, 0.0], [0.0, 0.0]]],
                     dtype=torch.float32)
    for target in (0.999999, 1.0, -1.0):
        state = {"phi_hat": torch.full((3, 2, 2), target)}
        d, st, _ = run("gradvac", G, state=state)
        assert torch.isfinite(d).all() and torch.isfinite(st["phi_hat"]).all()


# ------------------------------------------------------------------------------------------------
# ConFIG

@pytest.mark.parametrize("dtype", DTYPES)
def test_config_k2_general_equals_closed_form(dtype):
    rng = np.random.default_rng(6)
    G = np.concatenate([rng.normal(size=(400, 2, 2)) * rng.choice([0.01, 1, 100], size=(400, 2, 1)),
                        np.array([EDGE[n] for n in EDGE])])
    Gt = torch.tensor(G, dtype=dtype)
    closed = cfg.pair(Gt)
    # float32 loses digits for nearly (anti)parallel units through the normal equations (see the docstring)
    scale = Gt.abs().amax((1, 2))[:, None]
    err = (cfg.general(Gt) - closed).abs()
    assert (err <= (2e-3 if dtype == torch.float32 else 1e-10) * scale).all()
    # equal projections on both unit directions (conflict-free) when both are nonzero
    u = Gt / torch.linalg.vector_norm(Gt, dim=-1, keepdim=True).clamp(min=1e-30)
    proj = (u * closed[:, None, :]).sum(-1)
    ok = (torch.linalg.vector_norm(Gt, dim=-1) > 0).all(1)
    torch.testing.assert_close(proj[ok, 0], proj[ok, 1], rtol=1e-4, atol=1e-4)
    assert (proj[ok] >= -1e-5).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K,D", ((3, 2), (4, 2), (3, 3), (4, 3), (2, 3), (3, 4)))
def test_config_general_vs_numpy_pinv(K, D, dtype):
    rng = np.random.default_rng(100 * K + D)
    B = 300
    G = rng.normal(size=(B, K, D)) * rng.choice([0.1, 1, 10], size=(B, K, 1))
    d = cfg.general(torch.tensor(G, dtype=dtype)).numpy()
    f32 = dtype == torch.float32
    checked = 0
    for b in range(B):
        U = G[b] / np.linalg.norm(G[b], axis=1, keepdims=True)
        s = np.linalg.svd(U, compute_uv=False)
        if D > 2 and s[-1] < 0.1 * s[0]:
            continue          # D >= 3 uses a regularised solver: compare where pinv is well-conditioned
        t = (5e-4 if D > 2 else 1e-4) if f32 else (1e-8 if D > 2 else 1e-10)
        np.testing.assert_allclose(d[b], np_config(G[b]), rtol=0, atol=t * np.abs(G[b]).max())
        checked += 1
    assert checked > B // 3
    if D == 2:
        dd, _, aux = run("config", torch.tensor(G, dtype=dtype))
        assert aux == {}
        np.testing.assert_allclose(dd.numpy(), d)


@pytest.mark.parametrize("dtype", DTYPES)
def test_config_degenerate_general_k(dtype):
    G = torch.tensor([
        [[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]],            # rank 1: v ~ u (1 + 1 - 1)/3, d = 2 sqrt5 u
        [[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]],              # a zero task = the K = 2 problem of the others
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        [[1.0, 2.0], [-1.0, -2.0], [1.0, 2.0]],            # rank 1, sum a = 1
    ], dtype=dtype)
    d, _, _ = run("config", G)
    want = np.array([[2.0, 4.0], np_config([[1.0, 2.0], [3.0, 1.0]]), [0.0, 0.0], [1.0, 2.0]])
    want = torch.tensor(want, dtype=dtype)
    torch.testing.assert_close(d, want, rtol=1e-4, atol=1e-4)
    # two exactly opposite pairs: the least-squares v is 0, so d = 0 (not a rounding-noise direction)
    G4 = torch.tensor([[[1.0, 2.0], [-2.0, -4.0], [2.0, -1.0], [-3.0, 1.5]]], dtype=dtype)
    d4, _, _ = run("config", G4)
    torch.testing.assert_close(d4, torch.zeros(1, 2, dtype=dtype))


def test_config_spd_solvers_directly():
    rng = np.random.default_rng(7)
    for n in (2, 3, 4):
        A = rng.normal(size=(50, n, n))
        A = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(n)
        b = rng.normal(size=(50, n))
        x = (cfg._solve2_pinv if n == 2 else cfg._solve_tikhonov)(torch.tensor(A), torch.tensor(b)).numpy()
        np.testing.assert_allclose(x, np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-8, atol=1e-8)
        xe = cfg._solve_elim(torch.tensor(A), torch.tensor(b)).numpy()
        np.testing.assert_allclose(xe, np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-9, atol=1e-9)
    # rank-deficient PSD: pinv behaviour (2 x 2: any b; Tikhonov: b in the range of A, as ConFIG's U^T 1 is)
    for n in (2, 3):
        v = rng.normal(size=(50, n))
        A = v[:, :, None] * v[:, None, :]
        b = rng.normal(size=(50, n)) if n == 2 else v * rng.normal(size=(50, 1))
        x = (cfg._solve2_pinv if n == 2 else cfg._solve_tikhonov)(torch.tensor(A), torch.tensor(b)).numpy()
        want = np.stack([np.linalg.pinv(A[i]) @ b[i] for i in range(50)])
        np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# MSI / POMSI / POMSI-static

@pytest.mark.parametrize("K", (2, 3, 4))
def test_msi_vs_numpy(K):
    rng = np.random.default_rng(30 + K)
    B = 200
    G = rng.normal(size=(B, K, 2)) * rng.choice([0.01, 1, 100], size=(B, K, 1))
    G[::9, 0] = 0.0
    for dtype in DTYPES:
        d, _, aux = run("msi", torch.tensor(G, dtype=dtype))
        for b in range(B):
            want, r = np_msi(G[b])
            np.testing.assert_allclose(d[b].numpy(), want, **(dict(rtol=1e-4, atol=1e-4 * np.abs(G[b]).max())
                                                               if dtype == torch.float32 else tol(dtype)))
            np.testing.assert_allclose(aux["weights"][b].numpy(), r, rtol=1e-4 if dtype == torch.float32 else 1e-9)


@pytest.mark.parametrize("K", (3, 4))
def test_pomsi_general_k_vs_numpy(K):
    rng = np.random.default_rng(40 + K)
    B = 150
    G = rng.normal(size=(B, K, 2))
    d, _, aux = run("pomsi", torch.tensor(G))
    orders = uniform_orders(msi_mod.SALT_POMSI, B, K)
    for b in range(B):
        want, _ = np_msi(np_pcgrad(G[b], orders[b], include_self=False))
        np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(combine(aux["weights"], torch.tensor(G)), d)


@pytest.mark.parametrize("K", (2, 3))
def test_pomsi_static_freezes_first_step_factors(K):
    rng = np.random.default_rng(50 + K)
    B, steps = 60, 4
    m = optimizers.get("pomsi_static")
    state = m.init(B, K, 2, {}, dtype=torch.float64, device="cpu")
    frozen = np.zeros((B, K))
    for s in range(steps):
        G = rng.normal(size=(B, K, 2)) * rng.choice([0.1, 1, 10], size=(B, K, 1))
        d, state, aux = run("pomsi_static", torch.tensor(G), state=state, t=s + 1)
        orders = [[[1], [0]]] * B if K == 2 else uniform_orders(msi_mod.SALT_POMSI_STATIC, B, K, t=s + 1)
        for b in range(B):
            P = np_pcgrad(G[b], orders[b], include_self=False)
            if s == 0:
                want, frozen[b] = np_msi(P)
            else:
                want = (frozen[b][:, None] * P).sum(0)
            np.testing.assert_allclose(d[b].numpy(), want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(state["scale"].numpy(), frozen, rtol=1e-12)
        torch.testing.assert_close(combine(aux["weights"], torch.tensor(G)), d)
        if s == 0 and K == 2:                    # the first step is POMSI's
            torch.testing.assert_close(d, run("pomsi", torch.tensor(G))[0])


# ------------------------------------------------------------------------------------------------
# weights, metadata (row independence, traceability and the C kernel: tests/test_method_contract.py)

@pytest.mark.parametrize("key", ("pcgrad", "gradvac", "msi", "pomsi", "pomsi_static"))
@pytest.mark.parametrize("K", (2, 3, 4))
def test_weights_reconstruct_direction(key, K):
    rng = np.random.default_rng(60 + K)
    G = torch.tensor(rng.normal(size=(100, K, 2)))
    for pipeline in ("reference", "clean"):
        d, _, aux = run(key, G, pipeline)
        torch.testing.assert_close(combine(aux["weights"], G), d, rtol=1e-9, atol=1e-9)


def test_method_metadata():
    want = {
        "pcgrad": ("gradient surgery", (), True, False, (False, True), (False, False)),
        "graddrop": ("gradient surgery", (), True, False, (True, True), (True, False)),
        "gradvac": ("similarity-aware", ("beta",), True, False, (False, False), (False, False)),
        "config": ("gradient surgery", (), False, False, (False, False), (False, False)),
        "msi": ("similarity-aware", (), False, True, (False, False), (False, False)),
        "pomsi": ("similarity-aware", (), True, True, (False, False), (False, False)),
        "pomsi_static": ("similarity-aware", (), True, True, (False, False), (False, False)),
    }
    for key, (family, hps, random, recon, ref, clean) in want.items():
        m = optimizers.get(key)
        assert m.key == key and m.family == family
        assert tuple(h.name for h in m.hparams) == hps
        assert m.random == random and m.reconstructed == recon
        assert (m.reference.times_k, m.reference.clip) == ref
        assert (m.clean.times_k, m.clean.clip) == clean
        assert set(m.pipelines) == {"reference", "clean"}
        if recon:
            assert "reconstructed" in m.summary
        assert m.step.__module__ and m.__doc__ is not None
    assert optimizers.get("gradvac").defaults() == {"beta": 0.5}
    for key in ("msi", "pomsi", "pomsi_static"):
        assert "RECONSTRUCTED" in msi_mod.__doc__
