"""Figure data (figures/data.py) and live figures (figures/live.py): what every map draws, and how it travels.

Expected values come from geometry (a circle's pieces, a lattice), from the landscapes' own Pareto sets, or from
the arrays put in (a frame decodes to exactly the bytes encoded).
"""
import json

import numpy as np
import pytest

import landscapes
import trajectories
from figures import browser, data, live
from landscapes import custom


# -- end markers: one per cell of the box ---------------------------------------------------------------------
def _cells_by_hand(points, bounds, cells):
    """An independent reading of "one point per occupied cell, the first in order": a dict over math.floor."""
    import math
    (x0, x1), (y0, y1) = bounds
    first = {}
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        key = (math.floor((x - x0) / ((x1 - x0) / cells)), math.floor((y - y0) / ((y1 - y0) / cells)))
        first.setdefault(key, i)
    return sorted(first.values())


def test_one_end_marker_is_kept_per_occupied_cell_the_first_in_order():
    rng = np.random.default_rng(7)
    bounds = ((-10.0, 10.0), (-5.0, 15.0))
    optimum = np.array([[1.2345, 2.5]])
    pts = np.concatenate([
        optimum + rng.normal(0, 1e-4, (300, 2)),        # runs that all ended at one optimum (cells 0.02 wide)
        rng.uniform(-10, 10, (200, 2)) * [1, 1] + [0, 5],    # runs that stopped anywhere in the box
        [[np.nan, 1.0], [np.inf, 0.0], [1e30, -1e30], [1e30, -1e30], [-12.0, 20.0]],    # diverged, far outside
        rng.uniform(-10, 10, (50, 2)) + [0, 5],
    ])
    rng.shuffle(pts)
    kept = data.distinct_points(pts, bounds)
    assert kept.tolist() == _cells_by_hand(pts.tolist(), bounds, data.MARKER_CELLS)
    assert len(kept) < 300                       # the optimum's 300 ends are a handful of dots
    assert np.isfinite(pts[kept]).all()


def test_every_end_of_a_grid_lies_within_a_cell_of_a_drawn_end_marker():
    res = trajectories.simulate("one_optimum", ["samgs", "mgda"], "grid:9", 3000, record_every=100)
    fig = live.resolve(browser.live_map(res))
    (x0, x1), (y0, y1) = res.landscape.bounds
    cell = np.array([(x1 - x0), (y1 - y0)]) / data.MARKER_CELLS
    for m, label in enumerate(res.labels):
        trace = next(t for t in fig.data if t.name == f"{label} end")
        drawn = np.stack([trace.x, trace.y], 1).astype(float)
        ends = res.final[m][np.isfinite(res.final[m]).all(1)]
        # drawn markers are ends themselves (float32 on the wire), and no end is farther than a cell from one
        assert all(np.abs(ends - d).max(1).min() < 1e-5 for d in drawn)
        gap = np.abs(ends[:, None, :] - drawn[None, :, :]).max(-1).min(1)
        assert (gap <= cell.max() + 1e-5).all()
        assert len(drawn) <= len(ends)


def test_every_methods_ends_are_drawn_over_every_methods_paths(paper_view):
    # SVG draws traces in order: on a dense grid a later method's paths buried an earlier method's end dots
    for fig in (browser.live_map(paper_view), browser.live_loss_space(paper_view)):
        names = [t.get("name") for t in fig.figure["data"]]
        paths = [names.index(label) for label in paper_view.labels]
        ends = [names.index(f"{label} end") for label in paper_view.labels]
        assert max(paths) < min(ends)


# -- the Pareto set's pieces ------------------------------------------------------------------------------
def test_an_unevenly_spaced_curve_stays_one_piece():
    # points bunched (1e-7 apart) in places and sparse (0.05 apart) elsewhere: the old "5 x median gap" rule cut
    # this into hundreds of bits
    t = np.concatenate([np.linspace(0, 1, 40), 1 + np.arange(1, 800) * 1e-7, np.linspace(1.01, 3, 40)])
    pts = np.stack([t, np.sin(t)], 1)
    pieces = data.pareto_pieces(pts, ((-10, 10), (-10, 10)))
    assert len(pieces) == 1 and len(pieces[0]) == len(pts)


