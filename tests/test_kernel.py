"""The C generator against torch itself: every supported operation, NaN/inf semantics, records, ranges.

torch's eager evaluation of the same function is the independent reference.
"""
import math

import numpy as np
import pytest
import torch

from optimizers import rng
from trajectories import kernel


def _zoo(x, v, k, flag):
    """A step touching most lowerings: x[B], v[B, 3, 2], k[B] int64, flag[B] bool."""
    n = torch.sqrt((v * v).sum(-1))                               # [B, 3]
    g = v @ v.transpose(1, 2)                                     # bmm [B, 3, 3]
    sm = torch.softmax(n, -1)
    lsm = torch.log_softmax(n, -1)
    stacked = torch.stack([x, x * 2, -x], 1)
    cat = torch.cat([stacked, n], 1)                              # [B, 6]
    a = (torch.tanh(x) + torch.log1p(x.abs()) + torch.expm1(x * 0.1) + torch.sin(x) * torch.cos(x)
         + torch.sigmoid(x) + torch.atan2(x, x + 1) + x ** 3 + x.abs() ** 0.5 + torch.rsqrt(x.abs() + 1)
         + torch.exp(-x * x) + torch.log(x.abs() + 1) + torch.reciprocal(x + 10) + torch.sign(x) + x ** -2)
    b = torch.clamp(x, min=-0.5) + torch.clamp(x, max=0.25) + torch.clamp(x, -0.1, 0.1) \
        + torch.maximum(x, -x * 0.5) + torch.minimum(x, x * x) + torch.where(flag, x, -x)
    c = g.amax(dim=(1, 2)) + g.amin(-1).sum(-1) + v.mean(dim=(1, 2)) + cat.prod(-1) + sm[:, 0] + lsm[:, 2]
    m = (n[:, 0] > 0.5) & ~flag | (x < 0)
    ints = rng.uniform(k, x.abs() * 10, 3, (2,), x.dtype).sum(-1) + rng.normal(k, x.abs(), 5, (), x.dtype)
    perm = v.permute(0, 2, 1).reshape(v.shape[0], 6)
    sel = perm[:, 1:5:2].sum(-1) + v[:, -1, 0] + v.unsqueeze(1).squeeze(1)[:, 0].sum(-1)
    eye = torch.eye(3, dtype=x.dtype)
    tr = (g * eye).sum(dim=(1, 2))
    x_new = a + b + c + m.to(x.dtype) + ints + sel + tr + torch.isnan(x).to(x.dtype) + torch.isinf(x).to(x.dtype)
    return x_new, v * 0.5 + x[:, None, None], k, flag, torch.floor(x * 3) + torch.remainder(x, 0.7)


def _inputs(B, dtype, special=False):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, generator=g, dtype=dtype)
    if special:
        x[:4] = torch.tensor([math.nan, math.inf, -math.inf, 0.0], dtype=dtype)
    v = torch.randn(B, 3, 2, generator=g, dtype=dtype)
    k = rng.run_keys(7, B)
    flag = torch.rand(B, generator=g) > 0.5
    return [x, v, k, flag]


def _run_kernel(fn, ins, n_state, steps=1):
    kern = kernel.Kernel(fn, ins[:n_state], ins[n_state:])
    state = [np.ascontiguousarray(t.numpy().copy()) for t in ins[:n_state]]
    params = [np.ascontiguousarray(t.numpy().copy()) for t in ins[n_state:]]
    recs = kern.program.out_shapes[n_state:]
    rdt = kern.program.out_dtypes[n_state:]
    B = ins[0].shape[0]
    records = [np.zeros((B, steps) + s, dtype=kernel._NP[d]) for s, d in zip(recs, rdt)]
    kern.run(state, params, records, 0, steps, 1, steps)
    return state, records


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_every_lowering_matches_torch(dtype, tol):
    ins = _inputs(37, dtype)           # not a multiple of the SIMD width: exercises the tail block
    with torch.no_grad():
        ref = _zoo(*ins)
    state, records = _run_kernel(_zoo, ins, 4)
    for got, want in zip(state, ref[:4]):
        want = want.numpy()
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(records[0][:, 0], ref[4].numpy(), rtol=tol, atol=tol)


def test_nan_and_inf_follow_torch():
    def f(x):
        return (torch.clamp(x, 0.0, 1.0) + torch.maximum(x, torch.zeros_like(x)) + torch.minimum(x, x)
                + torch.where(x > 0, x, 0.0) + torch.sign(x)),
    x = torch.tensor([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-40, 2.0, -3.0], dtype=torch.float32)
    ref = f(x)[0].numpy()
    state, _ = _run_kernel(f, [x], 1)
    np.testing.assert_array_equal(np.isnan(state[0]), np.isnan(ref))
    np.testing.assert_allclose(state[0][~np.isnan(ref)], ref[~np.isnan(ref)])


