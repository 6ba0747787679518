"""Loss-weighting methods: scaleinvls, rlw, dwa, uw, famo, gradnorm (methods-spec.md §5.2-§5.5, §5.13, §6.2).

Expected values come from hand arithmetic on the test vectors of methods-spec.md §9, and, for the stateful
methods, from independent float64 numpy re-implementations written here from the spec text (several steps,
K = 2, 3, 4). FAMO and GradNorm's logit updates are also checked against torch autograd + torch.optim.Adam
applied to the published objectives, so the hand-derived VJPs are tested too.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optimizers
from optimizers import contract
from optimizers.base import Context, Post, clip1

KEYS = ("scaleinvls", "rlw", "dwa", "uw", "famo", "gradnorm")
DTYPES = (torch.float32, torch.float64)
PIPES = ("reference", "clean")
FLOOR = -21.0

# §9 test vectors (K = 2, D = 2; rows g1, g2)
from vectors import TV  # noqa: E402
EDGES = {
    "zero_one": [[0.0, 0.0], [1.0, 2.0]],
    "zero_both": [[0.0, 0.0], [0.0, 0.0]],
    "equal": [[1.0, 2.0], [1.0, 2.0]],
    "opposite": [[1.0, 2.0], [-1.0, -2.0]],
    "parallel": [[1.0, 2.0], [3.0, 6.0]],
}


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# harness

def make_ctx(pipeline, B, K, dtype, t=1.0, keys=None, floor=FLOOR):
    key = torch.arange(B, dtype=torch.int64) * 7 + 3 if keys is None else torch.as_tensor(keys, dtype=torch.int64)
    fl = torch.as_tensor(floor, dtype=dtype)
    fl = fl.expand(B, K).clone() if fl.dim() < 2 else fl
    return Context(pipeline, torch.full((B,), float(t), dtype=dtype), key, fl)


def hparams(method, B, dtype, **over):
    hp = {}
    for h in method.hparams:
        v = over.get(h.name, h.default)
        if h.static:
            hp[h.name] = v
        else:
            hp[h.name] = torch.as_tensor(v, dtype=dtype).expand(B).clone()
    return hp


def rollout(key, Gs, Ls, pipeline, dtype=torch.float64, keys=None, floor=FLOOR, **over):
    """Run ``len(Gs)`` steps. Gs [n, B, K, D], Ls [n, B, K] (numpy or torch). Returns d [n, B, D], w [n, B, K]."""
    m = optimizers.get(key)
    Gs = torch.as_tensor(np.array(Gs), dtype=dtype)
    Ls = torch.as_tensor(np.array(Ls), dtype=dtype)
    _, B, K, D = Gs.shape
    hp = hparams(m, B, dtype, **over)
    state = m.init(B, K, D, hp, dtype=dtype, device="cpu")
    ds, ws = [], []
    for i in range(Gs.shape[0]):
        ctx = make_ctx(pipeline, B, K, dtype, t=i + 1, keys=keys, floor=floor)
        d, state, aux = m.step(Gs[i], Ls[i], state, hp, ctx)
        assert d.shape == (B, D) and d.dtype == dtype
        assert set(m.aux) <= set(aux)
        for name in state:
            assert state[name].shape[0] == B
        ds.append(d)
        ws.append(aux["weights"])
    return torch.stack(ds), torch.stack(ws)


def one_step(key, G, L, pipeline, dtype=torch.float64, **over):
    d, w = rollout(key, np.asarray(G, dtype=np.float64)[None, None], np.asarray(L, dtype=np.float64)[None, None],
                   pipeline, dtype, **over)
    return d[0, 0], w[0, 0]


def post(key, pipeline, d):
    p = optimizers.get(key).post(pipeline)
    if p.times_k:
        d = d * 2
    return clip1(d[None])[0] if p.clip else d


def rand_problem(n, B, K, D=2, seed=0, lo=-19.0, hi=10.0):
    rs = np.random.default_rng(seed)
    return rs.normal(size=(n, B, K, D)) * rs.uniform(0.1, 3.0, size=(n, B, K, 1)), rs.uniform(lo, hi, size=(n, B, K))


# ------------------------------------------------------------------------------------------------
# registry and metadata

@pytest.mark.parametrize("key", KEYS)
def test_registered_with_family_and_docs(key):
    m = optimizers.get(key)
    assert m.family == "loss weighting"
    assert set(m.pipelines) == set(PIPES)
    assert m.paper and m.summary
    mod = __import__(f"optimizers.methods.{key}", fromlist=["x"])
    assert "reference" in mod.__doc__ and "clean" in mod.__doc__
    # loss-weighting methods: no x K and no effective clip in either pipeline (methods-spec.md §1.1)
    assert m.reference == Post() and m.clean == Post()
    assert m.random == (key == "rlw")


def test_hparam_defaults():
    assert optimizers.get("dwa").defaults() == {"iteration_window": 25, "temp": 2.0}
    assert optimizers.get("dwa").hparam("iteration_window").static
    assert optimizers.get("uw").defaults() == {"s_lr": 0.025}
    assert optimizers.get("famo").defaults() == {"w_lr": 0.025, "gamma": 1e-5}
    assert optimizers.get("gradnorm").defaults() == {"alpha": 1.5, "s_lr": 0.025}
    for key in ("scaleinvls", "rlw"):
        assert optimizers.get(key).hparams == ()
    for key in KEYS:
        m = optimizers.get(key)
        for h in m.hparams:
            assert h.low <= h.default <= h.high
            assert m.resolve({})[h.name] == h.default


# ------------------------------------------------------------------------------------------------
# §9 test vectors, first step, computed by hand

L_POS = [2.0, 4.0]


def expected_first_step(key, pipeline, G, L):
    """Hand formulas for the first step (state at init)."""
    g1, g2 = np.asarray(G)
    L1, L2 = L
    if key == "scaleinvls":
        if pipeline == "reference":
            return g1 / L1 + g2 / L2
        return g1 / (L1 - FLOOR) + g2 / (L2 - FLOOR)
    if key == "dwa":                      # lambda = 1 for the first W + 1 calls
        return (g1 + g2) / 2 if pipeline == "reference" else g1 + g2
    if key == "uw":                       # s = 0 (reference: always; clean: before its first update)
        return 0.5 * (g1 + g2)
    if key == "famo":                     # z uniform: a proportional to 1 / (L - floor + 1e-8)
        D1, D2 = L1 - FLOOR + 1e-8, L2 - FLOOR + 1e-8
        return (g1 / D1 + g2 / D2) / (1 / D1 + 1 / D2)
    if key == "gradnorm":                 # w = 2 softmax(1, 1) = 1
        return g1 + g2
    raise KeyError(key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", PIPES)
@pytest.mark.parametrize("name", TV)
@pytest.mark.parametrize("key", ["scaleinvls", "dwa", "uw", "famo", "gradnorm"])
def test_vectors(key, name, pipeline, dtype):
    G = TV[name]
    d, _ = one_step(key, G, L_POS, pipeline, dtype)
    exp = expected_first_step(key, pipeline, G, L_POS)
    torch.testing.assert_close(d, torch.tensor(exp, dtype=dtype), **tol(dtype))
    # the written gradient: no x K, no clip for these methods, so it is d itself
    torch.testing.assert_close(post(key, pipeline, d), torch.tensor(exp, dtype=dtype), **tol(dtype))


def test_vectors_literal_values():
    """A few of the above spelled out as numbers."""
    d, w = one_step("scaleinvls", TV["T2"], [2.0, 4.0], "reference")
    assert d.tolist() == pytest.approx([0.75, 0.25])            # (2,0)/2 + (-1,1)/4
    torch.testing.assert_close(w, torch.tensor([0.5, 0.25], dtype=torch.float64))
    d, _ = one_step("scaleinvls", TV["T2"], [-2.0, 4.0], "reference")
    assert d.tolist() == pytest.approx([-1.25, 0.25])           # a negative loss flips task 1 (§1.2-4)
    d, _ = one_step("scaleinvls", TV["T2"], [-2.0, 4.0], "clean")
    assert d.tolist() == pytest.approx([2 / 19 - 1 / 25, 1 / 25])
    d, _ = one_step("uw", TV["T3"], L_POS, "reference")
    assert d.tolist() == pytest.approx([1.55, 2.0])
    d, _ = one_step("dwa", TV["T1"], L_POS, "reference")
    assert d.tolist() == pytest.approx([0.5, 0.5])
    d, w = one_step("famo", TV["T1"], [1.0, 3.0], "reference")  # D = 22, 24: a = (12/23, 11/23)
    assert d.tolist() == pytest.approx([12 / 23, 11 / 23])
    assert w.tolist() == pytest.approx([12 / 23, 11 / 23])
    d, w = one_step("gradnorm", TV["T4"], L_POS, "clean")
    assert d.tolist() == pytest.approx([-1.0, -2.0]) and w.tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TV)
def test_rlw_vectors(name, dtype):
    G = torch.tensor(TV[name], dtype=dtype)
    for pipeline in PIPES:
        d, w = one_step("rlw", TV[name], L_POS, pipeline, dtype)
        assert torch.all(w > 0) and float(w.sum()) == pytest.approx(1.0, abs=1e-6)
        torch.testing.assert_close(d, w[0] * G[0] + w[1] * G[1], **tol(dtype))
        torch.testing.assert_close(post("rlw", pipeline, d), d)
    if name == "T5":                     # equal gradients: any convex weights give g itself
        torch.testing.assert_close(d, G[0], **tol(dtype))
    if name == "T4":                     # opposite: d stays on the line of g1
        assert float(d[0] * 2 - d[1]) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# independent float64 numpy re-implementations (spec text), several steps

def np_adam(x, g, m, v, n, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Textbook Adam (Kingma & Ba, torch's placement of eps); n = the 1-based step count."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    x = x - lr / (1 - b1 ** n) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** n) + eps)
    return x, m, v


def np_scaleinvls(Gs, Ls, pipeline):
    sh = Ls if pipeline == "reference" else Ls - FLOOR
    w = 1.0 / sh
    return np.einsum("nbk,nbkd->nbd", w, Gs), w


def np_dwa_reference(Gs, Ls, W, T):
    """SAM-GS / Nash-MTL per-iteration DWA, one run at a time, as the spec's pseudo-code reads."""
    n, B, K, D = Gs.shape
    ds, ws = np.zeros((n, B, D)), np.zeros((n, B, K))
    for b in range(B):
        costs = np.ones((2 * W, K))
        lam = np.ones(K)
        r = 0
        for i in range(n):
            costs = np.concatenate([costs[1:], Ls[i, b][None]], 0)
            if r > W:
                ratio = costs[W:].mean(0) / costs[:W].mean(0)
                with np.errstate(over="ignore", invalid="ignore"):
                    e = np.exp(ratio / T)
                    lam = K * e / e.sum()
            ds[i, b] = (lam[:, None] * Gs[i, b]).mean(0)         # loss = mean_k(lambda_k L_k)
            ws[i, b] = lam / K
            r += 1
    return ds, ws


