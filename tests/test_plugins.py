"""Methods of your own (optimizers/plugins.py): a file of ``Method(...)``s loaded by ``--method-file``,
``GRADSCAPE_METHODS`` or an entry point, checked against the contract (optimizers/contract.py) on load.

Expected values: an independent numpy computation of a plugin's trajectory (its formula re-typed in numpy, the
bowls' gradients by hand, SGD by hand), and the names of the contract's rules in each refusal.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import optimizers
import trajectories
from figures import style
from landscapes import custom
from optimizers import HParam, Method, contract, plugins

from plugin_examples import RIDGE_SOLVE, UNIT_MOMENTUM

ROOT = Path(__file__).resolve().parents[1]

BOWLS = {"name": "plugin bowls", "tasks": ["(x1 - 1)^2 + x2^2", "(x1 + 1)^2 + x2^2"], "bounds": [[-4, 4], [-4, 4]]}
STARTS = [[2.0, 1.0], [-1.5, -2.0], [0.5, 3.0]]


@pytest.fixture(autouse=True)
def registry():
    """Each test leaves the registry as it found it."""
    before = set(plugins.registered())
    yield
    plugins.unregister(*[k for k in plugins.registered() if k not in before])


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def bowl_grads(th):
    """The bowls' task gradients by hand: g1 = 2 (x - 1, y), g2 = 2 (x + 1, y)."""
    x, y = th
    return np.array([[2 * (x - 1), 2 * y], [2 * (x + 1), 2 * y]])


def np_unit_momentum_path(start, steps, lr, beta):
    th, m, path = np.array(start, dtype=float), np.zeros(2), []
    for _ in range(steps):
        path.append(th.copy())
        G = bowl_grads(th)
        n = np.linalg.norm(G, axis=1, keepdims=True)
        m = beta * m + (1 - beta) * np.where(n > 0, G / np.where(n > 0, n, 1.0), 0.0).sum(0)
        th = th - lr * m                        # SGD, momentum 0: theta <- theta - lr d
    return np.array(path + [th])


def np_ridge_path(start, steps, lr):
    th, path = np.array(start, dtype=float), []
    for _ in range(steps):
        path.append(th.copy())
        G = bowl_grads(th)
        w = np.linalg.solve(G @ G.T + np.eye(2), np.ones(2))
        th = th - lr * (w @ G)
    return np.array(path + [th])


# ---------------------------------------------------------------------------------------------
# Running a plugin.

