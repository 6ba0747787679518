"""The published paths shipped as data (figures/published.py): the ghosts Explore draws under the runs that have one.

Expected values come from the reference files in ``../shared/reference/`` (read here directly, as the fidelity tests
read them: an independent source for the shipped data), from their README (which hyperparameters made which run,
what a robust run must reproduce), or from arithmetic.
"""
from __future__ import annotations

import numpy as np
import pytest

import trajectories
from figures import browser, published
from figures.live import resolve
from test_fidelity import REF_DIR

RANDOM = {"rlw", "graddrop"}
FILES = {"paper": "samgs_toy_reference.npz", "grid": "grid_reference.npz"}


def _reference_runs():
    """(source, landscape, reference method key, start index) -> (start, positions every 50th step, robust,
    outcomes)."""
    out = {}
    for source, name in FILES.items():
        with np.load(REF_DIR / name) as z:
            for land, meth in sorted({tuple(k.split("/")[:2]) for k in z.files}):
                pre = f"{land}/{meth}/"
                for s, start in enumerate(z[pre + "starts"]):
                    out[(source, land, meth, s)] = (tuple(start), z[pre + "positions"][s], bool(z[pre + "robust"][s]),
                                                    str(z[pre + "outcomes"][s]))
    return out


def _engine_key(ref_key: str) -> str:
    return "cagrad" if ref_key == "cagrad_c05" else ref_key


def test_the_shipped_ghosts_reproduce_the_reference_files_points():
    ref = _reference_runs()
    shipped = {(r.source, r.landscape, r.method, r.start): r for r in published.runs()}
    wanted = {k: v for k, v in ref.items() if k[2] not in RANDOM}
    assert len(shipped) == len(wanted) == 682
    for (source, land, meth, _), (start, pos, robust, outcomes) in wanted.items():
        run = shipped[(source, land, _engine_key(meth), start)]
        assert run.stride == 100 and run.steps == (len(pos) - 1) * 50
        np.testing.assert_array_equal(run.record_steps, np.arange(0, run.steps + 1, 100))
        # every 100th step of the reference (every second record), to float32 rounding
        np.testing.assert_allclose(run.path, pos[::2], rtol=1e-6, atol=1e-6)
        assert run.robust == robust and run.outcomes == tuple(outcomes.split(","))


def test_random_methods_are_not_shipped():
    assert not {r.method for r in published.runs()} & RANDOM


def test_the_shipped_data_is_small_and_holds_no_pickles():
    assert published.DATA.stat().st_size < 1_000_000
    with np.load(published.DATA, allow_pickle=False) as z:     # would raise on an object array
        assert all(z[k].dtype != object for k in z.files)


def test_each_published_run_records_the_settings_that_made_it():
    """The reference README: CAGrad with c = 0.5; SAM-GS γ 0.1, β1 0.9, β2 0.99 (one optimum) and 0.9 (two optima);
    the grid's Nash-MTL with exact weights (no stop test), the paper starts' with the published code's (stop test
    on)."""
    by = {(r.source, r.landscape, r.method): dict(r.hparams) for r in published.runs()}
    assert by[("paper", "one_optimum", "cagrad")]["c"] == 0.5
    assert by[("grid", "two_optima", "cagrad")]["c"] == 0.5
    assert by[("paper", "one_optimum", "samgs")] == {"gamma": 0.1, "beta1": 0.9, "beta2": 0.99}
    assert by[("paper", "two_optima", "samgs")] == {"gamma": 0.1, "beta1": 0.9, "beta2": 0.9}
    assert by[("grid", "one_optimum", "nashmtl")]["stop_test"] == 0
    assert by[("paper", "one_optimum", "nashmtl")]["stop_test"] == 1


# -- matching a view's runs ------------------------------------------------------------------------------------
def _run(land="one_optimum", methods=("samgs", "ls"), starts="paper", steps=None, **kw):
    steps = steps or (20000 if land == "one_optimum" else 21000)
    return trajectories.simulate(land, list(methods), starts, steps, record=("positions",), **kw)


@pytest.fixture(scope="module")
def paper_view():
    """SAM-GS, LS and CAGrad (c = 0.4, the default) from the paper's 7 starts, every 100th step recorded."""
    return _run(methods=("samgs", "ls", "cagrad"), record_every=100)


def test_every_run_of_a_published_method_from_a_paper_start_has_its_ghost(paper_view):
    ms = published.matches(paper_view)
    rows = {paper_view.labels[m]: sorted(mt.start for mt in ms if mt.row == m) for m in range(3)}
    assert rows == {"SAM-GS": list(range(7)), "LS": list(range(7)), "CAGrad": []}
    for mt in ms:
        np.testing.assert_array_equal(mt.run.start, paper_view.starts[mt.start])
        assert mt.run.source == "paper"


def test_a_method_at_other_hyperparameters_has_no_ghost_and_the_page_is_told_why(paper_view):
    notes = published.row_notes(paper_view)
    assert set(notes) == {2} and "c 0.4 (published 0.5)" in notes[2]
    c05 = _run(methods=("cagrad",), hparams={"cagrad": {"c": 0.5}}, steps=2000)
    assert len(published.matches(c05)) == 7


