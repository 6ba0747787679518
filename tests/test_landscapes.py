"""The two synthetic problems against methods-spec.md §2 (values, optima, Pareto sets) and autograd."""
import numpy as np
import pytest
import torch

import landscapes
from landscapes import pareto
from landscapes.pareto import distance_to_set, nondominated, within

ONE = landscapes.get("one_optimum")
TWO = landscapes.get("two_optima")


def test_registry():
    assert {"one_optimum", "two_optima"} <= set(landscapes.names())
    with pytest.raises(ValueError, match="unknown landscape"):
        landscapes.get("nope")


@pytest.mark.parametrize("land,losses", [
    (ONE, [(6.320, 7.766), (5.993, 7.378), (6.916, 6.916), (7.378, 5.993), (7.766, 6.320),
           (8.282, -17.062), (-17.062, 8.282)]),
    (TWO, [(5.666, 7.386), (7.386, 5.666), (4.830, 6.576), (6.576, 4.830), (6.916, 6.916), (-19.857, -19.857)]),
])
def test_losses_at_the_paper_starts(land, losses):
    got = land.losses_np(land.presets["paper"].points)
    np.testing.assert_allclose(got, losses, atol=1.5e-3)


def _analytic(land, th, scale):
    """Hand-derived gradients (methods-spec §2), float64: an implementation independent of autograd."""
    x, y = th[:, 0], th[:, 1]
    t = np.tanh(-y)
    h = [0.5 * (-x - 7) - t, 0.5 * (-x + 3) + t + 2]
    dh_dy = [1 - t * t, -(1 - t * t)]
    tp, tm = np.tanh(y / 2), np.tanh(-y / 2)
    c1, c2 = np.maximum(tp, 0), np.maximum(tm, 0)
    dc1 = np.where(tp >= 0, 0.5 * (1 - tp * tp), 0)
    dc2 = np.where(tm >= 0, -0.5 * (1 - tm * tm), 0)
    out = []
    for k, s in ((0, 1.0), (1, -1.0)):
        A = np.log(np.maximum(np.abs(h[k]), 5e-6)) + 6
        dA = np.where(np.abs(h[k]) >= 5e-6, np.sign(h[k]) / np.abs(h[k]), 0)
        if land.key == "one_optimum":
            P = ((x - 7 * s) ** 2 + 0.1 * (y + 8) ** 2) / 10 - 20
            Px, Py = (x - 7 * s) / 5, 0.02 * (y + 8)
        else:
            a6, a, b = (x - 5.45 * s) / 4, (x - 5.5 * s) / 4, y / 4
            P = 0.1 * a6 ** 6 + 0.1 * b ** 6 - a ** 4 - b ** 4 - 1.5 * a ** 2 - 1.5 * b ** 2 + 1.5
            Px, Py = 0.15 * a6 ** 5 - a ** 3 - 0.75 * a, 0.15 * b ** 5 - b ** 3 - 0.75 * b
        gx = c1 * dA * -0.5 + c2 * Px
        gy = c1 * dA * dh_dy[k] + dc1 * A + c2 * Py + dc2 * P
        m = scale if k == 0 else 1.0
        out.append(np.stack([gx * m, gy * m], 1))
    return np.stack(out, 1)


@pytest.mark.parametrize("land", [ONE, TWO])
def test_gradients_match_the_hand_derived_formulas(land):
    g = np.random.default_rng(0)
    (x0, x1), (y0, y1) = land.bounds
    th = np.stack([g.uniform(x0, x1, 500), g.uniform(y0, y1, 500)], 1)
    th = np.concatenate([th, [[0.0, 0.0], [3.0, 0.0], [-7.0, 0.0], [-5.0, 2.0], [1.0, 1e-7]]])
    _, G = land.values_and_grads(torch.tensor(th), torch.full((len(th),), 0.7, dtype=torch.float64))
    np.testing.assert_allclose(G.numpy(), _analytic(land, th, 0.7), rtol=1e-9, atol=1e-9)


