"""The method contract as one suite, run on every built-in method (a plugin's own tests can reuse the class).

The rules are those of ``optimizers/contract.py`` (the same functions check a plugin when it is loaded;
tests/test_plugins.py holds a plugin that breaks each rule): the Method's spec, the signatures, d of shape [B, D],
state and aux with a leading B, no reduction over the batch in the traced step, rows independent (a NaN run
included) and a finite step on ordinary input. Beyond the rules, a built-in must be ready for the fused C kernel:
its traced step uses no operation the kernel refuses, computes what the eager step computes, and the kernel
computes what eager torch does.

Expected values are the method's own eager step (a run computed alone, the untraced step), never constants
taken from the code under test; per-method formulas and §9 vectors live in the family files
(tests/test_*_methods.py, tests/test_samgs.py).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import math
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimizers
from optimizers import contract
from optimizers.base import Context, no_state

from vectors import TV

BUILT_IN = list(optimizers.built_in())
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=optimizers.PIPELINES)
def pipeline(request):
    return request.param


@pytest.fixture(params=[2, 3], ids=["K2", "K3"])
def K(request):
    return request.param


class MethodContract:
    """The contract's tests for the ``method`` fixture of a subclass, in every pipeline, for K = 2 and 3.

    ``kernel_ready``: also require that the traced step uses nothing the fused C kernel refuses (a plugin may,
    and then runs in eager torch; a built-in may not)."""

    kernel_ready = False

    def test_it_keeps_every_rule_of_the_contract_and_its_traced_step_computes_what_the_eager_step_does(
            self, method, pipeline, K):
        report = contract.check(method, pipelines=(pipeline,), tasks=(K,))
        assert report.violations == []
        if self.kernel_ready:
            assert report.eager == []
        (t,) = report.traces
        with torch.no_grad():
            for a, b in zip(t.graph(*t.state, *t.params), t.fn(*t.state, *t.params)):
                torch.testing.assert_close(a, b, equal_nan=True)

    def test_each_run_depends_on_itself_alone_on_extreme_batches(self, method, pipeline, K):
        """Hypothesis batches mixing zero, 1e-30, ordinary and 1e30 gradients, equal / opposite / parallel pairs
        and any losses: a step never raises, and each row equals the same row computed by itself."""

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(_extreme_batches(K))
        def check(batch):
            Gn, Ln = batch
            G, L = torch.tensor(Gn), torch.tensor(Ln)
            keys = torch.arange(len(G), dtype=torch.int64) * 7919
            d, new = _one_step(method, G, L, pipeline, keys)
            assert d.shape == (len(G), 2)
            for i in range(len(G)):
                di, newi = _one_step(method, G[i:i + 1], L[i:i + 1], pipeline, keys[i:i + 1])
                torch.testing.assert_close(di[0], d[i], equal_nan=True, rtol=1e-9, atol=0)
                for name in new:
                    torch.testing.assert_close(newi[name][0], new[name][i], equal_nan=True, rtol=1e-9, atol=0)

        check()


class TestBuiltInMethods(MethodContract):
    """Every method of ``optimizers/methods/``; built-ins also run in the fused C kernel."""

    kernel_ready = True

    @pytest.fixture(params=BUILT_IN)
    def method(self, request):
        return optimizers.get(request.param)

    def test_the_c_kernel_computes_what_eager_torch_does(self, method, pipeline, K):
        """Three steps of the fused kernel against three eager steps, from the §9 vectors, edge cases and random
        gradients of mixed scales; float32 for (reference, K = 2) and (clean, K = 3), float64 otherwise."""
        from trajectories import kernel

        dtype = torch.float32 if (pipeline, K) in (("reference", 2), ("clean", 3)) else torch.float64
        B, steps = 48, 3
        rs = np.random.default_rng(80 + K)
        G = rs.normal(size=(B, K, 2)) * rs.choice([0.1, 1.0, 10.0], size=(B, K, 1))
        rows = list(TV.values()) + [[[0.0, 0.0], [1.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, 6.0]]]
        G[:len(rows), :2] = np.array(rows)
        names, hp_names, static, state, params = contract.example_inputs(
            method, K=K, D=2, B=B, dtype=dtype, G=torch.tensor(G, dtype=dtype))
        fn = contract.flat_step(method, pipeline, names, hp_names, static)
        if kernel.compiler() is None:               # no C compiler here: the generator must still accept it
            kernel.Program(fn, state, params)
            return
        kern = kernel.Kernel(fn, state, params)
        st_np = [np.ascontiguousarray(x.numpy().copy()) for x in state]
        pa_np = [np.ascontiguousarray(x.numpy().copy()) for x in params]
        n = len(state)
        records = [np.zeros((B, steps) + s, dtype=kernel._NP[d])
                   for s, d in zip(kern.program.out_shapes[n:], kern.program.out_dtypes[n:])]
        kern.run(st_np, pa_np, records, 0, steps, 1, steps)
        eager, cur = [], list(state)
        with torch.no_grad():
            for _ in range(steps):
                out = fn(*cur, *params)
                cur = list(out[:n])
                eager.append(out[n:])
        # float32: Nash-MTL's Newton near the feasibility boundary amplifies round-off (C vs torch order)
        a = 1e-9 if dtype == torch.float64 else (3e-2 if method.key == "nashmtl" and K > 2 else 2e-4)
        for s, outs in enumerate(eager):
            for r, e in enumerate(outs):
                e = e.numpy()
                bad = np.abs(records[r][:, s] - e) > a * np.maximum(1.0, np.abs(e))
                bad &= ~(np.isnan(records[r][:, s]) & np.isnan(e))
                assert not bad.any(), (method.key, pipeline, K, s, r, np.argwhere(bad)[:5])
        for got, want in zip(st_np, cur):
            np.testing.assert_allclose(got, want.numpy(), rtol=a, atol=a)


def _one_step(m, G, L, pipeline, keys):
    B, K, D = G.shape
    hp = contract.hp_tensors(m, B, G.dtype)
    state = m.init(B, K, D, hp, dtype=G.dtype, device="cpu")
    ctx = Context(pipeline, torch.ones(B, dtype=G.dtype), keys, torch.full((B, K), -60.0, dtype=G.dtype))
    with torch.no_grad():
        d, new, _ = m.step(G, L, state, hp, ctx)
    return d, new


@st.composite
def _extreme_batches(draw, K):
    """G[B, K, 2] rows from a mix of scales and special configurations, and losses L[B, K]."""
    scales = [0.0, 1e-30, 1e-8, 1e-3, 1.0, 1e3, 1e8, 1e30]
    B = draw(st.integers(2, 6))
    rows, losses = [], []
    for _ in range(B):
        kind = draw(st.sampled_from(["random", "equal", "opposite", "parallel", "zero-one"]))
        angles = [draw(st.floats(0, 2 * math.pi)) for _ in range(K)]
        norms = [draw(st.sampled_from(scales)) for _ in range(K)]
        g = np.array([[math.cos(a) * s, math.sin(a) * s] for a, s in zip(angles, norms)])
        if kind == "equal":
            g[1:] = g[0]
        elif kind == "opposite":
            g[1] = -g[0]
        elif kind == "parallel":
            g[1] = g[0] * draw(st.sampled_from([1e-3, 0.5, 2.0, 1e3]))
        elif kind == "zero-one":
            g[0] = 0.0
        rows.append(g)
        losses.append([draw(st.one_of(st.sampled_from([0.0, -1.0, 1e-30, -50.0, 50.0]),
                                      st.floats(-60, 60))) for _ in range(K)])
    return np.array(rows), np.array(losses)


# ---------------------------------------------------------------------------------------------
# The layout: optimizers/methods/ holds the methods, the modules beside it are helpers.

def _modules(package: str) -> list:
    pkg = importlib.import_module(package)
    return [importlib.import_module(f"{package}.{i.name}") for i in pkgutil.iter_modules(pkg.__path__)
            if not i.ispkg]


def test_the_registry_is_every_module_of_optimizers_methods_and_nothing_else():
    found = {}
    for mod in _modules("optimizers.methods"):
        assert getattr(mod, "METHODS", ()), f"{mod.__name__} defines no METHODS"
        for m in mod.METHODS:
            found[m.key] = m
    helpers = _modules("optimizers")
    assert {m.__name__.rsplit(".", 1)[1] for m in helpers} >= {"base", "linalg", "solvers", "rng", "outer",
                                                                "shared", "contract", "plugins"}
    assert not any(hasattr(m, "METHODS") for m in helpers)
    assert set(found) == set(optimizers.built_in()) and len(found) == 22
    assert all(not m.plugin and m.origin == "built-in" for m in optimizers.built_in().values())


def test_no_method_module_imports_another_method_module():
    """Shared pieces live in optimizers/shared.py (and base, linalg, solvers), not in a method's module."""
    for path in sorted((ROOT / "optimizers" / "methods").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.level == 1 and node.module), (path.name, node.module)      # from .pcgrad import
                assert "methods" not in (node.module or ""), (path.name, node.module)