def test_a_real_gap_separates_two_pieces():
    a = np.stack([np.linspace(-5, -1, 50), np.zeros(50)], 1)
    b = np.stack([np.linspace(1, 5, 50), np.zeros(50)], 1)                  # a gap of 2 in a box of diagonal 28
    pieces = data.pareto_pieces(np.concatenate([a, b]), ((-10, 10), (-10, 10)))
    assert [len(p) for p in pieces] == [50, 50]
    x, y = data.pareto_polyline(np.concatenate([a, b]), ((-10, 10), (-10, 10)))
    assert np.isnan(x).sum() == 1 and len(x) == 101


@pytest.mark.parametrize("key", ["one_optimum", "two_optima"])
def test_the_shipped_pareto_sets_are_drawn_as_a_few_long_pieces(key):
    land = landscapes.get(key)
    pieces = data.pareto_pieces(land.pareto_set(), land.bounds)
    assert len(pieces) <= 3 and min(len(p) for p in pieces) >= 50
    assert data.pareto_is_curve(pieces)


def test_a_custom_landscapes_pareto_set_is_one_piece():
    land = custom.from_spec({"name": "bowls", "tasks": ["(x1 - 1)^2 + x2^2", "(x1 + 1)^2 + x2^2"],
                             "bounds": [[-5, 5], [-5, 5]]})
    pieces = data.pareto_pieces(land.pareto_set(), land.bounds)
    assert len(pieces) == 1 and np.allclose(pieces[0][:, 1], 0, atol=1e-3)       # the segment x1 in [-1, 1]
    assert pieces[0][:, 0].min() == pytest.approx(-1, abs=0.02) and pieces[0][:, 0].max() == pytest.approx(1, abs=0.02)


def test_scattered_points_are_not_a_curve():
    rng = np.random.default_rng(0)
    pieces = data.pareto_pieces(rng.uniform(-10, 10, (200, 2)), ((-10, 10), (-10, 10)))
    assert not data.pareto_is_curve(pieces)


# -- grids and contours ----------------------------------------------------------------------------------------
def test_a_full_lattice_in_any_order_is_a_grid_and_a_partial_one_is_not():
    X, Y = np.meshgrid([0.0, 1.0, 2.5], [-1.0, 4.0])
    x, y = X.ravel(), Y.ravel()
    order = np.random.default_rng(1).permutation(len(x))
    xs, ys, ix, iy = data.regular_grid(x[order], y[order])
    assert xs.tolist() == [0.0, 1.0, 2.5] and ys.tolist() == [-1.0, 4.0]
    assert np.array_equal(xs[ix], x[order]) and np.array_equal(ys[iy], y[order])
    assert data.regular_grid(x[:-1], y[:-1]) is None
    assert data.regular_grid(np.r_[x, 0.0], np.r_[y, -1.0]) is None             # a point twice


def test_the_contour_is_the_weighted_sum_or_one_task():
    land = landscapes.get("one_optimum")
    xs, ys, Z = data.contour_grid(land, "sum", (1.0, 2.0), 1.0, n=7)
    X, Y = np.meshgrid(xs, ys)
    L = land.losses_np(np.stack([X.ravel(), Y.ravel()], 1), (1.0, 2.0))
    assert np.allclose(Z, L.sum(1).reshape(7, 7))
    assert np.allclose(data.contour_grid(land, "task2", (1.0, 2.0), 1.0, n=7)[2], L[:, 1].reshape(7, 7))
    with pytest.raises(ValueError, match="task3"):
        data.contour_grid(land, "task3")