def _published(land, x1, x2):
    """The authors' Function1 / Function2 on scalar tensors (two_optima creates task 2's gates first)."""
    lo = 5e-6
    up = lambda: torch.clamp(torch.tanh(x2 * 0.5), 0)          # noqa: E731
    down = lambda: torch.clamp(torch.tanh(-x2 * 0.5), 0)       # noqa: E731
    if land.key == "one_optimum":
        f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), lo).log() + 6
        c1 = up()
        sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        c2 = down()
        f1 = f1 * c1 + sq * c2
        f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), lo).log() + 6
        c1 = up()
        sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        c2 = down()
        return f1, f2 * c1 + sq * c2

    def well(s):
        return ((0.1 * ((x1 - 5.45 * s) / 4).pow(6) + 0.1 * (x2 / 4).pow(6))
                - (((x1 - 5.5 * s) / 4).pow(4) + (x2 / 4).pow(4))
                - (1.5 * ((x1 - 5.5 * s) / 4).pow(2) + 1.5 * (x2 / 4).pow(2))) + 1.5
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), lo).log() + 6
    c1 = up()
    sq = well(1.0)
    c2 = down()
    f1 = f1 * c1 + sq * c2
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), lo).log() + 6
    c1, c2 = up(), down()
    return f1, f2 * c1 + well(-1.0) * c2


@pytest.mark.parametrize("land", [ONE, TWO])
def test_float32_gradients_are_the_published_codes_bit_for_bit(land):
    """Per start, per task, as the published trainer computes them (autograd on the 2-vector theta)."""
    g = np.random.default_rng(1)
    (x0, x1), (y0, y1) = land.bounds
    pts = np.concatenate([[[0.0, -8.0], [0.0, 10.0], [0.0, -4.0]],
                          np.stack([g.uniform(x0, x1, 40), g.uniform(y0, y1, 40)], 1)]).astype(np.float32)
    _, G = land.values_and_grads(torch.tensor(pts), torch.ones(len(pts)))
    for i, p in enumerate(pts):
        x = torch.tensor(p, requires_grad=True)
        f1, f2 = _published(land, x[0], x[1])
        g1 = torch.autograd.grad(f1, x, retain_graph=True)[0]
        g2 = torch.autograd.grad(f2, x)[0]
        np.testing.assert_array_equal(G[i].numpy(), torch.stack([g1, g2]).numpy())
    # the order of accumulation makes the mirror-symmetric start asymmetric by one rounding step
    if land.key == "two_optima":
        assert G[0, 0, 1] != G[0, 1, 1]


@pytest.mark.parametrize("land", [ONE, TWO])
def test_float32_vjp_is_the_published_weighted_loss_backward_bit_for_bit(land):
    """``Landscape.vjp`` (the reference pipeline's route for Nash-MTL and scale-invariant LS) against the published
    code's ``sum_k alpha_k L_k`` with float64 weights and one ``backward()``, one start at a time as the published
    trainer runs. (A batch evaluated eagerly may differ in the last bit where torch vectorises a transcendental
    function for some lanes only; the engine's C kernel evaluates every run alike.)"""
    g = np.random.default_rng(2)
    (x0, x1), (y0, y1) = land.bounds
    pts = np.concatenate([[[0.0, -8.0], [-4.0, 0.0], [5.35, -0.03]],
                          np.stack([g.uniform(x0, x1, 40), g.uniform(y0, y1, 40)], 1)]).astype(np.float32)
    alpha = np.exp(g.normal(0.0, 2.0, (len(pts), 2)))            # Nash weights range over decades
    w32 = torch.tensor(alpha, dtype=torch.float32)
    got = land.vjp(torch.tensor(pts), torch.ones(len(pts)), w32)
    for i, p in enumerate(pts):
        x = torch.tensor(p, requires_grad=True)
        f1, f2 = _published(land, x[0], x[1])
        a = torch.from_numpy(alpha[i])                              # float64, as torch.from_numpy(cvxpy's alpha)
        (f1 * a[0] + f2 * a[1]).backward()
        one = land.vjp(torch.tensor(pts[i:i + 1]), torch.ones(1), w32[i:i + 1])[0]
        np.testing.assert_array_equal(one.numpy(), x.grad.numpy())
        np.testing.assert_allclose(got[i].numpy(), x.grad.numpy(), rtol=1e-6, atol=1e-6)
    # and it is the weighted sum of the task gradients up to rounding
    _, G = land.values_and_grads(torch.tensor(pts, dtype=torch.float64), torch.ones(len(pts), dtype=torch.float64))
    want = (torch.tensor(alpha)[..., None] * G).sum(1).numpy()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_each_tasks_gradient_comes_from_its_own_loss_alone():
    """``values_and_grads`` differentiates each task's own loss (``task_values``): task 1's gradient never runs
    through task 2's operations. Task 2 here is sqrt(y + 1), whose derivative at y = -1 is infinite; through a
    column of the stacked F (as before, and as the published trainer's ``losses[k]``), task 1's backward
    multiplied that infinity by a zero cotangent and turned its own y-derivative NaN."""
    from landscapes.base import Landscape

    class Kinked(Landscape):
        def task_values(self, theta, scale):
            x, y = theta[:, 0], theta[:, 1]
            return [(x * x + y * y) * scale, torch.sqrt(y + 1)]

    land = Kinked(key="kinked", title="kinked", n_tasks=2, bounds=((-1, 1), (-1, 1)), presets={}, floor=(0, 0))
    th = torch.tensor([[0.5, -1.0], [0.25, 3.0]], dtype=torch.float64)
    F, G = land.values_and_grads(th, torch.ones(2, dtype=torch.float64))
    np.testing.assert_array_equal(F.numpy(), [[1.25, 0.0], [9.0625, 2.0]])
    np.testing.assert_array_equal(G[:, 0].numpy(), [[1.0, -2.0], [0.5, 6.0]])     # (2x, 2y), finite at y = -1
    np.testing.assert_array_equal(G[1, 1].numpy(), [0.0, 0.25])                    # 1 / (2 sqrt(y + 1))
    assert G[0, 1, 1] == np.inf
    np.testing.assert_array_equal(land.values(th, torch.ones(2, dtype=torch.float64)).numpy(), F.numpy())


