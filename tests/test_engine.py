"""The lock-step engine: backends agree, runs are independent, sweeps batch, results round-trip."""
import json

import numpy as np
import pytest
import torch

import landscapes
import optimizers
import trajectories
from landscapes.base import Landscape
from trajectories import Result, simulate
from trajectories.config import Config

STEPS = 300


def _run(**kw):
    args = dict(landscape="one_optimum", methods=["samgs", "ls"], starts="paper", steps=STEPS, record_every=10)
    args.update(kw)
    return simulate(args.pop("landscape"), args.pop("methods"), args.pop("starts"), args.pop("steps"), **args)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-4)])
def test_c_kernel_and_eager_torch_agree(dtype, tol):
    a = _run(backend="c", dtype=dtype)
    b = _run(backend="torch", dtype=dtype)
    assert a.timings["backends"] == {"samgs": "c", "ls": "c"}
    assert b.timings["backends"] == {"samgs": "torch", "ls": "torch"}
    np.testing.assert_allclose(a.positions, b.positions, atol=tol, rtol=0)
    np.testing.assert_allclose(a.final, b.final, atol=tol, rtol=0)
    for k in ("cos", "gms", "weights", "dir", "branch"):
        np.testing.assert_allclose(a.aux[k], b.aux[k], atol=tol * 10, rtol=tol * 10, equal_nan=True)


def test_every_registered_method_runs_and_backends_agree():
    """Every method traces into the C kernel (no silent fallback) and matches eager torch in float64."""
    names = optimizers.names()
    a = simulate("one_optimum", names, "-8,5;3,7.5;-10,-3", 200, record_every=20, dtype="float64", backend="c")
    b = simulate("one_optimum", names, "-8,5;3,7.5;-10,-3", 200, record_every=20, dtype="float64", backend="torch")
    assert set(a.timings["backends"].values()) == {"c"}, a.timings["backends"]
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-8, equal_nan=True)


@pytest.mark.parametrize("land", ["one_optimum", "two_optima", "three_bowls"])
def test_the_default_cpu_backend_is_the_kernel_on_every_landscape(land):
    """backend="auto" on the CPU must pick the fused kernel for every shipped landscape (a landscape op the
    kernel cannot take would silently drop every run to eager torch, ~100x slower)."""
    res = simulate(land, ["ls", "samgs"], "grid:2", 10, record_every=10)
    assert set(res.timings["backends"].values()) == {"c"}, res.timings["backends"]


def test_matches_a_plain_sequential_loop():
    """An independent per-start loop: closed-form LS on the landscape with torch.optim.Adam, one start at a time."""
    import landscapes
    land = landscapes.get("one_optimum")
    res = _run(methods=["ls"], dtype="float64", steps=500, record_every=500)
    for s, start in enumerate(land.presets["paper"].points):
        p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=1e-3)
        for _ in range(500):
            opt.zero_grad()
            land.values(p[None], torch.ones(1, dtype=torch.float64)).sum().backward()
            opt.step()
        np.testing.assert_allclose(res.final[0, s], p.detach().numpy(), atol=1e-9)