def np_dwa_clean(Gs, Ls, W, T):
    """The original DWA with epochs = windows of W iterations, on shifted losses, loss = sum."""
    n, B, K, D = Gs.shape
    ds, ws = np.zeros((n, B, D)), np.zeros((n, B, K))
    for b in range(B):
        hist = []
        for i in range(n):
            e = i // W                                           # the window (epoch) of step i
            if e >= 2:
                last = np.mean(hist[(e - 1) * W:e * W], 0)
                before = np.mean(hist[(e - 2) * W:(e - 1) * W], 0)
                x = last / before / T
                lam = K * np.exp(x - x.max()) / np.exp(x - x.max()).sum()
            else:
                lam = np.ones(K)
            hist.append(Ls[i, b] - FLOOR)
            ds[i, b] = (lam[:, None] * Gs[i, b]).sum(0)
            ws[i, b] = lam
    return ds, ws


def np_uw(Gs, Ls, pipeline, lr=0.025):
    n, B, K, D = Gs.shape
    s, m, v = np.zeros((B, K)), np.zeros((B, K)), np.zeros((B, K))
    ds, ws = np.zeros((n, B, D)), np.zeros((n, B, K))
    for i in range(n):
        w = 0.5 * np.exp(-s)
        ds[i], ws[i] = np.einsum("bk,bkd->bd", w, Gs[i]), w
        if pipeline == "clean":
            grad = 0.5 * (1 - np.exp(-s) * (Ls[i] - FLOOR))      # d/ds of 0.5 (exp(-s) L + s)
            s, m, v = np_adam(s, grad, m, v, i + 1, lr)
    return ds, ws