def test_a_stateless_method_has_no_init_of_its_own():
    for key, m in optimizers.built_in().items():
        hp = contract.hp_tensors(m, 2, torch.float64)
        if m.init(2, 2, 2, hp, dtype=torch.float64, device="cpu") == {}:
            assert m.init is no_state, f"{key} keeps its own `return {{}}` init"


def test_every_method_module_documents_its_formula_paper_and_both_pipelines():
    for key, m in optimizers.built_in().items():
        doc = inspect.getmodule(m.step).__doc__ or ""
        assert "reference" in doc and "clean" in doc, key
        assert m.paper and m.summary and set(m.pipelines) == set(optimizers.PIPELINES), key


# ---------------------------------------------------------------------------------------------
# The graph checker itself.

def test_the_graph_checker_names_refused_operations_and_reductions_over_the_batch():
    from torch.fx.experimental.proxy_tensor import make_fx

    B = contract.TRACE_BATCH

    def f(G):
        ok = G.sum(1) + (G @ torch.ones(2, 2, dtype=G.dtype)).sum(1) + (G @ G.transpose(1, 2)).sum((1, 2))[:, None]
        inv = torch.linalg.inv(G[:, :2, :2] @ G[:, :2, :2].transpose(1, 2) + torch.eye(2))
        srt = torch.sort(G, -1).values
        y = G.clone()
        y.add_(1.0)
        picked = G[torch.tensor([0, 1])]
        centred = G.sum(1) - G.sum(1).mean(0, keepdim=True)
        scale = torch.softmax(G[:, 0, 0], 0)
        mixed = G[:, 0, :].T @ G[:, 1, :]
        pairs = (G[:, None, 0, 0] - G[None, :, 0, 0]).abs().amin(1)
        return ok, inv, srt, y, picked, centred, scale, mixed, pairs

    gm = make_fx(f)(torch.randn(B, 3, 2))
    over, eager = contract.graph_findings(gm)
    text = " | ".join(eager)
    for op in ("linalg", "sort", "add_", "index"):
        assert op in text, (op, text)
    over_text = " | ".join(over)
    assert "aten.mean over dim [0]" in over_text
    assert "aten._softmax over dim 0" in over_text
    assert "aten.mm contracts the batch axis" in over_text
    assert "aten.sub makes a [B, B] tensor (every run paired with every other)" in over_text
    assert "aten.amin over dim [1] of a [B, B] tensor" in over_text
    assert len(over) == 5, over        # G.sum(1), the per-run bmm and the folded [B, 3, 2] @ [2, 2] are fine
    assert contract.explain("operation aten._linalg_solve_ex.default").startswith("torch.linalg")