def test_closed_form_landscapes_weight_their_own_gradients():
    land = landscapes.get("three_bowls")
    th = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0]], dtype=torch.float64)
    _, G = land.values_and_grads(th, torch.ones(2, dtype=torch.float64))
    np.testing.assert_allclose(land.vjp(th, torch.ones(2, dtype=torch.float64), w).numpy(),
                               (w[..., None] * G).sum(1).numpy(), rtol=1e-14)


def test_gate_kink_follows_autograd_convention():
    """At y = 0 both clamps pass their derivative: dc1/dy = +1/2, dc2/dy = -1/2 (methods-spec §2)."""
    th = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    _, G = ONE.values_and_grads(th, torch.ones(1, dtype=torch.float64))
    x = 2.0
    A1 = np.log(abs(0.5 * (-x - 7))) + 6
    A2 = np.log(abs(0.5 * (-x + 3) + 2)) + 6
    Q1 = ((x - 7) ** 2 + 0.1 * 64) / 10 - 20
    Q2 = ((x + 7) ** 2 + 0.1 * 64) / 10 - 20
    # c1 = c2 = 0 at y = 0, so only the gate derivatives remain in d/dy
    np.testing.assert_allclose(G[0, 0, 1].item(), 0.5 * A1 - 0.5 * Q1, rtol=1e-12)
    np.testing.assert_allclose(G[0, 1, 1].item(), 0.5 * A2 - 0.5 * Q2, rtol=1e-12)


def _grid_min(land, task, center, half=0.05, n=401):
    xs = np.linspace(center[0] - half, center[0] + half, n)
    ys = np.linspace(center[1] - half, center[1] + half, n)
    X, Y = np.meshgrid(xs, ys)
    F = land.losses_np(np.stack([X.ravel(), Y.ravel()], 1))
    v = F.sum(1) if task is None else F[:, task]
    i = np.argmin(v)
    return np.array([X.ravel()[i], Y.ravel()[i]]), v[i]


def test_per_task_minima():
    p, v = _grid_min(ONE, 0, (7.0, -8.4345))
    np.testing.assert_allclose(p, (7.0, -8.4345), atol=5e-4)
    assert v == pytest.approx(-19.989, abs=1e-3)
    p, v = _grid_min(ONE, 1, (-7.0, -8.4345))
    np.testing.assert_allclose(p, (-7.0, -8.4345), atol=5e-4)
    p, v = _grid_min(TWO, 0, (-5.4564, -10.8427))
    np.testing.assert_allclose(p, (-5.4564, -10.8427), atol=5e-4)
    assert v == pytest.approx(-50.294, abs=1e-3)
    p, v = _grid_min(TWO, 0, (16.228, -10.8427), half=0.1)     # the shallower well of the double well
    assert v == pytest.approx(-48.099, abs=1e-3)


def test_optima_of_the_summed_loss():
    np.testing.assert_allclose(ONE.optima(), [[0.0, -8.35511]], atol=2e-5)
    opt = TWO.optima()
    assert len(opt) == 2
    np.testing.assert_allclose(np.sort(opt[:, 0]), [-5.4546, 5.4546], atol=2e-4)
    np.testing.assert_allclose(opt[:, 1], [-10.8426, -10.8426], atol=2e-4)
    np.testing.assert_allclose(ONE.losses_np(ONE.optima()), [[-15.0916, -15.0916]], atol=1e-4)
    # weights move the minimiser along the Pareto set: x = 7 (2 lam - 1) for lam f1 + (1 - lam) f2
    opt = ONE.optima(weights=(0.75, 0.25))
    np.testing.assert_allclose(opt[0, 0], 3.5, atol=2e-3)