def np_famo(Gs, Ls, lr=0.025, gamma=1e-5, floor=FLOOR):
    n, B, K, D = Gs.shape
    w, m, v = np.zeros((B, K)), np.zeros((B, K)), np.zeros((B, K))
    prev = None
    ds, ws = np.zeros((n, B, D)), np.zeros((n, B, K))
    for i in range(n):
        Dn = Ls[i] - floor + 1e-8
        if i > 0:
            delta = np.log(prev - floor + 1e-8) - np.log(Dn)
            z = np.exp(w) / np.exp(w).sum(-1, keepdims=True)
            # softmax Jacobian J = diag(z) - z z^T (symmetric); grad = J delta, plus L2 weight decay
            J = np.einsum("bk,kj->bkj", z, np.eye(K)) - z[:, :, None] * z[:, None, :]
            grad = np.einsum("bkj,bj->bk", J, delta) + gamma * w
            w, m, v = np_adam(w, grad, m, v, i, lr)
        prev = Ls[i]
        z = np.exp(w) / np.exp(w).sum(-1, keepdims=True)
        a = (z / Dn) / (z / Dn).sum(-1, keepdims=True)
        ds[i], ws[i] = np.einsum("bk,bkd->bd", a, Gs[i]), a
    return ds, ws


def np_gradnorm(Gs, Ls, alpha=1.5, lr=0.025):
    n, B, K, D = Gs.shape
    s, m, v = np.ones((B, K)), np.zeros((B, K)), np.zeros((B, K))
    L0 = None
    ds, ws = np.zeros((n, B, D)), np.zeros((n, B, K))
    for i in range(n):
        l = Ls[i] - FLOOR
        z = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
        w = K * z
        ds[i], ws[i] = np.einsum("bk,bkd->bd", w, Gs[i]), w
        if i == 0:
            L0 = l
            continue
        nrm = np.linalg.norm(Gs[i], axis=-1)
        Gk = w * nrm
        ratio = l / L0
        r = ratio / ratio.mean(-1, keepdims=True)
        target = Gk.mean(-1, keepdims=True) * r ** alpha
        dG = np.sign(Gk - target) * nrm                         # dLgrad/dw_k
        J = K * (np.einsum("bk,kj->bkj", z, np.eye(K)) - z[:, :, None] * z[:, None, :])   # dw/ds
        s, m, v = np_adam(s, np.einsum("bkj,bj->bk", J, dG), m, v, i, lr)
    return ds, ws


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("pipeline", PIPES)
def test_scaleinvls_vs_numpy(K, pipeline):
    Gs, Ls = rand_problem(3, 6, K, seed=K)
    ed, ew = np_scaleinvls(Gs, Ls, pipeline)
    d, w = rollout("scaleinvls", Gs, Ls, pipeline)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-12)


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("W", [1, 3, 4])
def test_dwa_reference_vs_numpy(K, W):
    n = 6 * W + 5
    Gs, Ls = rand_problem(n, 5, K, seed=10 + K + W, lo=1.0, hi=10.0)   # positive: finite ratios
    ed, ew = np_dwa_reference(Gs, Ls, W, 2.0)
    d, w = rollout("dwa", Gs, Ls, "reference", iteration_window=W)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-11)
    # lambda moves for the first time at the (W+2)-th call
    assert np.allclose(ew[:W + 1], 1.0 / K) and not np.allclose(ew[W + 1], 1.0 / K)


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("W", [1, 3, 4])
def test_dwa_clean_vs_numpy(K, W):
    n = 6 * W + 2
    Gs, Ls = rand_problem(n, 5, K, seed=20 + K + W)
    ed, ew = np_dwa_clean(Gs, Ls, W, 1.5)
    d, w = rollout("dwa", Gs, Ls, "clean", iteration_window=W, temp=1.5)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-11)
    # weights held for a whole window: constant within windows, first change at step 2W + 1
    assert np.allclose(ew[:2 * W], 1.0)
    for e in range(2, n // W):
        blk = ew[e * W:(e + 1) * W]
        assert np.allclose(blk, blk[0])


def test_dwa_reference_goes_nan_clean_stays_finite():
    """A window mean near zero (losses crossing 0) overflows the published exp: NaN, as in the authors' runs."""
    W, K = 2, 2
    # calls 1..4 fill the buffer; call 4 (r = 3 > W) uses rows [L1, L2 | L3, L4]
    Ls = np.array([[1.0, 1.0], [-0.999, 1.0], [5.0, 1.0], [5.0, 1.0]])[:, None]   # old mean 5e-4 -> ratio 1e4
    Gs = np.ones((4, 1, K, 2))
    for dtype in DTYPES:
        d, w = rollout("dwa", Gs, Ls, "reference", dtype=dtype, iteration_window=W)
        assert torch.isfinite(d[:3]).all()
        assert torch.isnan(d[3]).all()
        assert torch.isnan(w[3, 0, 0]) and w[3, 0, 1] == 0            # K inf / inf and K e / inf
        d, w = rollout("dwa", Gs, Ls, "clean", dtype=dtype, iteration_window=W)
        assert torch.isfinite(d).all() and torch.isfinite(w).all()
    # after W + 1 calls the weights are recomputed every call (the NaN of a run persists through theta)
    Ls2 = np.concatenate([Ls, np.ones((2 * W, 1, K))])
    d, _ = rollout("dwa", np.ones((4 + 2 * W, 1, K, 2)), Ls2, "reference", iteration_window=W)
    assert torch.isnan(d[3]).all() and torch.isfinite(d[-1]).all()


def test_dwa_clean_nonpositive_window_mean_is_neutral():
    W, K = 1, 2
    # shifted losses: window 0 = (0, 1) -> ratio of task 1 undefined -> 1 (neutral)
    Ls = np.array([[FLOOR, FLOOR + 1], [FLOOR + 2, FLOOR + 2], [FLOOR + 3, FLOOR + 3]])[:, None]
    d, w = rollout("dwa", np.ones((3, 1, K, 2)), Ls, "clean", iteration_window=W, temp=1.0)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(w[2, 0].numpy(), 2 * np.exp(x) / np.exp(x).sum(), rtol=1e-12)


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("pipeline", PIPES)
def test_uw_vs_numpy(K, pipeline):
    Gs, Ls = rand_problem(12, 5, K, seed=30 + K)
    ed, ew = np_uw(Gs, Ls, pipeline, lr=0.05)
    d, w = rollout("uw", Gs, Ls, pipeline, s_lr=0.05)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-10)
    if pipeline == "reference":             # s frozen at 0: d = 0.5 sum_k g_k at every step
        np.testing.assert_allclose(d.numpy(), 0.5 * Gs.sum(2), rtol=1e-12)
    else:
        assert not np.allclose(ew[-1], 0.5)