def test_records_and_state_over_many_steps_and_ranges():
    """x <- 0.9 x + 1 for 25 steps, recorded every 5 steps, runs split into two ranges."""
    def f(x, c):
        return 0.9 * x + c, x

    B = 21
    x0 = torch.arange(B, dtype=torch.float64)
    c = torch.ones(B, dtype=torch.float64)
    kern = kernel.Kernel(f, [x0], [c])
    state = [x0.numpy().copy()]
    params = [c.numpy().copy()]
    rec = [np.full((B, 6), np.nan)]
    kern.run(state, params, rec, 0, 13, 5, 6, lo=0, hi=10)
    kern.run(state, params, rec, 13, 12, 5, 6, lo=0, hi=10)
    kern.run(state, params, rec, 0, 25, 5, 6, lo=10, hi=B)
    x = x0.numpy().copy()
    want = np.zeros((B, 6))
    for s in range(25):
        if s % 5 == 0:
            want[:, s // 5] = x
        x = 0.9 * x + 1
    np.testing.assert_allclose(state[0], x, rtol=1e-13)
    np.testing.assert_allclose(rec[0][:, :5], want[:, :5], rtol=1e-13)
    assert np.isnan(rec[0][:, 5]).all()    # step 25 was never run


def test_unsupported_operations_are_refused():
    def uses_sort(x):
        return torch.sort(x[:, None].expand(-1, 3), dim=1).values.sum(1),

    with pytest.raises(kernel.Unsupported):
        kernel.Kernel(uses_sort, [torch.rand(4)], [])

    def mixes_runs(x):
        return x - x.mean(),          # a reduction over the batch axis

    with pytest.raises(kernel.Unsupported):
        kernel.Kernel(mixes_runs, [torch.rand(4)], [])


def test_rng_is_identical_in_c_and_torch_and_uniform():
    def f(k, t):
        return k, t + 1, rng.uniform(k, t, 11, (4,), torch.float64)

    B = 4000
    k = rng.run_keys(3, B)
    t = torch.zeros(B, dtype=torch.float64)
    ref = f(k, t)[2].numpy()
    kern = kernel.Kernel(f, [k, t], [])
    state = [k.numpy().copy(), t.numpy().copy()]
    rec = [np.zeros((B, 1, 4))]
    kern.run(state, [], rec, 0, 1, 1, 1)
    np.testing.assert_array_equal(rec[0][:, 0], ref)
    # uniformity: Kolmogorov-Smirnov distance of 16 000 draws from U[0, 1) (5% critical value 0.0107)
    u = np.sort(ref.ravel())
    ks = np.max(np.abs(np.arange(1, len(u) + 1) / len(u) - u))
    assert ks < 0.0107
    # independence of keys: correlation between neighbouring runs is small
    assert abs(np.corrcoef(ref[:-1, 0], ref[1:, 0])[0, 1]) < 0.05


def test_disk_cache_finds_the_kernel_without_tracing(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_CACHE", str(tmp_path))

    def f(x):
        return x * 2.0 + 1.0,

    x = torch.rand(5, dtype=torch.float64)
    first = kernel.Kernel(f, [x], [], key=("test", 1))
    assert first.program is not None
    second = kernel.Kernel(lambda x: (x,), [x], [], key=("test", 1))   # same key: the cached object is used
    assert second.program is None
    state = [x.numpy().copy()]
    second.run(state, [], [], 0, 1, 0, 0)
    np.testing.assert_allclose(state[0], x.numpy() * 2 + 1)


def test_values_shared_by_every_run_are_computed_once_a_block_and_give_the_same_bits():
    """Told which inputs are the same in every run, the printer computes what depends on them alone as scalars
    before the SIMD loop. A state leaf stays shared only while its new value depends on shared values alone:
    ``acc`` starts equal in every run but is fed from ``x``. The results are those of the kernel told nothing."""
    from trajectories.kernel import c as c_printer

    def f(t, b, x, acc, lr, w):
        bc = lr / (1.0 - b * 0.9)                               # Adam's bias correction: shared
        x_new = x - bc * torch.tanh(x * w) / torch.sqrt(t + 1.0)
        return t + 1.0, b * 0.9, x_new, acc + x_new * w, bc * w

    B = 37
    g = torch.Generator().manual_seed(3)
    ins = [torch.zeros(B, dtype=torch.float64), torch.ones(B, dtype=torch.float64),
           torch.randn(B, generator=g, dtype=torch.float64), torch.zeros(B, dtype=torch.float64),
           torch.full((B,), 0.1, dtype=torch.float64), torch.full((B,), 2.0, dtype=torch.float64)]
    told = kernel.Kernel(f, ins[:4], ins[4:], uniform=(0, 1, 3, 4, 5))
    leaves, _ = c_printer.uniform_closure(told.program.scalar, (0, 1, 3, 4, 5))
    assert leaves == {0, 1, 4, 5}
    src = told.program.source
    assert "uni0" in src and "uni1" in src and "uni3" not in src and "blk3" in src and "blk2" in src
    assert " / " in src.split("} else {")[1].split("#pragma omp simd")[0]   # the division runs before the loop
    results = []
    for kern in (told, kernel.Kernel(f, ins[:4], ins[4:])):
        state = [np.ascontiguousarray(t.numpy().copy()) for t in ins[:4]]
        params = [np.ascontiguousarray(t.numpy().copy()) for t in ins[4:]]
        rec = [np.zeros((B, 6))]
        kern.run(state, params, rec, 0, 25, 5, 6)
        kern.run(state, params, rec, 25, 5, 5, 6)              # a second call: the shared state comes back
        results.append(state + rec)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(results[0][2]).all() and len(np.unique(results[0][2])) == B