@pytest.mark.parametrize("kw,why", [
    (dict(pipeline="clean"), "clean pipeline"),
    (dict(optimizer="sgd"), "optimiser sgd"),
    (dict(dtype="float64"), "float64"),
    (dict(scale=2.0), "scale 2"),
])
def test_a_view_unlike_the_published_runs_has_no_ghosts_and_says_why(kw, why):
    res = _run(methods=("samgs",), steps=300, **kw)
    assert published.matches(res) == []
    assert why in published.why_none(res.config)


def test_another_learning_rate_or_task_weights_name_the_row():
    res = _run(methods=("samgs", "ls"), steps=300, lr=2e-3)
    assert published.matches(res) == [] and all("lr 0.002" in v for v in published.row_notes(res).values())
    res = _run(methods=("ls",), steps=300, task_weights=(0.3, 0.7))
    assert published.matches(res) == [] and "task weights" in published.row_notes(res)[0]


def test_fewer_steps_cut_the_ghost_and_more_steps_have_none():
    short = _run(methods=("ls",), steps=5000)
    ghosts = published.ghosts(short)[0]
    assert len(ghosts) == 7 and all(len(g) == 5000 // 100 + 1 for g in ghosts)
    longer = _run(methods=("ls",), steps=20050)
    assert published.matches(longer) == [] and "more steps" in published.row_notes(longer)[0]


def test_the_reference_grid_preset_has_a_ghost_under_every_grid_run():
    res = _run(land="two_optima", methods=("samgs", "mgda"), starts="refgrid", steps=300)
    ms = published.matches(res)
    assert len(ms) == 50
    # (0, -8) is also one of the paper's starts: the authors' own run is the one drawn there
    assert {tuple(res.starts[mt.start]) for mt in ms if mt.run.source == "paper"} == {(0.0, -8.0)}


def test_robust_runs_stay_within_the_fidelity_tolerance_of_their_ghost(paper_view):
    """The reference README: a robust run must be reproduced path and all, every recorded point within 0.05."""
    ms = [mt for mt in published.matches(paper_view) if mt.run.robust]
    assert len(ms) == 4                              # SAM-GS and LS from (±10, -3)
    for mt in ms:
        d = published.largest_distance(mt.run, paper_view.positions[mt.row, mt.start], paper_view.record_steps,
                                       20000)
        assert d <= 0.05


def test_the_largest_distance_is_the_largest_gap_at_the_ghosts_points():
    run = published.runs()[0]
    steps = np.arange(0, run.steps + 1, 50)                      # recorded twice as often as the ghost
    pos = np.repeat(run.path.astype(float), 2, axis=0)[: len(steps)]
    pos[::2] += [0.3, 0.4]                                       # every ghost point off by 0.5
    pos[11] += [7.0, 0.0]                                        # step 550, between ghost points: not measured
    assert published.largest_distance(run, pos, steps, run.steps) == pytest.approx(0.5, abs=1e-6)
    pos[2 * 17] = np.nan                                         # a diverged record counts as infinitely far
    assert published.largest_distance(run, pos, steps, run.steps) == np.inf
    with pytest.raises(ValueError, match="record_every"):
        published.largest_distance(run, pos[::3], steps[::3], run.steps)


# -- drawing ------------------------------------------------------------------------------------------------
def test_the_live_map_draws_the_ghosts_under_the_runs_with_one_legend_entry(paper_view):
    ghosts = published.ghosts(paper_view)
    fig = resolve(browser.live_map(paper_view, ghosts=ghosts))
    names = [t.name for t in fig.data]
    g = names.index("published path")
    assert g < names.index("SAM-GS") and g < names.index("LS")          # under the runs
    trace = fig.data[g]
    assert trace.line.dash == "dash" and trace.showlegend
    xy = np.stack([np.asarray(trace.x, float), np.asarray(trace.y, float)], 1)
    want = np.concatenate([np.concatenate([p, np.full((1, 2), np.nan)]) for row in ghosts for p in row])
    np.testing.assert_allclose(xy, want, rtol=1e-6, equal_nan=True)
    multi = resolve(browser.live_map(paper_view, layout="multiples", ghosts=ghosts))
    panels = [t for t in multi.data if t.name == "published path"]
    assert len(panels) == 2 and sum(bool(t.showlegend) for t in panels) == 1      # SAM-GS's and LS's panels


def test_the_paper_export_can_draw_the_ghosts(paper_view):
    from figures import paper
    plain = paper.paper_small_multiples(paper_view, size="single", methods=["samgs"])
    fig = paper.paper_small_multiples(paper_view, size="single", methods=["samgs"], ghosts=True)
    grey = [ln for ln in fig.axes[0].lines if ln.get_color() == paper.GHOST_COLOUR]
    assert len(grey) == 7 and not [ln for ln in plain.axes[0].lines if ln.get_color() == paper.GHOST_COLOUR]
    assert "published path" in [t.get_text() for t in fig.legends[0].get_texts()]
