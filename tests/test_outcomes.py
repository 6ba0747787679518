"""What a run reached and how it ended come from the run itself (trajectories/metrics.py), not from how often it
was recorded: NaN and blow-up told apart, a run that reached the optimum and then turned NaN counted as reached,
and the status the same for every ``record_every``.

Expected values come from the landscapes' optima and from arithmetic on the runs' own positions.
"""
from __future__ import annotations

import numpy as np
import pytest

import landscapes
import trajectories
from landscapes import custom


def test_the_status_does_not_depend_on_how_often_the_run_is_recorded():
    """LS, clean pipeline, float64, Adam lr 1e-3, 1 000 steps: Adam moves ~1e-3 a step, so each run covers far
    more than 0.05 over its last 100 steps — still moving, whatever the recording grid."""
    land = landscapes.get("one_optimum")
    kw = dict(pipeline="clean", dtype="float64", lr=1e-3)
    results = {k: trajectories.simulate(land, ["ls"], "-8,5;3,7.5;9,-3", 1000, record_every=k, **kw)
               for k in (1, 10, 100, 1000)}
    every = results[1]
    tail = every.positions[0, :, 900:]                 # the last 100 steps, recorded at every step
    span = np.linalg.norm(tail - every.final[0][:, None], axis=-1).max(1)
    assert (span > 0.05).all()                         # by the definition: not settled
    for k, res in results.items():
        np.testing.assert_array_equal(res.final, every.final)
        assert res.status.tolist() == [["moving"] * 3], k
        assert res.outcome.tolist() == every.outcome.tolist(), k


def test_a_settled_run_is_settled_whatever_the_recording():
    """SAM-GS from the paper's starts for 20 000 steps ends at the optimum and stops there."""
    land = landscapes.get("one_optimum")
    a = trajectories.simulate(land, ["samgs"], "-8,5;9,-3", 20000, record_every=1)
    b = trajectories.simulate(land, ["samgs"], "-8,5;9,-3", 20000, record_every=20000)
    tail = a.positions[0, :, 18000:]
    assert (np.linalg.norm(tail - a.final[0][:, None], axis=-1).max(1) <= 0.05).all()
    assert a.status.tolist() == b.status.tolist() == [["settled", "settled"]]
    assert a.outcome.tolist() == b.outcome.tolist() == [["optimum 1", "optimum 1"]]


def test_cagrad_reaches_the_optimum_then_turns_nan_there_and_counts_as_reached():
    """The reference pipeline's CAGrad from the paper's starts: the runs that turn NaN had first come within 0.1
    of the optimum (the engine's hit step precedes the NaN step), and froze there."""
    land = landscapes.get("one_optimum")
    res = trajectories.simulate(land, ["cagrad"], "paper", 20000, record_every=100)
    opt = land.optima()[0]
    nan = np.char.startswith(res.status[0].astype(str), "nan")
    assert nan.any()
    for s in np.flatnonzero(nan):
        assert 0 <= res.optimum_step[0, s] < res.diverged_step[0, s]
        assert np.linalg.norm(res.final[0, s] - opt) <= 0.1          # the last finite point: at the optimum
        assert res.status[0, s] == "nan:optimum" and res.outcome[0, s] == "optimum 1"
    summary = res.summary().iloc[0]
    at_end = np.linalg.norm(res.final[0] - opt, axis=1) <= 0.1
    assert summary["optimum"] == int(at_end.sum()) and summary["died_after"] == int(nan.sum())


def test_blowing_up_and_turning_nan_are_told_apart():
    # SGD at lr 50 on a bowl multiplies the distance by 99 a step: |θ| passes 1e6 — it blew up, it is no NaN
    bowls = custom.from_spec({"name": "bowls", "tasks": ["(x1-1)^2 + x2^2", "(x1+1)^2 + x2^2"],
                              "bounds": [[-5, 5], [-5, 5]]})
    up = trajectories.simulate(bowls, ["ls"], "3,3", 50, optimizer="sgd", momentum=0.0, lr=50.0)
    assert up.status[0, 0] == "blowup" and up.outcome[0, 0] == "blowup"
    assert np.abs(up.final[0, 0]).max() < 1e6 and np.abs(up.final[0, 0]).max() > 1e3
    # sqrt of a negative number is NaN: one long step (SGD, lr 1.5) throws the run past x1 = -1, far from the
    # optimum (x1 ~ -0.3), and the next gradient there is NaN
    edge = custom.from_spec({"name": "edge", "tasks": ["x1^2 + x2^2 + sqrt(x1 + 1)", "x1^2 + (x2 - 1)^2 + sqrt(x1 + 1)"],
                             "bounds": [[-2, 2], [-2, 2]]})
    down = trajectories.simulate(edge, ["ls"], "1.5,0.5", 100, optimizer="sgd", momentum=0.0, lr=1.5,
                                 pipeline="clean")
    assert down.status[0, 0] == "nan" and down.outcome[0, 0] == "nan"
    assert down.diverged_step[0, 0] == 1 and down.final[0, 0, 0] < -1.0     # frozen at its last finite point


@pytest.mark.parametrize("backend", ["c", "torch"])
def test_the_engine_tail_box_is_the_box_of_every_recorded_step(backend):
    """Recorded at every step, the positions of the tail span exactly the box the engine kept: the settled test
    on that box gives the engine's status (C kernel and eager torch alike)."""
    from trajectories import metrics
    land = landscapes.get("one_optimum")
    res = trajectories.simulate(land, ["cagrad", "ls", "samgs"], "paper", 3000, record_every=1, dtype="float64",
                                backend=backend)
    tail = res.positions[:, :, metrics.tail_start(3000):]
    want = metrics.settled_in_tail(res.final, tail.min(2), tail.max(2))
    alive = ~metrics.died(res.status)
    assert ((res.status == "settled") == want)[alive].all()
    assert want[alive].any() and (~want[alive]).any()          # both kinds occur: the test has teeth


@pytest.mark.parametrize("steps", [1, 9, 10, 1000])
def test_the_tail_is_the_last_tenth_of_the_steps(steps):
    from trajectories import metrics
    start = metrics.tail_start(steps)
    assert steps - start == max(1, int(np.ceil(0.1 * steps)))
