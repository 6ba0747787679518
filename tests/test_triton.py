"""The Triton backend under Triton's interpreter (``TRITON_INTERPRET=1``), on CPU tensors, against the C kernel.

The interpreter runs the very kernel text a GPU compiles, with numpy for the arithmetic (IEEE, as C's) and
``trajectories.kernel.interpret``'s libm for the transcendental functions: the functions, and the vector
variants, that the C kernel calls. So the two agree bit for bit, and these tests hold them to that: every
method's step x both pipelines x K = 2, 3, whole engine steps for a mix of methods, records, early exit,
a frozen run, RNG draws, float32 and float64.
Expected values come from the C kernel and from eager torch, never from the Triton path itself.

On a GPU the transcendental functions are CUDA's libdevice instead (1-4 ulp from the correctly rounded value
in float32, 1-2 in float64, per the CUDA C Programming Guide); ``test_libdevice_stand_ins_are_the_c_kernels``
pins what the interpreter uses, and ``bench --speed`` on a GPU is where the libdevice paths are measured.
"""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

import optimizers  # noqa: E402
import trajectories  # noqa: E402
from optimizers import rng  # noqa: E402
from trajectories import kernel  # noqa: E402
from trajectories.kernel import build_triton, interpret  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def interpreter():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        yield


def _same(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if np.issubdtype(a.dtype, np.floating) else a == b
    assert same.all(), f"{what}: {int((~same).sum())} of {same.size} values differ"


def _agree(a, b):
    """Two Results computed the same numbers: paths, losses, diagnostics, finals and per-run outcomes."""
    assert a.variants == b.variants
    for name in ("positions", "losses", "final", "diverged_step", "optimum_step", "status"):
        _same(getattr(a, name), getattr(b, name), name)
    assert set(a.aux) == set(b.aux)
    for name in a.aux:
        for m, v in enumerate(a.variants):
            _same(a.aux[name][m], b.aux[name][m], f"{v['method']} {name}")


def _both(landscape, methods, **kw):
    kw = dict(dict(starts="-8,5;3,7.5;-10,-3;0.5,-4", steps=4, record_every=3, device="cpu"), **kw)
    t = trajectories.simulate(landscape, methods, backend="triton", **kw)
    c = trajectories.simulate(landscape, methods, backend="c", **kw)
    assert set(t.timings["backends"].values()) == {"triton"}, t.timings.get("kernel_fallbacks")
    assert set(c.timings["backends"].values()) == {"c"}
    return t, c


def _method_step(key, K, pipeline, dtype, B=16):
    """A method's step in the kernel's flat layout, on the contract suite's example inputs (edge-case rows
    first): ``(fn, inputs, number of state leaves)``."""
    from optimizers import contract
    m = optimizers.get(key)
    names, hp_names, static, state, params = contract.example_inputs(m, K=K, D=2, B=B, dtype=dtype, seed=K)
    return contract.flat_step(m, pipeline, names, hp_names, static), state + params, len(state)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("pipeline", ["reference", "clean"])
def test_every_method_step_computes_on_triton_what_the_c_kernel_computes(pipeline, K):
    """Every method's step, both pipelines, K = 2 and 3, three steps from edge-case gradients: one trace
    printed twice, and the Triton kernel's state and records equal the C kernel's bit for bit."""
    for key in optimizers.names():
        if optimizers.get(key).min_tasks > K:
            continue
        fn, ins, n_state = _method_step(key, K, pipeline, torch.float32)
        (cs, cr), (ts, tr) = _kernel_pair(fn, ins, n_state, 3, torch.float32)
        for i, (a, b) in enumerate(zip(cs + cr, ts + tr)):
            _same(b, a, f"{key} output {i}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_engine_on_triton_agrees_with_the_c_kernel(dtype):
    """Whole engine steps (landscape autograd, the method, the reference post-processing, Adam, diagnostics)
    for a mix of methods: closed forms, a solver, the RNG, loss-based state; K = 2 and 3."""
    if dtype == "float32":
        _agree(*_both("two_optima", ["samgs", "nashmtl", "rlw", "famo", "pcgrad"], dtype=dtype))
    _agree(*_both("three_bowls", ["mgda", "graddrop"], dtype=dtype, pipeline="clean"))


def test_a_nan_run_is_frozen_on_triton_as_on_the_c_kernel():
    """sqrt(x1) and its gradient are NaN left of x1 = 0: the run started there is frozen at its start and flagged diverged at
    step 0; the other runs of the batch go on, and both backends agree on everything."""
    from landscapes import custom
    land = custom.from_spec({"name": "half root", "tasks": ["sqrt(x1) + x2**2", "(x1 - 1)**2 + x2**2"],
                             "bounds": [[-2, 2], [-2, 2]]})
    t, c = _both(land, ["ls", "samgs"], starts="-1,0.5;0.5,0.5;1.5,-1", steps=6, record_every=2)
    assert (t.diverged_step[:, 0] == 0).all() and (t.diverged_step[:, 1:] == -1).all()
    np.testing.assert_array_equal(t.final[:, 0], [[-1, 0.5], [-1, 0.5]])
    _agree(t, c)


def test_early_exit_stops_triton_runs_where_the_c_kernel_stops(monkeypatch):
    """Chunks of 5 steps (the engine checks between chunks); lr 1e-5 moves every run less than the 1e-3 the
    check asks, so both backends stop after the first chunk and carry the last positions forward."""
    monkeypatch.setattr(trajectories.engine, "CHUNK", 5)
    t, c = _both("one_optimum", ["ls", "samgs"], steps=30, record_every=4, lr=1e-5, early_exit=True)
    assert t.timings["steps_run"] == c.timings["steps_run"] == 5
    _agree(t, c)


def _kernel_pair(fn, ins, n_state, steps, dtype):
    """One program run by the C kernel (numpy) and by the Triton kernel (CPU tensors), ``steps`` steps."""
    ck = kernel.Kernel(fn, ins[:n_state], ins[n_state:])
    prog = ck.program          # traced once: the Triton kernel prints the same scalar program
    B = ins[0].shape[0]
    shapes, dts = prog.out_shapes[n_state:], prog.out_dtypes[n_state:]
    c_state = [np.ascontiguousarray(t.numpy().copy()) for t in ins[:n_state]]
    c_params = [np.ascontiguousarray(t.numpy().copy()) for t in ins[n_state:]]
    c_rec = [np.zeros((B, steps) + s, dtype=kernel.NP[d]) for s, d in zip(shapes, dts)]
    ck.run(c_state, c_params, c_rec, 0, steps, 1, steps)
    tk = build_triton.TritonKernel(fn, ins[:n_state], ins[n_state:], program=prog.scalar)
    t_state = [t.clone() for t in ins[:n_state]]
    t_rec = [torch.zeros((B, steps) + s, dtype=d) for s, d in zip(shapes, dts)]
    tk.run(t_state, [t.clone() for t in ins[n_state:]], t_rec, 0, steps, 1, steps)
    return (c_state, c_rec), ([x.numpy() for x in t_state], [x.numpy() for x in t_rec])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_lowering_prints_as_triton_with_the_c_kernels_values(dtype):
    """The kernel-test zoo (every lowering, 37 runs: a partial block) through both printers, one step: the
    C kernel's values exactly, and eager torch's to the tolerance tests/test_kernel.py holds C to."""
    from test_kernel import _inputs, _zoo
    ins = _inputs(37, dtype)
    (cs, cr), (ts, tr) = _kernel_pair(_zoo, ins, 4, 1, dtype)
    for i, (a, b) in enumerate(zip(cs + cr, ts + tr)):
        _same(b, a, f"output {i}")
    with torch.no_grad():
        ref = _zoo(*ins)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    np.testing.assert_allclose(ts[0], ref[0].numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(tr[0][:, 0], ref[4].numpy(), rtol=tol, atol=tol)


def test_rng_draws_on_triton_are_those_of_torch_and_c():
    def f(k, t):
        return k, t + 1, rng.uniform(k, t, 11, (4,), torch.float64), rng.normal(k, t, 3, (), torch.float32)

    B = 300
    k, t = rng.run_keys(3, B), torch.zeros(B, dtype=torch.float64)
    (cs, cr), (ts, tr) = _kernel_pair(f, [k, t], 2, 2, torch.float64)
    ref = f(k, t)
    _same(tr[0][:, 0], ref[2].numpy(), "uniform draws, step 0")
    _same(tr[0][:, 1], f(k, t + 1)[2].numpy(), "uniform draws, step 1")
    for a, b in zip(cs + cr, ts + tr):
        _same(a, b, "C and Triton")


def test_float64_literals_keep_their_bits():
    """0.1 as a float64 constant must not pass through float32 (a bare Python float does, in Triton)."""
    def f(x):
        return x, x * 0.1 + torch.where(x > 0, 0.1, 1e-300) + torch.full_like(x, 0.3) * 3.0

    x = torch.linspace(-1, 1, 9, dtype=torch.float64)
    _, (_, tr) = _kernel_pair(f, [x], 1, 1, torch.float64)
    _same(tr[0][:, 0], f(x)[1].numpy(), "float64 constants")


@pytest.mark.parametrize("name", sorted(interpret.FUNCS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_libdevice_stand_ins_are_the_c_kernels(name, dtype):
    """Each function the shim provides equals what a (vectorised) C kernel computes, bit for bit."""
    fns = {"tanh": torch.tanh, "log1p": torch.log1p, "expm1": torch.expm1, "sin": torch.sin, "cos": torch.cos,
           "exp": torch.exp, "log": torch.log, "atan": torch.atan, "atan2": lambda x: torch.atan2(x, x + 1),
           "pow": lambda x: x.abs() ** 0.7}
    x = torch.randn(256, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3

    def f(x):
        return x, fns[name](x)
    (_, cr), (_, tr) = _kernel_pair(f, [x], 1, 1, dtype)
    _same(cr[0], tr[0], name)


def test_triton_on_the_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="backend: 'triton' needs a CUDA device"):
        trajectories.simulate("one_optimum", ["ls"], "paper", 5, device="cpu", backend="triton")


def test_the_float32_text_uses_ieee_division_and_square_root():
    """Triton's float32 ``/`` and ``tl.sqrt`` are approximate on NVIDIA GPUs: the printer must not emit them."""
    def f(x):
        return torch.sqrt(x) / (x + 1.0),
    tk = build_triton.TritonKernel(f, [torch.rand(4) + 1], [])
    assert "tl.math.div_rn(" in tk.source and "tl.sqrt_rn(" in tk.source
    assert " / " not in tk.source.split("@triton.jit")[1]