def test_uw_clean_learns_log_shifted_loss():
    """With a fixed loss the trained s approaches log(L - floor): weight 0.5 / (L - floor)."""
    K, n = 2, 4000
    Ls = np.broadcast_to(np.array([-20.0, 3.0]), (n, 1, K))
    Gs = np.ones((n, 1, K, 2))
    _, w = rollout("uw", Gs, Ls, "clean", s_lr=0.05)
    np.testing.assert_allclose(w[-1, 0].numpy(), 0.5 / (Ls[0, 0] - FLOOR), rtol=1e-2)


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("pipeline", PIPES)
def test_famo_vs_numpy(K, pipeline):
    Gs, Ls = rand_problem(12, 5, K, seed=40 + K)
    ed, ew = np_famo(Gs, Ls, lr=0.05, gamma=1e-3)
    d, w = rollout("famo", Gs, Ls, pipeline, w_lr=0.05, gamma=1e-3)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-10)
    np.testing.assert_allclose(w.sum(-1).numpy(), 1.0, rtol=1e-12)


def test_famo_vs_torch_autograd_and_adam():
    """The published update: autograd VJP of softmax with grad_outputs=delta, torch.optim.Adam(weight_decay)."""
    K, n = 3, 10
    Gs, Ls = rand_problem(n, 1, K, seed=7)
    d, w_ours = rollout("famo", Gs, Ls, "reference", w_lr=0.05, gamma=1e-3)
    minL = torch.full((K,), FLOOR, dtype=torch.float64)
    logits = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05, weight_decay=1e-3)
    prev = None
    for i in range(n):
        cur = torch.tensor(Ls[i, 0])
        if i > 0:
            delta = (prev - minL + 1e-8).log() - (cur - minL + 1e-8).log()
            g = torch.autograd.grad(torch.softmax(logits, -1), logits, grad_outputs=delta)[0]
            opt.zero_grad()
            logits.grad = g
            opt.step()
        prev = cur
        theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        Gi = torch.tensor(Gs[i, 0])
        losses = cur + Gi @ theta                              # a loss with value cur and gradients Gi
        z = torch.softmax(logits.detach(), -1)
        Dl = losses - minL + 1e-8
        c = (z / Dl).sum().detach()
        (Dl.log() * z / c).sum().backward()
        np.testing.assert_allclose(d[i, 0].numpy(), theta.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_famo_reference_nan_below_floor_clean_finite():
    """A loss below the floor: the weighting's gradient z/(c D) is still finite (with a negative weight),
    the next logit update takes the log of a negative number and everything turns NaN (as published
    with min_losses = 0, methods-spec.md §1.2-2). Clean clamps D to 1e-8 and stays finite."""
    G = np.array(TV["T2"])
    Ls = np.array([[FLOOR - 1.0, 2.0], [FLOOR - 0.5, 1.5], [FLOOR - 3, 1.0]])[:, None]
    Gs = np.broadcast_to(G, (3, 1, 2, 2))
    d, w = rollout("famo", Gs, Ls, "reference")
    assert torch.isfinite(d[0]).all() and bool((w[0] < 0).any())
    assert torch.isnan(d[1:]).all() and torch.isnan(w[1:]).all()
    d, w = rollout("famo", Gs, Ls, "clean")
    assert torch.isfinite(d).all() and torch.isfinite(w).all()
    assert torch.all(w >= 0)


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("pipeline", PIPES)
def test_gradnorm_vs_numpy(K, pipeline):
    Gs, Ls = rand_problem(12, 5, K, seed=50 + K)
    ed, ew = np_gradnorm(Gs, Ls, alpha=1.2, lr=0.05)
    d, w = rollout("gradnorm", Gs, Ls, pipeline, alpha=1.2, s_lr=0.05)
    np.testing.assert_allclose(d.numpy(), ed, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), ew, rtol=1e-10)
    np.testing.assert_allclose(w.sum(-1).numpy(), K, rtol=1e-12)
    assert not np.allclose(ew[-1], 1.0)