# -- live figures ----------------------------------------------------------------------------------------------
def test_a_frame_carries_each_piece_once_and_decodes_to_the_same_arrays():
    fig = live.LiveFigure(figure={})
    a = np.linspace(0, 1, 1000)
    b = np.arange(500) % 7
    fig.figure = {"data": [{"type": "heatmap", "x": fig.ref(a), "y": fig.ref(a), "z": fig.grid(np.outer(a[:10], a[:30]))},
                           {"type": "scatter", "marker": {"color": fig.ref(b, "u1")}, "customdata": fig.ref([1.0, np.nan])}],
                  "layout": {}}
    known = set()
    frame = live.encode(fig, known)
    store = {}
    header = live.decode(frame, store)
    assert len(header["pieces"]) == 3                                  # x and y are the same content: one piece
    assert known == set(store) == set(header["uses"])
    resolved = live.resolve(fig, store)
    assert np.array_equal(resolved.data[0].x, a.astype(np.float32))
    assert np.array_equal(np.asarray(resolved.data[0].z), np.outer(a[:10], a[:30]).astype(np.float32))
    assert header["figure"]["data"][1]["customdata"] == [1.0, None]         # small arrays travel inline, NaN as null
    again = live.decode(live.encode(fig, known), {})
    assert again["pieces"] == [] and again["uses"] == header["uses"]   # nothing new: only the header


def test_a_frames_own_meta_adds_to_the_figures_and_leaves_the_shared_figure_as_it_was():
    fig = live.LiveFigure(figure={"data": [], "layout": {}}, meta={"clickable": True})
    asked = live.decode(live.encode(fig, set(), meta={"reportDrawn": True}), {})
    assert asked["meta"] == {"clickable": True, "reportDrawn": True}
    assert fig.meta == {"clickable": True}                             # sessions share the prepared figure
    assert live.decode(live.encode(fig, set()), {})["meta"] == {"clickable": True}


@pytest.fixture(scope="module")
def paper_view():
    return trajectories.simulate("one_optimum", ["samgs", "ls"], "paper", 2000, record_every=10)


def test_the_map_references_every_path_point_and_names_its_traces(paper_view):
    fig = browser.live_map(paper_view)
    names = [t.get("name") for t in fig.figure["data"]]
    assert {"SAM-GS", "LS", "start", "end", "Pareto set", "optimum"} <= set(names)
    plain = live.resolve(fig)
    samgs = next(t for t in plain.data if t.name == "SAM-GS")
    P = fig.playback["P"]
    x = np.asarray(samgs.x).reshape(7, P + 1)
    idx = browser.path_points(paper_view, 400)
    row = paper_view.labels.index("SAM-GS")
    assert np.array_equal(x[:, :P], paper_view.positions[row][:, idx, 0].astype(np.float32))
    assert np.isnan(x[:, P]).all()
    assert np.array_equal(np.asarray(live.resolve(fig).data[0].z).shape, (data.CONTOUR_N, data.CONTOUR_N))


def test_only_changed_methods_travel_again(paper_view):
    first = browser.live_map(paper_view)
    known = set()
    live.encode(first, known)
    moved = trajectories.simulate("one_optimum", ["samgs", "ls"], "paper", 2000, record_every=10,
                                  hparams={"samgs": {"gamma": 0.3}})
    frame = live.encode(browser.live_map(moved), known)
    header = live.decode(frame, {})
    sent = {p[0] for p in header["pieces"]}
    ls = next(t for t in header["figure"]["data"] if t.get("name") == "LS")
    samgs = next(t for t in header["figure"]["data"] if t.get("name") == "SAM-GS")
    assert ls["x"]["$p"] not in sent and samgs["x"]["$p"] in sent
    contour = header["figure"]["data"][0]
    assert contour["type"] == "contour" and contour["z"]["$p"] not in sent
    assert len(frame) < 0.5 * len(live.encode(first, set()))


def test_dense_start_sets_get_thin_translucent_paths_and_no_rings():
    res = trajectories.simulate("one_optimum", ["ls"], "grid:7", 300, record_every=10)
    fig = browser.live_map(res)
    path = next(t for t in fig.figure["data"] if t.get("name") == "LS")
    assert path["line"]["width"] < 1 and path["opacity"] < 1
    assert fig.playback["ring"] is False
    sparse = browser.live_map(trajectories.simulate("one_optimum", ["ls"], "paper", 300, record_every=10))
    assert sparse.playback["ring"] is True


def test_the_header_is_plain_json(paper_view):
    header = live.decode(live.encode(browser.live_map(paper_view)), {})
    json.dumps(header, allow_nan=False)