def test_one_optimum_pareto_set():
    pts = ONE.pareto_set()
    # the spec's samples of y*(x), both sides
    for x, y in [(7, -8.43446), (5, -8.39694), (3, -8.37052), (1, -8.35684), (0, -8.35511)]:
        for sx in (1, -1):
            assert distance_to_set(np.array([[sx * x, y]]), pts)[0] < 2e-3
    assert np.abs(pts[:, 0]).max() == pytest.approx(7.0, abs=2e-3)
    assert not (distance_to_set(np.array([[0.0, -8.2], [8.0, -8.43], [0.0, 1.0]]), pts) < 0.05).any()
    front = ONE.pareto_front()
    np.testing.assert_allclose(front[0], (-19.989, -0.398), atol=2e-3)
    np.testing.assert_allclose(front[-1], (-0.398, -19.989), atol=2e-3)
    assert nondominated(front).all()


def test_two_optima_pareto_set():
    pts = TWO.pareto_set()
    np.testing.assert_allclose(pts[:, 1], -10.8425, atol=1e-3)
    assert np.abs(pts[:, 0]).max() == pytest.approx(5.456, abs=2e-3)
    # the spec's samples: f1 = -40 at x = -2.567 (f2 = -24.92), f1 = -25 at x = 2.483 (f2 = -39.59)
    for x, f2 in [(-2.567, -24.92), (2.483, -39.59)]:
        assert distance_to_set(np.array([[x, -10.8425]]), pts)[0] < 2e-3
        assert TWO.losses_np([[x, -10.8425]])[0, 1] == pytest.approx(f2, abs=0.01)
    # the front is concave: the midpoint of its end points is not dominated by any front point
    front = TWO.pareto_front()
    mid = (front[0] + front[-1]) / 2
    assert not ((front <= mid).all(1)).any()


@pytest.mark.parametrize("land", [ONE, TWO], ids=["one_optimum", "two_optima"])
def test_the_distance_field_decides_within_eps_as_the_exact_distance_does(land):
    eps = 0.1
    pts = land.pareto.points
    rng = np.random.default_rng(7)
    (x0, x1), (y0, y1) = land.bounds
    box = np.c_[rng.uniform(x0, x1, 20_000), rng.uniform(y0, y1, 20_000)]
    near_set = pts[rng.integers(0, len(pts), 10_000)] + rng.normal(0, 0.15, (10_000, 2))
    # on both sides of the eps boundary, a hair's breadth away: off segment midpoints along their normals
    i = rng.integers(0, len(pts) - 1, 10_000)
    mid, tangent = (pts[i] + pts[i + 1]) / 2, pts[i + 1] - pts[i]
    normal = np.c_[-tangent[:, 1], tangent[:, 0]] / np.maximum(np.hypot(*tangent.T), 1e-300)[:, None]
    edge = mid + (eps * (1 + rng.choice([-1, 1], 10_000) * 1e-7) * rng.choice([-1, 1], 10_000))[:, None] * normal
    theta = np.concatenate([box, near_set, edge, [[np.nan, 0.0], [np.inf, 1.0]]])
    pareto._FIELDS.clear()
    got = within(theta, pts, eps)
    assert pareto._FIELDS, "so many points are decided through the distance field"
    want = distance_to_set(theta[:-2], pts) <= eps     # each point's own distance: no field
    assert (got[:-2] == want).all() and not got[-2:].any()
    assert 0.2 < want[-10_000:].mean() < 0.8 and want.sum() > 5_000      # both sides of the boundary are tested
    # the points given as a region (no segments) and a handful of points (computed directly) agree too
    region = within(theta, pts, eps, curve=False)
    assert (region[:-2] == (distance_to_set(theta[:-2], pts, curve=False) <= eps)).all()
    assert (within(theta[:500], pts, eps) == want[:500]).all()


def test_presets_and_floor_fit_the_box():
    for land in (ONE, TWO):
        for p in land.presets.values():
            assert land.contains(p.points).all()
        xs, ys, pts = land.grid(200)
        F = land.losses_np(pts)
        assert (F.min(0) > np.array(land.floor)).all()
    assert len(ONE.presets["paper"].points) == 7 and len(TWO.presets["paper"].points) == 6
    assert len(ONE.presets["nashmtl"].points) == 5 and len(ONE.presets["cagrad"].points) == 3