def test_gradnorm_vs_torch_autograd_and_adam():
    """LibMTL's objective differentiated by autograd (|K softmax(s)_k g_k| norms) and torch.optim.Adam."""
    K, n, alpha = 3, 8, 1.5
    Gs, Ls = rand_problem(n, 1, K, seed=9)
    d, w_ours = rollout("gradnorm", Gs, Ls, "clean", alpha=alpha, s_lr=0.05)
    s = torch.ones(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    L0 = torch.tensor(Ls[0, 0]) - FLOOR
    for i in range(n):
        Gi = torch.tensor(Gs[i, 0])
        ws = K * torch.softmax(s, -1)
        np.testing.assert_allclose(w_ours[i, 0].numpy(), ws.detach().numpy(), rtol=1e-9)
        np.testing.assert_allclose(d[i, 0].numpy(), (ws.detach()[:, None] * Gi).sum(0).numpy(), rtol=1e-9)
        if i == 0:
            continue
        Gper = torch.sqrt(((ws[:, None] * Gi) ** 2).sum(-1))
        Li = (torch.tensor(Ls[i, 0]) - FLOOR) / L0
        r = Li / Li.mean()
        const = (Gper.mean() * r ** alpha).detach()
        opt.zero_grad()
        (Gper - const).abs().sum().backward()
        opt.step()


# ------------------------------------------------------------------------------------------------
# RLW in distribution

@pytest.mark.parametrize("K", [2, 3, 4])
def test_rlw_distribution(K):
    B = 20000
    G = torch.randn(B, K, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    L = torch.ones(B, K, dtype=torch.float64)
    m = optimizers.get("rlw")
    ctx = make_ctx("reference", B, K, torch.float64, t=5, keys=torch.arange(B) * 3 + 11)
    d, _, aux = m.step(G, L, {}, {}, ctx)
    w = aux["weights"]
    torch.testing.assert_close(w.sum(-1), torch.ones(B, dtype=torch.float64))
    torch.testing.assert_close(d, (w[..., None] * G).sum(1))
    assert torch.all(w > 0)
    # mean weight 1/K (by symmetry); spread matches softmax of independent standard normals (numpy MC)
    se = w.std(0) / math.sqrt(B)
    assert torch.all((w.mean(0) - 1.0 / K).abs() < 5 * se)
    eps = np.random.default_rng(0).normal(size=(200000, K))
    ref = np.exp(eps) / np.exp(eps).sum(-1, keepdims=True)
    np.testing.assert_allclose(w.std(0).numpy(), ref.std(0), rtol=0.03)
    # the draws behind the weights are uncorrelated across tasks: log-ratio of two weights ~ N(0, 2)
    lr_ = torch.log(w[:, 0] / w[:, 1])
    assert abs(float(lr_.var()) - 2.0) < 0.1
    # reproducible for a fixed key and t; other keys, other steps differ
    d2, _, aux2 = m.step(G, L, {}, {}, ctx)
    assert torch.equal(aux2["weights"], w) and torch.equal(d2, d)
    other_key = make_ctx("reference", B, K, torch.float64, t=5, keys=torch.arange(B) * 3 + 12)
    other_t = make_ctx("reference", B, K, torch.float64, t=6, keys=torch.arange(B) * 3 + 11)
    for c in (other_key, other_t):
        w3 = m.step(G, L, {}, {}, c)[2]["weights"]
        assert (w3 - w).abs().amax(-1).gt(1e-6).float().mean() > 0.99
    # the same key gives the same weights in both pipelines and in any batch
    sub = make_ctx("clean", 5, K, torch.float64, t=5, keys=(torch.arange(B) * 3 + 11)[100:105])
    torch.testing.assert_close(m.step(G[100:105], L[100:105], {}, {}, sub)[2]["weights"], w[100:105])


def test_rlw_over_steps_mean():
    """Averaged over steps for one run, the weights also average 1/K."""
    K, n = 3, 1000
    Gs = np.ones((n, 1, K, 2))
    _, w = rollout("rlw", Gs, np.ones((n, 1, K)), "reference", keys=[12345])
    assert torch.all((w[:, 0].mean(0) - 1 / K).abs() < 5 * w[:, 0].std(0) / math.sqrt(n))


# ------------------------------------------------------------------------------------------------
# edge cases: finite in clean; documented behaviour in reference

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("edge", EDGES)
def test_edges_finite(key, edge, dtype):
    G = np.asarray(EDGES[edge])
    n = 8
    Gs = np.broadcast_to(G, (n, 1, 2, 2))
    Ls = np.broadcast_to(np.array([3.0, 1.0]), (n, 1, 2)) + np.linspace(0, -0.5, n)[:, None, None]
    for pipeline in PIPES:
        d, w = rollout(key, Gs, Ls, pipeline, dtype=dtype, **({"iteration_window": 2} if key == "dwa" else {}))
        assert torch.isfinite(d).all() and torch.isfinite(w).all(), (key, edge, pipeline)
        if edge == "zero_both":
            assert torch.all(d == 0)
        if edge in ("equal", "parallel", "opposite"):    # d stays on the line of the gradients
            assert torch.allclose(d[:, 0, 0] * 2, d[:, 0, 1], atol=1e-5)


def test_scaleinvls_zero_loss():
    G = TV["T1"]
    d, _ = one_step("scaleinvls", G, [0.0, 1.0], "reference")      # g / 0 as published: inf
    assert torch.isinf(d[0])
    d, _ = one_step("scaleinvls", G, [FLOOR, 1.0], "clean")         # at the floor: clamped, finite
    assert torch.isfinite(d).all() and float(d[0]) == pytest.approx(1e8)


def test_gradnorm_zero_gradients():
    """n_k = 0: the task's weighted norm is 0; the logit gradient stays finite (sign(0) = 0 at a tie)."""
    Gs = np.broadcast_to(np.array([[0.0, 0.0], [0.0, 0.0]]), (5, 1, 2, 2))
    Ls = np.broadcast_to(np.array([3.0, 1.0]), (5, 1, 2))
    d, w = rollout("gradnorm", Gs, Ls, "clean")
    assert torch.all(w == 1.0) and torch.all(d == 0)


# ------------------------------------------------------------------------------------------------
# dtypes (row independence and traceability: tests/test_method_contract.py)

@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("pipeline", PIPES)
def test_float32_matches_float64(key, pipeline):
    n, B, K = 40, 4, 2
    Gs, Ls = rand_problem(n, B, K, seed=70, lo=1.0, hi=5.0)
    over = {"iteration_window": 3} if key == "dwa" else {}
    d64, w64 = rollout(key, Gs, Ls, pipeline, dtype=torch.float64, **over)
    d32, w32 = rollout(key, Gs, Ls, pipeline, dtype=torch.float32, **over)
    assert d32.dtype == torch.float32 and w32.dtype == torch.float32
    torch.testing.assert_close(d32.double(), d64, rtol=2e-4, atol=2e-5)
    torch.testing.assert_close(w32.double(), w64, rtol=2e-4, atol=2e-5)
    for name, v in optimizers.get(key).init(B, K, 2, hparams(optimizers.get(key), B, torch.float32, **over),
                                            dtype=torch.float32, device="cpu").items():
        assert v.dtype == torch.float32, name


# ------------------------------------------------------------------------------------------------
# DWA's loss buffer in the traced step

def test_the_traced_dwa_step_keeps_a_2w_loss_buffer_per_run():
    t = contract.trace(optimizers.get("dwa"), K=2, pipeline="reference", B=11)
    out = t.graph(*t.state, *t.params)                       # (t + 1, C, lam, phase, r, d, weights)
    assert out[1].shape == (11, 50, 2)                       # C [B, 2W, K] with the default W = 25