class _Bowls(Landscape):
    """f1 = x^2 + y^2, f2 = (x - 1)^2 + y^2: SGD with lr > 1 multiplies the distance by |1 - 2 lr| a step."""

    def values(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        return torch.stack([(x * x + y * y) * scale, (x - 1) ** 2 + y * y], 1)

    def values_and_grads(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        G = torch.stack([torch.stack([2 * x * scale, 2 * y * scale], 1), torch.stack([2 * (x - 1), 2 * y], 1)], 1)
        return self.values(theta, scale), G


BOWLS = landscapes.register(_Bowls(key="test_bowls", title="bowls", n_tasks=2, bounds=((-3, 3), (-3, 3)),
                                   presets={}, floor=(-1.0, -1.0)))


class _SortedBowls(_Bowls):
    """The same bowls, written with torch.sort (an operation the C kernel does not take)."""

    def values(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        lo, hi = torch.sort(torch.stack([x * x + y * y, (x - 1) ** 2 + y * y], 1), dim=1).values.unbind(1)
        first = torch.where(x <= 0.5, lo, hi)     # f1 <= f2 exactly when x <= 1/2
        return torch.stack([first * scale, lo + hi - first], 1)

    def values_and_grads(self, theta, scale):
        return self.values(theta, scale), super().values_and_grads(theta, scale)[1]


SORTED_BOWLS = landscapes.register(_SortedBowls(key="test_sorted_bowls", title="sorted bowls", n_tasks=2,
                                                bounds=((-3, 3), (-3, 3)), presets={}, floor=(-1.0, -1.0)))


def test_a_landscape_the_kernel_refuses_runs_eagerly_and_says_why():
    kw = dict(methods=["ls", "samgs"], starts="1,2;-2,0.5;0.5,-1", steps=300, dtype="float64")
    res = trajectories.simulate(SORTED_BOWLS, **kw)
    assert res.timings["backends"] == {"ls": "torch", "samgs": "torch"}
    assert set(res.timings["kernel_fallbacks"]) == {"ls", "samgs"}
    assert all("sort" in why for why in res.timings["kernel_fallbacks"].values())
    plain = trajectories.simulate(BOWLS, **kw)       # same math, compiled: same paths
    assert "kernel_fallbacks" not in plain.timings
    np.testing.assert_allclose(res.positions, plain.positions, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["samgs", "nashmtl", "famo", "graddrop", "pcgrad"])
def test_a_large_batch_interleaves_blocks_and_computes_the_same_bits(method, monkeypatch):
    """From ILP_MIN_RUNS runs up the C kernel writes its step ILP times per SIMD loop, interleaved (kernel/c.py)
    (held down to 64 here, so that a small batch shows it).
    It must compute what the one-block kernel computes, bit for bit: positions, losses, diagnostics and
    outcomes of every run, including the last block's padding lanes (81 runs = 3 blocks of 24 + 9), and across
    the kernel calls a run is split into (chunks of 40 steps here against one call of 150: state leaves the
    block and comes back; gcc once miscompiled exactly that reload for blocks of 24).
    The methods cover state, a solver, exp/log, random draws and the surgery branches."""
    from trajectories import engine
    kw = dict(landscape="one_optimum", methods=[method], starts="grid:9", steps=150, record_every=7)
    assert engine.c_ilp(1000, "float32") == 3 and engine.c_ilp(1000, "float64") == 1 and engine.c_ilp(999, "float32") == 1
    monkeypatch.setattr(engine, "ILP_MIN_RUNS", 64)           # 81 runs are enough to show the bits
    monkeypatch.setattr(engine, "CHUNK", 40)
    wide = _run(**kw)
    assert any(k[-1] == 3 and k[0] == "c" and method in k for k in engine._KERNELS), "the batch did not interleave"
    monkeypatch.setattr(engine, "CHUNK", 1000)
    monkeypatch.setattr(engine, "c_ilp", lambda runs, dtype: 1)
    monkeypatch.setattr(engine, "ILP_READY_RUNS", 10 ** 9)     # one block, though the interleaved one is built
    one = _run(**kw)
    assert wide.timings["backends"] == one.timings["backends"] == {method: "c"}
    for k in trajectories.result.ARRAYS:
        np.testing.assert_array_equal(getattr(wide, k), getattr(one, k), err_msg=k)
    assert sorted(wide.aux) == sorted(one.aux) and len(one.aux) >= 5
    for k in one.aux:
        np.testing.assert_array_equal(wide.aux[k], one.aux[k], err_msg=k)
    assert np.isfinite(one.positions).all() and len(np.unique(one.final[0].round(3), axis=0)) > 40  # 81 runs apart


def test_a_mid_sized_batch_uses_an_interleaved_kernel_only_once_it_is_built(monkeypatch, tmp_path):
    """From ILP_READY_RUNS (64) runs a group takes the interleaved kernel when a larger group has built it on this
    machine, and never builds it itself: a first 12 x 12 grid must not wait for gcc. On an empty cache: one block,
    and no interleaved kernel appears; after a group of ILP_MIN_RUNS has built it (held down to 81 here) and the
    process forgot its kernels (a new server): the interleaved kernel, from the disk cache, and the same bits."""
    from trajectories import engine
    from trajectories.kernel import build_c
    monkeypatch.setenv("GRADSCAPE_CACHE", str(tmp_path))
    monkeypatch.setattr(engine, "_KERNELS", {})
    monkeypatch.setattr(build_c, "_LOADED", {})               # objects loaded from the usual cache stay out of it
    kw = dict(landscape="one_optimum", methods=["samgs"], starts="grid:9", steps=150, record_every=7)
    interleaved = lambda: [k for k in engine._KERNELS if k[0] == "c" and k[-1] == engine.ILP]  # noqa: E731
    cold = _run(**kw)
    assert cold.timings["backends"] == {"samgs": "c"} and not interleaved()
    monkeypatch.setattr(engine, "ILP_MIN_RUNS", 64)           # a "large" group builds it
    _run(**kw)
    assert interleaved()
    monkeypatch.setattr(engine, "ILP_MIN_RUNS", 1000)
    monkeypatch.setattr(engine, "_KERNELS", {})               # a new process: only the disk cache remembers
    ready = _run(**kw)
    assert interleaved(), "the built interleaved kernel was not used"
    for k in trajectories.result.ARRAYS:
        np.testing.assert_array_equal(getattr(ready, k), getattr(cold, k), err_msg=k)
    monkeypatch.setattr(engine, "_KERNELS", {})
    monkeypatch.setattr(engine, "ILP_READY_RUNS", 82)         # 81 runs: below the line, one block again
    _run(**kw)
    assert not interleaved()


@pytest.mark.parametrize("method", ["samgs", "nashmtl", "famo", "rlw", "graddrop"])
def test_what_every_run_shares_is_computed_once_a_block_with_the_same_bits(method, monkeypatch):
    """The C kernel computes what depends only on values shared by every run (the step counter, Adam's powers of
    beta, the settings) once per block instead of once per run (engine.uniform_leaves, kernel/c.py). Against a
    kernel told that nothing is shared: the same bits in everything the Result holds, on the two-optima landscape
    with task weights, one block (81 runs) and interleaved blocks, split into kernel calls."""
    from trajectories import engine
    kw = dict(landscape="two_optima", methods=[method], starts="grid:9", steps=150, record_every=7,
              task_weights=[0.4, 1.3])
    monkeypatch.setattr(engine, "CHUNK", 40)
    for ilp in (1, 3):
        monkeypatch.setattr(engine, "c_ilp", lambda runs, dtype: ilp)
        monkeypatch.setattr(engine, "ILP_READY_RUNS", 10 ** 9)     # ilp 1: one block, even where 3 is built
        monkeypatch.setattr(engine, "uniform_leaves", trajectories.engine.__dict__["uniform_leaves"])
        shared = _run(**kw)
        monkeypatch.setattr(engine, "uniform_leaves", lambda state, params: ())
        per_run = _run(**kw)
        assert shared.timings["backends"] == per_run.timings["backends"] == {method: "c"}
        for k in trajectories.result.ARRAYS:
            np.testing.assert_array_equal(getattr(shared, k), getattr(per_run, k), err_msg=k)
        assert sorted(shared.aux) == sorted(per_run.aux)
        for k in per_run.aux:
            np.testing.assert_array_equal(shared.aux[k], per_run.aux[k], err_msg=k)
        assert len(np.unique(per_run.final[0].round(3), axis=0)) > 20


def test_shared_leaves_never_include_a_runs_position_and_do_not_depend_on_the_batch():
    """engine.uniform_leaves: leaves equal bit for bit in every run, except the position and the random key, which
    belong to a run by design; so one start, seven starts and a grid get the same kernel. A swept setting is
    not shared."""
    from trajectories import engine
    seen = []
    real = engine.uniform_leaves

    def spy(state, params):
        names = [".".join(str(getattr(p, "key", p)) for p in path)
                 for path, _ in torch.utils._pytree.tree_flatten_with_path((state, params))[0]]
        out = real(state, params)
        seen.append({names[k].split(".", 1)[1] for k in out})
        return out
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(engine, "uniform_leaves", spy)
    try:
        for starts in ("0.5,-1", "paper", "grid:5"):
            _run(methods=["samgs"], starts=starts, steps=5)
        _run(methods=["samgs"], starts="paper", steps=5, hparams={"samgs": {"gamma": [0.05, 0.5]}})
    finally:
        monkeypatch.undo()
    one, seven, grid, swept = seen
    assert one == seven == grid
    assert {"t", "lr", "weights", "hp.gamma"} <= one
    assert not any(n == "theta" or n.startswith("theta.") or n == "key" for n in one)
    assert one - swept == {"hp.gamma"}


@pytest.mark.parametrize("ilp", [1, 3])
def test_a_run_split_into_kernel_calls_computes_what_one_call_computes(ilp, monkeypatch):
    """The engine advances runs a chunk of steps per kernel call; state leaves the kernel's block between calls.
    Positions-only records (the jobs' kind of kernel, where the reload bug showed) and 100 runs (the last block
    part padding), chunks of 300 steps against one call of 900, for one block and for interleaved blocks."""
    from trajectories import engine
    monkeypatch.setattr(engine, "c_ilp", lambda runs, dtype: ilp)
    monkeypatch.setattr(engine, "ILP_READY_RUNS", 10 ** 9)     # ilp 1: one block, even where 3 is built
    kw = dict(landscape="one_optimum", methods=["samgs", "ls"], starts="grid:10", steps=900, record_every=50,
              record=("positions",))
    monkeypatch.setattr(engine, "CHUNK", 300)
    split = _run(**kw)
    monkeypatch.setattr(engine, "CHUNK", 1000)
    whole = _run(**kw)
    np.testing.assert_array_equal(split.positions, whole.positions)
    np.testing.assert_array_equal(split.final, whole.final)
    np.testing.assert_array_equal(split.status, whole.status)


def test_a_poisoned_run_is_frozen_and_spoils_nothing():
    """One setting's learning rate blows its runs up (SGD, lr 50: distances grow 99-fold a step); the other
    runs of the same batch are bit-identical to a clean batch, and the blown-up ones are frozen."""
    kw = dict(landscape="test_bowls", methods=["ls", "samgs"], starts="1,2;-2,0.5;0.5,-1", steps=200,
              optimizer="sgd", momentum=0.0)
    clean = _run(lr=[1e-3], **kw)
    mixed = _run(lr=[1e-3, 50.0], **kw)
    rows = [i for i, v in enumerate(mixed.variants) if v["lr"] == 1e-3]
    np.testing.assert_array_equal(mixed.positions[rows], clean.positions)
    # LS blows up; SAM-GS's reference clip bounds each step (|d| <= 1), so it stays finite
    bad = [i for i, v in enumerate(mixed.variants) if v["lr"] == 50.0 and v["method"] == "ls"]
    assert (mixed.diverged_step[bad] >= 0).all()
    assert (mixed.status[bad] == "blowup").all() and (mixed.outcome[bad] == "blowup").all()
    assert (mixed.diverged_step[rows] == -1).all()
    assert (mixed.diverged_step[bad] == 2).all()      # 2 -> 99^2: beyond 1e6 after the third update
    assert np.isfinite(mixed.final).all(), "a diverged run is frozen at its last finite position"
    assert (np.abs(mixed.final[bad]) < 1e6).all()


def test_sweep_rows_equal_separate_runs():
    sweep = _run(methods=["samgs"], hparams={"samgs": {"gamma": [0.05, 0.5]}}, lr=[1e-3, 3e-3])
    assert sweep.final.shape[0] == 4
    assert [v["hparams"]["gamma"] for v in sweep.variants] == [0.05, 0.5, 0.05, 0.5]
    assert [v["lr"] for v in sweep.variants] == [1e-3, 1e-3, 3e-3, 3e-3]
    assert "gamma=0.05" in sweep.labels[0] and "lr=0.001" in sweep.labels[0]
    one = _run(methods=["samgs"], hparams={"samgs": {"gamma": 0.5}}, lr=3e-3)
    np.testing.assert_array_equal(sweep.positions[3], one.positions[0])


def test_task_weights_sweep_and_landscape_defaults():
    res = simulate("two_optima", ["samgs"], "paper", 50, task_weights=[[1, 1], [0.3, 0.7]], record_every=10)
    assert res.variants[0]["hparams"]["beta2"] == 0.9       # the two-optima default of the paper
    assert res.variants[1]["task_weights"] == [0.3, 0.7]
    np.testing.assert_allclose(res.losses[1, :, 0, 0] / res.losses[0, :, 0, 0], 0.3, rtol=1e-6)


def test_random_methods_are_reproducible_and_independent_of_batch():
    if "rlw" not in optimizers.names():
        pytest.fail("rlw is not registered")
    a = _run(methods=["rlw"], starts="paper", seed=3)
    b = _run(methods=["rlw"], starts="paper", seed=3)
    c = _run(methods=["rlw"], starts="-8,5;-3,7.5", seed=3)       # the first two starts only
    d = _run(methods=["rlw"], starts="paper", seed=4)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.positions[:, :2], c.positions)
    assert not np.array_equal(a.positions, d.positions)


def test_save_load_round_trip(tmp_path):
    res = _run()
    path = res.save(tmp_path / "r.npz")
    assert path.exists() and path.with_suffix(".json").exists()
    back = Result.load(path)
    for name in ("positions", "losses", "final", "status", "outcome", "pareto_distance", "record_steps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    for k in res.aux:
        np.testing.assert_array_equal(back.aux[k], res.aux[k])
    assert back.config == res.config and back.methods == res.methods
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["methods"] == ["samgs", "ls"]
    again = trajectories.run(trajectories.Config.from_dict(back.config))     # the saved config reproduces it
    np.testing.assert_array_equal(again.positions, res.positions)
    in_memory = Result.from_bytes(res.to_bytes())                          # what a job chunk's file holds
    np.testing.assert_array_equal(in_memory.final, res.final)
    assert list(in_memory.outcome.ravel()) == list(res.outcome.ravel())
    frame = res.to_frame()
    assert len(frame) == 14 and set(frame["method"]) == {"samgs", "ls"}


def test_record_layout_and_final_record():
    res = _run(steps=100, record_every=25)
    np.testing.assert_array_equal(res.record_steps, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(res.positions[:, :, 0], np.broadcast_to(res.starts, res.positions[:, :, 0].shape))
    np.testing.assert_allclose(res.positions[:, :, -1], res.final, atol=1e-6)
    odd = _run(steps=90, record_every=25)      # the final step is not on the record grid
    np.testing.assert_array_equal(odd.record_steps, [0, 25, 50, 75])


@pytest.mark.parametrize("kw,msg", [
    (dict(methods=["nope"]), "unknown method"),
    (dict(starts="50,0"), "outside the box"),
    (dict(starts="nan,0"), "finite"),
    (dict(starts="grid:0"), "grid size"),
    (dict(lr=-1.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(steps=0), "steps"),
    (dict(steps=10 ** 9), "steps"),
    (dict(pipeline="dirty"), "pipeline"),
    (dict(hparams={"samgs": {"gamma": 7}}), "gamma"),
    (dict(hparams={"samgs": {"zeta": 1}}), "unknown hyperparameter"),
    (dict(hparams={"cagrad": {"c": 0.5}}), "not among the chosen"),
    (dict(task_weights=[1, 2, 3]), "task_weights"),
    (dict(task_weights=[1, -2]), "task_weights"),
    (dict(optimizer="lbfgs"), "outer"),
    (dict(starts="grid:1000", steps=20000, record_every=1), "memory"),
])
def test_bad_input_is_refused_with_a_message_naming_the_field(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _run(**kw)


def test_progress_and_cancel():
    seen = []
    _run(steps=2500, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) == 3
    with pytest.raises(trajectories.Cancelled):
        _run(steps=5000, cancel=lambda: True)


def test_early_exit_keeps_the_outcome():
    full = _run(methods=["ls"], steps=20000, record_every=100, record=("positions",))
    fast = _run(methods=["ls"], steps=20000, record_every=100, record=("positions",), early_exit=True)
    assert fast.timings["steps_run"] <= 20000
    np.testing.assert_array_equal(full.outcome, fast.outcome)
    np.testing.assert_allclose(full.final, fast.final, atol=0.05)


def test_the_gpu_path_torch_compile_agrees_with_the_kernel():
    """backend="compile" (torch.compile of the same step: what the GPU row of ``bench --speed`` runs on CUDA)
    gives the kernel's paths. Checked here on the CPU; on a GPU the same call takes device="cuda"."""
    kw = dict(starts="paper", steps=300, dtype="float64", record_every=50)
    a = simulate("one_optimum", ["samgs", "ls"], backend="compile", **kw)
    b = simulate("one_optimum", ["samgs", "ls"], backend="c", **kw)
    assert set(a.timings["backends"].values()) == {"compile"}
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-9, rtol=0)


def test_a_method_given_no_settings_round_trips_through_a_dict():
    # {"samgs": {}} froze to ("samgs", ()) and thawed to {"samgs": []}, which from_dict then refused
    cfg = Config.make("one_optimum", ["samgs", "mgda"], [(0.0, 0.0)], 10, hparams={"samgs": {}, "mgda": {}})
    assert cfg.to_dict()["hparams"] == {"samgs": {}, "mgda": {}}
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