def test_a_plugin_written_in_a_test_file_runs_from_the_cli_in_the_c_kernel_and_matches_numpy(tmp_path):
    plugin = write(tmp_path, "unit_momentum.py", UNIT_MOMENTUM)
    land = write(tmp_path, "bowls.yaml", "name: plugin bowls\ntasks: ['(x1 - 1)^2 + x2^2', '(x1 + 1)^2 + x2^2']\n"
                                         "bounds: [[-4, 4], [-4, 4]]\n")
    out = tmp_path / "result.npz"
    starts = ";".join(f"{x},{y}" for x, y in STARTS)
    cmd = [sys.executable, "-m", "trajectories", "run", "--method-file", str(plugin), "--landscape-file", str(land),
           "--methods", "unitmomentum", "--hp", "unitmomentum.beta=0.5", "--starts", starts, "--steps", "300",
           "--optimizer", "sgd", "--momentum", "0", "--lr", "0.05", "--dtype", "float64", "--record-every", "1",
           "--out", str(out), "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != plugins.ENV}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = trajectories.Result.load(out)
    assert res.timings["backends"] == {"unitmomentum": "c"}
    assert res.variants[0]["hparams"] == {"beta": 0.5}
    for s, start in enumerate(STARTS):
        np.testing.assert_allclose(res.positions[0, s], np_unit_momentum_path(start, 300, 0.05, 0.5),
                                   rtol=1e-10, atol=1e-12)


def test_a_plugin_the_c_kernel_refuses_runs_in_eager_torch_and_the_result_says_why(tmp_path):
    plugins.load_file(write(tmp_path, "ridge.py", RIDGE_SOLVE))
    res = trajectories.simulate(custom.from_spec(BOWLS), ["ridgesolve"], STARTS, 120, optimizer="sgd", momentum=0.0,
                                lr=0.05, dtype="float64", record_every=1)
    assert res.timings["backends"] == {"ridgesolve": "torch"}
    why = res.timings["kernel_fallbacks"]["ridgesolve"]
    assert "linalg" in why and "torch.linalg" in why and "eager torch" in why
    for s, start in enumerate(STARTS):
        np.testing.assert_allclose(res.positions[0, s], np_ridge_path(start, 120, 0.05), rtol=1e-10, atol=1e-12)


def test_the_readme_example_is_a_method_file_that_keeps_the_contract(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Bring your own method"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code.strip() == UNIT_MOMENTUM.strip() and len(code.strip().splitlines()) <= 26
    (m,) = plugins.load_file(write(tmp_path, "readme_method.py", code))
    assert m.plugin and optimizers.get(m.key) is m


# ---------------------------------------------------------------------------------------------
# The registry.

def test_a_loaded_plugin_joins_names_get_and_by_family_after_the_built_ins_with_origin_label_and_colour(tmp_path):
    path = write(tmp_path, "unit_momentum.py", UNIT_MOMENTUM)
    (m,) = plugins.load_file(path)
    assert optimizers.names()[:22] == list(optimizers.built_in()) and optimizers.names()[-1] == "unitmomentum"
    assert optimizers.get("unitmomentum") is m
    assert "unitmomentum" in optimizers.by_family()["similarity-aware"]
    assert m.plugin and m.origin == str(path.resolve()) and m.label == "Unit momentum (local plugin)"
    assert m.colour in plugins.COLOURS and style.colour("unitmomentum", 5) == m.colour
    assert not optimizers.get("samgs").plugin and optimizers.get("samgs").label == "SAM-GS"
    assert plugins.load_file(path) == (m,)                  # loading a file again changes nothing


def test_a_plugin_keeps_its_own_colour(tmp_path):
    (m,) = plugins.load_file(write(tmp_path, "coloured.py", UNIT_MOMENTUM.replace(
        'aux=(),', 'aux=(), colour="#123456",').replace('"unitmomentum"', '"coloured"')))
    assert m.colour == "#123456" and style.colour("coloured") == "#123456"


def test_gradscape_methods_adds_plugins_while_it_is_set(tmp_path, monkeypatch):
    a = write(tmp_path, "unit_momentum.py", UNIT_MOMENTUM)
    b = write(tmp_path, "ridge.py", RIDGE_SOLVE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(plugins.ENV, f"unit_momentum.py{os.pathsep}{b}")
    assert optimizers.names()[-2:] == ["unitmomentum", "ridgesolve"]
    assert optimizers.get("ridgesolve").origin == str(b.resolve()) and optimizers.load_errors() == []
    # made absolute in the environment, which a benchmark worker inherits with another working directory
    assert os.environ[plugins.ENV] == f"{a.absolute()}{os.pathsep}{b}"
    monkeypatch.delenv(plugins.ENV)
    assert optimizers.names() == list(optimizers.built_in())


def test_a_broken_file_in_gradscape_methods_is_reported_and_every_other_method_keeps_working(tmp_path, monkeypatch):
    good = write(tmp_path, "unit_momentum.py", UNIT_MOMENTUM)
    bad = write(tmp_path, "centred.py", broken("d = G.sum(1) - G.sum(1).mean(0, keepdim=True)"))
    monkeypatch.setenv(plugins.ENV, f"{bad}{os.pathsep}{good}")
    assert optimizers.names() == list(optimizers.built_in()) + ["unitmomentum"]
    (problem,) = optimizers.load_errors()
    assert problem.startswith(f"{plugins.ENV}: method 'broken' breaks the contract") and str(bad) in problem
    assert "no reduction over the batch" in problem


def test_an_installed_package_registers_methods_through_the_entry_point_group(tmp_path, monkeypatch):
    write(tmp_path, "gradscape_test_methods.py", UNIT_MOMENTUM.replace('"unitmomentum"', '"fromapackage"'))
    dist = tmp_path / "gradscape_test_methods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gradscape-test-methods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{plugins.GROUP}]\nmine = gradscape_test_methods\n"
                                           f"broken = gradscape_test_missing_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(plugins._STATE, "entry_points", None)      # this process reads its entry points again
    assert "fromapackage" in optimizers.names()
    m = optimizers.get("fromapackage")
    assert m.origin == "entry point mine (gradscape_test_methods)" and m.label.endswith("(local plugin)")
    (problem,) = [p for p in optimizers.load_errors() if "broken" in p]
    assert problem.startswith("entry point broken (gradscape_test_missing_module): importing it failed")


def test_a_stateless_method_needs_no_init():
    m = Method(key="plain", name="Plain", family="loss weighting", paper="-", summary="-",
               step=lambda G, L, state, hp, ctx: (G.sum(1), state, {"weights": torch.ones_like(L)}))
    assert m.init(3, 2, 2, {}, dtype=torch.float32, device="cpu") == {}
    assert contract.check(m).ok


# ---------------------------------------------------------------------------------------------
# Each rule of the contract, broken by a plugin, and the message that names it.

TEMPLATE = '''
import torch
from optimizers import HParam, Method


def init(B, K, D, hp, *, dtype, device):
    return {init}


def step(G, L, state, hp, ctx):
    {body}
    return d, state, {{}}


METHODS = (Method(key={key!r}, name="Broken", family={family!r}, paper="(a test)", summary="breaks a rule",
                  init=init, step=step, aux=(), {extra}),)
'''


def broken(body="d = G.sum(1)", key="broken", family="loss weighting", extra="", init="{}") -> str:
    return TEMPLATE.format(body=body, key=key, family=family, extra=extra, init=init)


RULE_BREAKERS = {
    "spec: family": (broken(family="fancy"), "spec: family 'fancy' must be one of loss weighting"),
    "spec: key": (broken(key="My Method"), "spec: key 'My Method' must be a lowercase identifier"),
    "spec: a built-in's key": (broken(key="samgs"), "spec: key 'samgs' is taken by the built-in SAM-GS"),
    "spec: hyperparameter range": (broken(extra='hparams=(HParam("beta", 2.0, 0.0, 1.0, 0.1, "b"),)'),
                                   "spec: hyperparameter beta: needs low <= default <= high"),
    "signature": (broken().replace("def step(G, L, state, hp, ctx):", "def step(G, L, state):"),
                  "signature: step(G, L, state) cannot be called as step(G, L, state, hp, ctx)"),
    "signature: the returned triple": (broken().replace("return d, state, {}", "return d"),
                                       "signature: step must return (d, state, aux), got Tensor"),
    "d of shape [B, D]": (broken("d = G.sum(-1)"), "d of shape [B, D]: step must return d as a"),
    "state and aux [B, ...]": (broken(init='{"m": torch.zeros(D, dtype=dtype)}'),
                               "state and aux [B, ...]: state 'm' from init must be a tensor with a leading batch axis"),
    "state and aux [B, ...]: stable shapes": (
        broken("d = G.sum(1)\n    state = {'m': torch.zeros(G.shape[0], 3, dtype=G.dtype)}",
               init='{"m": torch.zeros(B, 2, dtype=dtype)}'),
        "state and aux [B, ...]: step changes state 'm' from float32[5, 2] to float32[5, 3]"),
    "state and aux [B, ...]: declared aux": (broken().replace("aux=(), ", ""),
                                             "state and aux [B, ...]: aux lacks the declared key(s) weights"),
    "no reduction over the batch": (broken("d = G.sum(1) - G.sum(1).mean(0, keepdim=True)"),
                                    "no reduction over the batch: aten.mean over dim [0] of a [B, 2] tensor"),
    "rows independent": (broken("d = torch.roll(G.sum(1), 1, 0)"),
                         "rows independent: run 0 (ordinary gradients) computed in a batch of 8 differs from the "
                         "same run computed alone"),
    "rows independent: a NaN run": (broken("d = G.sum(1) + 0.0 * G.sum()"),
                                    "rows independent: a run with NaN or inf gradients changes run 0"),
    "finite on ordinary input": (broken("d = G.sum(1) * torch.exp(20.0 * L.sum(1, keepdim=True))"),
                                 "finite on ordinary input: step 1 gives d = "),
}


@pytest.mark.parametrize("case", list(RULE_BREAKERS))
def test_a_plugin_that_breaks_a_rule_is_refused_with_one_line_naming_the_rule(case, tmp_path):
    source, message = RULE_BREAKERS[case]
    path = write(tmp_path, "broken.py", source)
    with pytest.raises(ValueError) as e:
        plugins.load_file(path)
    text = str(e.value)
    assert message in text and "\n" not in text
    assert str(path.resolve()) in text
    assert "broken" not in optimizers.names() and "My Method" not in optimizers.names()


@pytest.mark.parametrize("source,message", [
    ("def step(:\n", "importing it failed: SyntaxError"),
    ("raise RuntimeError('no')\n", "importing it failed: RuntimeError: no"),
    ("x = 1\n", "expected METHODS = (optimizers.Method(...), ...), got no METHODS"),
    ("METHODS = ('samgs',)\n", "expected METHODS = (optimizers.Method(...), ...), got tuple"),
])
def test_a_file_that_is_not_a_method_module_is_refused_with_a_message(source, message, tmp_path):
    with pytest.raises(ValueError, match=re.escape(message)):
        plugins.load_file(write(tmp_path, "odd.py", source))


def test_only_existing_python_files_are_loaded(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        plugins.load_file(tmp_path / "missing.py")
    with pytest.raises(ValueError, match="expected a Python file ending in .py"):
        plugins.load_file(write(tmp_path, "method.txt", UNIT_MOMENTUM))


def test_two_files_may_not_share_a_key(tmp_path):
    plugins.load_file(write(tmp_path, "a.py", UNIT_MOMENTUM))
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="spec: key 'unitmomentum' is taken by the plugin from"):
        plugins.load_file(write(tmp_path / "b", "a.py", UNIT_MOMENTUM))


def test_the_cli_refuses_a_broken_method_file_with_status_2_and_one_line_naming_the_rule(tmp_path, monkeypatch,
                                                                                        capsys):
    from cli import bench
    from cli.main import entry

    path = write(tmp_path, "rolled.py", RULE_BREAKERS["rows independent"][0])
    monkeypatch.setattr(sys, "argv", ["trajectories", "run", "--method-file", str(path), "--methods", "ls",
                                      "--steps", "10", "--out", str(tmp_path / "r.npz")])
    assert entry() == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: method 'broken' breaks the contract: rows independent: run 0")
    assert bench.main(["--preset", "paper-one-optimum", "--method-file", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bench: method 'broken' breaks the contract: rows independent")
    assert not (tmp_path / "r.npz").exists()


def test_loading_and_checking_a_small_plugin_takes_under_a_second(tmp_path):
    import time
    plugins.load_file(write(tmp_path, "warm.py", UNIT_MOMENTUM.replace('"unitmomentum"', '"warm"')))
    took = []
    for key in ("timed", "timedagain"):          # the better of two: the machine is shared
        path = write(tmp_path, f"{key}.py", UNIT_MOMENTUM.replace('"unitmomentum"', f'"{key}"'))
        t0 = time.perf_counter()
        plugins.load_file(path)
        took.append(time.perf_counter() - t0)
    assert min(took) < 1.0, took


def test_an_hparam_spec_drives_per_run_values(tmp_path):
    """The plugin's HParam behaves as a built-in's: defaults, checks, per-run sweeps in one call."""
    (m,) = plugins.load_file(write(tmp_path, "unit_momentum.py", UNIT_MOMENTUM))
    assert m.hparam("beta") == HParam("beta", 0.9, 0.0, 0.99, 0.01, "EMA rate of the direction")
    with pytest.raises(ValueError, match="beta: 2 is outside"):
        m.resolve({"beta": 2})
    res = trajectories.simulate(custom.from_spec(BOWLS), ["unitmomentum"], STARTS[:1], 50, optimizer="sgd",
                                momentum=0.0, lr=0.05, dtype="float64", record_every=50,
                                hparams={"unitmomentum": {"beta": [0.0, 0.5]}})
    for v, beta in enumerate((0.0, 0.5)):
        np.testing.assert_allclose(res.final[v, 0], np_unit_momentum_path(STARTS[0], 50, 0.05, beta)[-1],
                                   rtol=1e-10, atol=1e-12)
