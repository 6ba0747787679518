"""Publication figures, animations, presets and the ``figure`` CLI (figures/paper.py, save.py, spec.py,
animate.py, presets.py, cli.py) and the app's Export panel (views/export.py).

Expected values come from the Result's own arrays recomputed here with numpy, from the file formats read back
with independent readers (pypdf, pillow, xml.etree, imageio-ffmpeg, poppler's pdftoppm), from the SAM-GS paper's
configs (methods-spec.md §2), or from a reference raster checked by eye when it was stored
(``python tests/test_paper_figures.py --write-reference`` rewrites it).
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trajectories  # noqa: E402
from figures import animate, cli, paper, presets, save  # noqa: E402
from figures import spec as figspec  # noqa: E402
from figures import style as st  # noqa: E402

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "paper_small_multiples_ref.png"
RASTER_DPI = 60
SAMGS_BLUE, PCGRAD_ORANGE = st.METHOD_COLOURS["samgs"], st.METHOD_COLOURS["pcgrad"]


# -- fixtures ---------------------------------------------------------------------------------------------
def reference_result():
    """The Result behind the stored reference image: PCGrad and SAM-GS from the paper's 7 starts."""
    return trajectories.simulate("one_optimum", ["pcgrad", "samgs"], "paper", 20000, record_every=20)


@pytest.fixture(scope="module")
def res():
    return reference_result()


@pytest.fixture(scope="module")
def sweep():
    """SAM-GS with gamma x lr swept and LS, from a 3 x 3 grid of starts (few steps)."""
    return trajectories.simulate("one_optimum", ["ls", "samgs"], "grid:3", 600, record_every=5,
                                 hparams={"samgs": {"gamma": [0.05, 0.5]}}, lr=[1e-3, 1e-2])


def _rgb(hexcol):
    return np.array([int(hexcol[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _colour_pixels(img, hexcol, tol=60.0):
    return int((np.linalg.norm(img[..., :3].astype(float) - _rgb(hexcol), axis=-1) < tol).sum())


def _visible_axes(fig):
    return [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]


# -- figure builders on small Results ---------------------------------------------------------------------
def test_small_multiples_draws_every_start_of_every_method(res):
    fig = paper.paper_small_multiples(res, rows=("contour", "loss"))
    axes = _visible_axes(fig)
    assert len(axes) == 4                                    # 2 methods x (contour, loss)
    titles = [a.get_title() for a in axes if a.get_title()]
    assert titles == ["PCGrad", "SAM-GS"]
    idx = st.decimate(res.positions.shape[2], st.Style().max_points)
    for m, hexcol in enumerate([PCGRAD_ORANGE, SAMGS_BLUE]):
        contour_ax = [a for a in axes if a.get_title() == res.labels[m]][0]
        paths = [ln for ln in contour_ax.get_lines() if ln.get_color() == hexcol]
        assert len(paths) == res.starts.shape[0]
        for s, ln in enumerate(paths):
            np.testing.assert_allclose(ln.get_xydata(), res.positions[m, s, idx], rtol=0, atol=1e-6)
        xlab = {a.get_xlabel() for a in axes}
        assert r"$\theta_1$" in xlab and st.loss_label(0) in xlab


def test_loss_space_paths_are_the_recorded_losses_and_the_front_is_the_landscapes(res):
    fig = paper.paper_loss_space(res)
    ax = _visible_axes(fig)[1]
    m = 1
    idx = st.decimate(res.losses.shape[2], st.Style().max_points)
    paths = [ln for ln in ax.get_lines() if ln.get_color() == SAMGS_BLUE]
    assert len(paths) == res.starts.shape[0]
    np.testing.assert_allclose(paths[0].get_xydata(), res.losses[m, 0, idx, :2], atol=1e-5)
    front = [ln for ln in ax.get_lines() if ln.get_color() == st.PARETO_COLOUR][0].get_xydata()
    land = res.landscape
    np.testing.assert_allclose(front, land.losses_np(land.pareto_set()), atol=1e-9)
    # each front point is Pareto-optimal among the drawn front: no other point is better in both losses
    better = (front[:, None, 0] < front[None, :, 0] - 1e-9) & (front[:, None, 1] < front[None, :, 1] - 1e-9)
    assert not better.any()


def test_basin_map_colours_each_grid_cell_by_outcome(sweep):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = paper.paper_basin(sweep)
    FigureCanvasAgg(fig).draw()                               # colours are mapped at draw time
    axes = _visible_axes(fig)
    assert len(axes) == len(sweep.variants)
    for m, ax in enumerate(axes):
        mesh = ax.collections[0]
        colours = mesh.get_facecolors()[:, :3]                 # cells row by row (y up), x fastest
        xs, ys = np.unique(sweep.starts[:, 0]), np.unique(sweep.starts[:, 1])
        for s, (x, y) in enumerate(sweep.starts):
            cell = np.searchsorted(ys, y) * len(xs) + np.searchsorted(xs, x)
            want = _rgb(st.OUTCOME_COLOURS[sweep.outcome[m, s]]) / 255
            np.testing.assert_allclose(colours[cell], want, atol=1e-6)


def test_basin_map_without_a_grid_draws_a_dot_per_start(res):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = paper.paper_basin(res)
    FigureCanvasAgg(fig).draw()
    ax = _visible_axes(fig)[1]
    dots = ax.collections[0]
    np.testing.assert_allclose(dots.get_offsets(), res.starts)
    want = np.array([_rgb(st.OUTCOME_COLOURS[o]) / 255 for o in res.outcome[1]])
    np.testing.assert_allclose(dots.get_facecolors()[:, :3], want, atol=1e-6)


def test_sweep_heatmap_cells_are_the_median_over_starts(sweep):
    fig = paper.paper_heatmap(sweep, metric="pareto_distance", annotate=False)
    axes = _visible_axes(fig)
    titles = [a.get_title() for a in axes]
    samgs_ax = axes[titles.index("SAM-GS")]
    img = np.ma.filled(samgs_ax.images[0].get_array(), np.nan)
    assert img.shape == (2, 2)                               # lr (rows) x gamma (columns)
    for m, v in enumerate(sweep.variants):
        if v["method"] != "samgs":
            continue
        r = [1e-3, 1e-2].index(v["lr"])
        c = [0.05, 0.5].index(v["hparams"]["gamma"])
        d = sweep.pareto_distance[m]
        np.testing.assert_allclose(img[r, c], np.median(d[np.isfinite(d)]), rtol=1e-12)
    ls_ax = axes[titles.index("LS")]                          # LS: one swept setting (lr) x the 9 starts
    ls_img = np.ma.filled(ls_ax.images[0].get_array(), np.nan)
    assert ls_img.shape == (9, 2)
    np.testing.assert_allclose(ls_img[:, 1], sweep.pareto_distance[1], rtol=1e-12)


def test_diagnostics_curves_are_the_median_over_starts(res):
    fig = paper.paper_diagnostics(res, fields=("cos", "loss"))
    ax_cos, ax_loss = _visible_axes(fig)[:2]
    idx = st.decimate(len(res.record_steps), st.Style().max_points)
    line = [ln for ln in ax_cos.get_lines() if ln.get_color() == SAMGS_BLUE][0]
    np.testing.assert_allclose(line.get_xdata(), res.record_steps[idx])
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(line.get_ydata(), np.nanmedian(res.aux["cos"][1][:, idx], 0), equal_nan=True)
    line = [ln for ln in ax_loss.get_lines() if ln.get_color() == SAMGS_BLUE][0]
    np.testing.assert_allclose(line.get_ydata(), np.median(res.losses[1][:, idx].sum(-1), 0), rtol=1e-6)
    one = paper.paper_diagnostics(res, fields=("loss",), start=3)
    line = [ln for ln in _visible_axes(one)[0].get_lines() if ln.get_color() == SAMGS_BLUE][0]
    np.testing.assert_allclose(line.get_ydata(), res.losses[1, 3, idx].sum(-1), rtol=1e-6)


def test_diverged_runs_stop_being_drawn_where_they_leave_the_plane(res):
    broken = copy.copy(res)
    broken.positions = res.positions.copy()
    broken.positions[1, 0, 50:] = np.nan
    fig = paper.paper_small_multiples(broken)
    ax = _visible_axes(fig)[1]
    first = [ln for ln in ax.get_lines() if ln.get_color() == SAMGS_BLUE][0].get_xydata()
    idx = st.decimate(res.positions.shape[2], st.Style().max_points)
    assert np.isfinite(first).all() and len(first) == int((idx < 50).sum())


@pytest.mark.parametrize("size,width", [("single", 3.3), ("double", 6.9), ("slide", 13.333), ("poster", 16.0)])
def test_size_presets_set_the_width(res, size, width):
    fig = paper.build("small-multiples", res, None, size)
    w, h = fig.get_size_inches()
    assert w == pytest.approx(width)
    if size == "slide":
        assert w / h == pytest.approx(16 / 9, rel=1e-3)


def test_bad_options_are_refused_with_the_field_named(res):
    with pytest.raises(ValueError, match="kind: unknown"):
        paper.build("pie", res)
    with pytest.raises(ValueError, match="options: small-multiples has no option 'metric'"):
        paper.build("small-multiples", res, metric="optimum")
    with pytest.raises(ValueError, match="size: unknown"):
        paper.build("basin", res, None, "a4")
    with pytest.raises(ValueError, match="rows"):
        paper.build("small-multiples", res, rows=("contour", "3d"))
    with pytest.raises(ValueError, match="methods: none of nashmtl"):
        paper.build("loss-space", res, methods="nashmtl")


# -- file formats -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fig_spec(res):
    return figspec.FigureSpec.from_result(res, kind="small-multiples", options={"rows": ["contour", "loss"]})


def test_pdf_has_one_page_truetype_fonts_no_type3_the_labels_and_the_spec(res, fig_spec, tmp_path):
    import pypdf
    out = figspec.render(fig_spec, tmp_path / "f.pdf", result=res)
    assert [p.name for p in out] == ["f.pdf", "f.pdf.json"]
    reader = pypdf.PdfReader(str(out[0]))
    assert len(reader.pages) == 1
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert len(fonts) >= 1
    for ref in fonts.values():
        f = ref.get_object()
        assert f["/Subtype"] != "/Type3"
        if f["/Subtype"] == "/Type0":                         # composite font: its descendant holds the outlines
            f = f["/DescendantFonts"][0].get_object()
            assert f["/Subtype"] == "/CIDFontType2"            # TrueType outlines = Type 42
        else:
            assert f["/Subtype"] == "/TrueType"
        assert "/FontFile2" in f["/FontDescriptor"].get_object()   # embedded TrueType program
    text = reader.pages[0].extract_text()
    assert "PCGrad" in text and "SAM-GS" in text and "θ" in text
    embedded = json.loads(reader.metadata["/GradscapeFigure"])
    assert embedded == json.loads(out[1].read_text())
    assert embedded["simulation"] == res.config and embedded["fmt"] == "pdf"


def test_svg_keeps_text_as_text_elements_with_the_axis_labels(res, fig_spec, tmp_path):
    out = figspec.render(fig_spec, tmp_path / "f.svg", result=res)[0]
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()) for t in root.iter(ns + "text")]
    joined = " ".join(texts)
    assert len(texts) > 10
    for label in ("PCGrad", "SAM-GS", "θ", "ℒ", "start", "Pareto"):
        assert label in joined, label
    assert not any(el.get("id", "").startswith(("STIX", "DejaVu")) for el in root.iter(ns + "path"))  # no glyphs
    save.sidecar_path(out).unlink()                            # the SVG's own metadata carries the spec too
    assert save.read_spec(out) == fig_spec.updated(fmt="svg").to_dict()


def test_png_has_the_chosen_dpi_size_and_the_spec(res, fig_spec, tmp_path):
    from PIL import Image
    spec = fig_spec.updated(dpi=120)
    out = figspec.render(spec, tmp_path / "f.png", result=res)[0]
    fig = figspec.build_figure(spec, res)
    w_in, h_in = fig.get_size_inches()
    with Image.open(out) as im:
        assert im.size == (round(w_in * 120), round(h_in * 120))
        assert im.info["dpi"] == pytest.approx((120, 120), abs=0.05)   # stored as dots per metre
        assert json.loads(im.info["GradscapeFigure"])["dpi"] == 120
        img = np.asarray(im.convert("RGB"))
    assert _colour_pixels(img, SAMGS_BLUE) > 200 and _colour_pixels(img, PCGRAD_ORANGE) > 200


def test_pgf_is_written_with_latex_or_refused_clearly_without(res, fig_spec, tmp_path):
    if save.latex_system() is None:
        with pytest.raises(ValueError, match="PGF needs LaTeX"):
            figspec.render(fig_spec, tmp_path / "f.pgf", result=res)
        assert not (tmp_path / "f.pgf").exists()
    else:
        out = figspec.render(fig_spec, tmp_path / "f.pgf", result=res)[0]
        head = out.read_text().splitlines()[0]
        assert head.startswith("%% GradscapeFigure: ")
        assert "\\mathscr" not in out.read_text()


def test_files_are_reproducible_byte_for_byte(res, fig_spec, tmp_path):
    for fmt in ("pdf", "svg", "png"):
        a = figspec.render(fig_spec, tmp_path / f"a.{fmt}", result=res)[0].read_bytes()
        b = figspec.render(fig_spec, tmp_path / f"b.{fmt}", result=res)[0].read_bytes()
        assert a == b, fmt


# -- animations -----------------------------------------------------------------------------------------------
def test_gif_has_the_frame_count_duration_and_moving_paths(res, tmp_path):
    from PIL import Image
    out = animate.animate(res, tmp_path / "a.gif", frames=12, duration=3.0, size="double", dpi=60)
    with Image.open(out) as im:
        assert im.n_frames == 12
        total, frames = 0, []
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
            frames.append(np.asarray(im.convert("RGB")))
        assert im.info.get("loop") == 0
    assert total == 3000
    w, h = frames[0].shape[1], frames[0].shape[0]
    assert w % 2 == 0 and h % 2 == 0
    blue = [_colour_pixels(f, SAMGS_BLUE) for f in frames]
    assert blue[0] < blue[-1] and blue[-1] > 50              # paths grow over the animation
    assert np.abs(frames[0].astype(int) - frames[-1]).sum() > 0


def test_mp4_has_the_frame_count_and_duration(res, tmp_path):
    import imageio_ffmpeg
    out = animate.animate(res, tmp_path / "a.mp4", frames=24, duration=2.0, size="single", dpi=80)
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == 24
    assert secs == pytest.approx(2.0, abs=1 / 12 + 1e-6)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    last = None
    for last in reader:
        pass
    reader.close()
    w, h = meta["size"]
    img = np.frombuffer(last, np.uint8).reshape(h, w, 3)
    assert _colour_pixels(img, SAMGS_BLUE, tol=70) > 20      # the paths survive the encoding


def test_frame_steps_span_the_run():
    np.testing.assert_array_equal(animate.frame_steps(20000, 5), [0, 5000, 10000, 15000, 20000])


def test_animation_memory_does_not_grow_with_the_frame_count(res, tmp_path):
    def peak(frames):
        tracemalloc.start()
        animate.animate(res, tmp_path / f"m{frames}.gif", frames=frames, duration=frames / 10, size="single",
                        dpi=100)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p
    peak(3)                                                   # warm caches (contours, fonts)
    few, many = peak(4), peak(28)
    frame_bytes = np.prod(animate._Scene(res, "single", 100, None, None, None).size_px) * 3
    # 24 more frames held at once would add 24 frames' bytes; streaming adds (text-layout caches aside) nothing
    assert many - few < 3 * frame_bytes, (few, many, frame_bytes)


def test_animation_timing_is_validated():
    with pytest.raises(ValueError, match="frames: must be"):
        animate.check_timing("gif", frames=1, duration=2)
    with pytest.raises(ValueError, match="at most 50"):
        animate.check_timing("gif", frames=200, duration=2)
    with pytest.raises(ValueError, match="duration"):
        animate.check_timing("mp4", frames=10, duration=0)
    assert animate.check_timing("mp4", 120, 2.0) == (120, 2.0, 60.0)


# -- rasterised PDF against the stored reference image ------------------------------------------------------
def _reference_pdf(result, path):
    spec = figspec.FigureSpec.from_result(result, options={"rows": ["contour", "loss"]})
    return figspec.render(spec, path, result=result)[0]


def _rasterise(pdf: Path) -> np.ndarray:
    from PIL import Image
    exe = shutil.which("pdftoppm")
    assert exe, "pdftoppm is missing: apt-get install -y poppler-utils (scripts/setup.sh installs it)"
    stem = pdf.with_suffix("")
    subprocess.run([exe, "-png", "-r", str(RASTER_DPI), "-singlefile", str(pdf), str(stem)], check=True)
    with Image.open(stem.with_suffix(".png")) as im:
        return np.asarray(im.convert("RGB"))


def _blocks(img, k=6):
    g = img[..., :3].astype(float).mean(-1) / 255
    H, W = (g.shape[0] // k) * k, (g.shape[1] // k) * k
    return g[:H, :W].reshape(H // k, k, W // k, k).mean((1, 3))


def _colour_blocks(img, hexcol, k=6):
    """Which 6 x 6 px blocks hold a pixel of the colour (where the method's paths run)."""
    m = np.linalg.norm(img[..., :3].astype(float) - _rgb(hexcol), axis=-1) < 60
    H, W = (m.shape[0] // k) * k, (m.shape[1] // k) * k
    return m[:H, :W].reshape(H // k, k, W // k, k).any((1, 3))


def compare_to_reference(img, ref):
    """Problems (empty when the raster matches loosely): same size; grayscale close on 6 px blocks; each
    method's colour present in about the reference's amount and in the same places (overlap of the blocks
    holding it, intersection over union >= 0.75; a wrong set of paths scores about 0.6)."""
    if abs(img.shape[0] - ref.shape[0]) > 2 or abs(img.shape[1] - ref.shape[1]) > 2:
        return [f"size {img.shape[:2]} differs from the reference's {ref.shape[:2]}"]
    h, w = min(img.shape[0], ref.shape[0]), min(img.shape[1], ref.shape[1])
    img, ref = img[:h, :w], ref[:h, :w]
    problems = []
    mad = float(np.abs(_blocks(img) - _blocks(ref)).mean())
    if mad > 0.02:
        problems.append(f"grayscale differs by {mad:.3f} on average (tolerance 0.02)")
    for name, col in (("SAM-GS blue", SAMGS_BLUE), ("PCGrad orange", PCGRAD_ORANGE)):
        n, n_ref = _colour_pixels(img, col), _colour_pixels(ref, col)
        if not 0.6 * n_ref <= n <= 1.6 * n_ref:
            problems.append(f"{name} pixels: {n}, reference {n_ref}")
        a, b = _colour_blocks(img, col), _colour_blocks(ref, col)
        iou = (a & b).sum() / max((a | b).sum(), 1)
        if iou < 0.75:
            problems.append(f"{name} paths overlap the reference's by {iou:.2f} (IoU, tolerance 0.75)")
    return problems


def test_rendered_pdf_matches_the_stored_reference(res, tmp_path):
    from PIL import Image
    with Image.open(REFERENCE) as im:
        ref = np.asarray(im.convert("RGB"))
    assert _colour_pixels(ref, SAMGS_BLUE) > 300 and _colour_pixels(ref, PCGRAD_ORANGE) > 300
    img = _rasterise(_reference_pdf(res, tmp_path / "fig.pdf"))
    assert compare_to_reference(img, ref) == []


def test_the_reference_comparison_fails_for_broken_figures(res, tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image
    with Image.open(REFERENCE) as im:
        ref = np.asarray(im.convert("RGB"))
    good = figspec.build_figure(figspec.FigureSpec.from_result(res, options={"rows": ["contour", "loss"]}), res)
    blank = Figure(figsize=good.get_size_inches())
    save.save_figure(blank, tmp_path / "blank.pdf")
    assert compare_to_reference(_rasterise(tmp_path / "blank.pdf"), ref) != []
    no_paths = copy.copy(res)                                   # every run non-finite: no trajectories drawn
    no_paths.positions = np.full_like(res.positions, np.nan)
    no_paths.losses = np.full_like(res.losses, np.nan)
    problems = compare_to_reference(_rasterise(_reference_pdf(no_paths, tmp_path / "nopaths.pdf")), ref)
    assert any("SAM-GS blue" in p for p in problems)
    one_method = copy.copy(res)                                 # PCGrad's paths drawn in SAM-GS's place
    one_method.positions = res.positions[[0, 0]]
    one_method.losses = res.losses[[0, 0]]
    problems = compare_to_reference(_rasterise(_reference_pdf(one_method, tmp_path / "one.pdf")), ref)
    assert any("SAM-GS blue paths overlap" in p for p in problems)


# -- presets, specs and the CLI ----------------------------------------------------------------------------------
PAPER_1O = [(-8.0, 5.0), (-3.0, 7.5), (0.0, 10.0), (3.0, 7.5), (8.0, 5.0), (-10.0, -3.0), (10.0, -3.0)]
PAPER_2O = [(-3.5, 5.5), (3.5, 5.5), (-6.5, 2.5), (6.5, 2.5), (0.0, 10.0), (0.0, -8.0)]


def test_presets_are_the_papers_figures():
    import optimizers
    fig2 = figspec.FigureSpec.from_preset("samgs-fig2").simulation
    assert fig2["landscape"] == "one_optimum" and fig2["steps"] == 20000
    assert [tuple(p) for p in fig2["starts"]] == PAPER_1O
    wanted = ["ls", "mgda", "pcgrad", "cagrad", "imtlg", "nashmtl", "famo", "alignedmtl", "samgs"]
    assert fig2["methods"] == [m for m in wanted if m in optimizers.names()]
    assert "samgs" in fig2["methods"] and "ls" in fig2["methods"]
    fig4 = figspec.FigureSpec.from_preset("samgs-fig4").simulation
    assert fig4["landscape"] == "two_optima" and fig4["steps"] == 21000
    assert [tuple(p) for p in fig4["starts"]] == PAPER_2O
    w = figspec.FigureSpec.from_preset("samgs-fig2-w0.3").simulation
    assert w["task_weights"] == [0.3, 0.7] and w["steps"] == 20000
    assert figspec.FigureSpec.from_preset("samgs-fig4-w0.9").simulation["task_weights"] == [0.9, 0.1]
    with pytest.raises(ValueError, match="preset: unknown"):
        presets.get("samgs-fig9")


def test_cli_preset_then_from_config_rebuilds_the_same_figure(tmp_path, capsys):
    from PIL import Image
    a, b = tmp_path / "fig.png", tmp_path / "again.png"
    assert cli.main(["figure", "--preset", "samgs-fig4", "--steps", "300", "--methods", "ls,samgs",
                     "--out", str(a), "--size", "single", "--dpi", "80"]) == 0
    spec = json.loads((tmp_path / "fig.png.json").read_text())
    assert spec["preset"] == "samgs-fig4" and spec["simulation"]["steps"] == 300
    assert spec["simulation"]["methods"] == ["ls", "samgs"] and spec["size"] == "single" and spec["dpi"] == 80
    (tmp_path / "fig.png.json").rename(tmp_path / "spec.json")   # the PNG's own metadata must suffice too
    assert cli.main(["figure", "--from-config", str(a), "--out", str(b)]) == 0
    with Image.open(a) as x, Image.open(b) as y:
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert json.loads((tmp_path / "again.png.json").read_text()) == spec
    c = tmp_path / "c.pdf"
    assert cli.main(["figure", "--from-config", str(tmp_path / "spec.json"), "--out", str(c)]) == 0
    assert c.read_bytes().startswith(b"%PDF")
    assert "wrote" in capsys.readouterr().out


def test_cli_result_kinds_and_animation(res, tmp_path):
    from PIL import Image
    npz = res.save(tmp_path / "run.npz")
    for kind in paper.KINDS:
        out = tmp_path / f"{kind}.svg"
        assert cli.main(["figure", "--result", str(npz), "--kind", kind, "--out", str(out)]) == 0, kind
        assert json.loads(Path(str(out) + ".json").read_text())["kind"] == kind
    gif = tmp_path / "anim.gif"
    assert cli.main(["figure", "--result", str(npz), "--animate", "--frames", "6", "--duration", "1",
                     "--size", "single", "--dpi", "50", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6
    spec = save.read_spec(gif)
    assert spec["animation"]["frames"] == 6 and spec["simulation"] == res.config


@pytest.mark.parametrize("argv,needle", [
    (["--preset", "nope", "--out", "x.pdf"], "preset: unknown"),
    (["--preset", "samgs-fig2", "--out", "x.docx"], "format:"),
    (["--preset", "samgs-fig2", "--steps", "0", "--out", "x.pdf"], "steps:"),
    (["--preset", "samgs-fig2", "--methods", "ls,nosuch", "--out", "x.pdf"], "nosuch"),
    (["--result", "/nonexistent/run.npz", "--out", "x.pdf"], "does not exist"),
    (["--from-config", "/nonexistent/spec.json", "--out", "x.pdf"], "does not exist"),
    (["--preset", "samgs-fig2", "--out", "x.pdf", "--frames", "9"], "only for animations"),
    (["--preset", "samgs-fig2", "--out", "x.gif", "--frames", "900", "--duration", "2"], "at most 50"),
    (["--preset", "samgs-fig2", "--out", "x.pdf", "--dpi", "5"], "dpi:"),
    (["--preset", "samgs-fig2", "--out", "x.pdf", "--kind", "heatmap", "--rows", "contour"], "--rows"),
    (["--preset", "samgs-fig2", "--no-such-flag"], "unrecognized"),
    (["--out", "x.pdf"], "choose what to draw"),
    (["--preset", "samgs-fig2"], "--out"),
])
def test_cli_refuses_bad_input_with_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["figure"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())                        # nothing half-written


def test_from_config_refuses_files_without_a_spec(tmp_path, capsys):
    junk = tmp_path / "junk.json"
    junk.write_text('{"config": {}}')
    assert cli.main(["figure", "--from-config", str(junk), "--out", str(tmp_path / "x.pdf")]) == 2
    assert "not a Gradscape figure spec" in capsys.readouterr().err
    from PIL import Image
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert cli.main(["figure", "--from-config", str(tmp_path / "plain.png"), "--out", str(tmp_path / "y.pdf")]) == 2
    assert "carries no Gradscape figure spec" in capsys.readouterr().err


# -- the app's Export panel ----------------------------------------------------------------------------------------
def _panel_app():
    import streamlit as st_

    import trajectories as tr
    from views.export import export_panel
    r = st_.cache_resource(lambda: tr.simulate("one_optimum", ["ls", "samgs"], "paper", 400, record_every=10))()
    export_panel(r, "t", expanded=True)


def test_export_panel_prepares_a_pdf_lazily_and_then_a_gif():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_panel_app, default_timeout=120).run()
    assert not at.exception
    assert "t_export_file" not in at.session_state            # lazy: nothing rendered before the button
    at.button(key="t_export_go").click().run()
    assert not at.exception and not at.error
    ident, data = at.session_state["t_export_file"]
    assert data.startswith(b"%PDF")
    assert json.loads(ident[1])["kind"] == "small-multiples"
    at.radio(key="t_export_what").set_value("Animation").run()
    at.number_input(key="t_export_frames").set_value(5).run()
    at.number_input(key="t_export_duration").set_value(1.0).run()
    at.button(key="t_export_go").click().run()
    assert not at.exception and not at.error
    _, data = at.session_state["t_export_file"]
    assert data[:6] == b"GIF89a"


def _panel_app_not_always_drawn():
    import streamlit as st_

    import trajectories as tr
    from views.export import export_panel
    r = st_.cache_resource(lambda: tr.simulate("one_optimum", ["ls"], "paper", 200, record_every=10))()
    if st_.session_state.get("draw_panel", True):
        export_panel(r, "t", expanded=True)


def test_a_prepare_click_whose_run_stops_before_the_panel_is_kept_for_the_next_run():
    """A run that a click on "Prepare file" started can be stopped before it reaches the panel (another change
    came in meanwhile); here the run after the click does not draw the panel at all. The request waits for the
    next run that does, instead of being lost with the run (a plain button's click is)."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_panel_app_not_always_drawn, default_timeout=120).run()
    at.session_state["draw_panel"] = False
    at.button(key="t_export_go").click().run()
    assert not at.exception and "t_export_file" not in at.session_state     # the panel was not reached
    at.session_state["draw_panel"] = True
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["t_export_file"][1].startswith(b"%PDF")
    at.run()                                                                # made once, not on every run
    assert "t_export_want" not in at.session_state


def test_a_prepare_click_whose_run_stops_while_rendering_is_kept_for_the_next_run(monkeypatch):
    """The run that takes a "Prepare file" request can be stopped while the file renders (another change came in);
    the request must outlive it: it is done only once the file is made."""
    from streamlit.testing.v1 import AppTest

    from views import export
    real, calls = export._render, []

    def stopped_once(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            import streamlit as st_
            st_.stop()          # the run ends here, as a run stopped by a newer change does
        return real(*a, **kw)
    monkeypatch.setattr(export, "_render", stopped_once)
    at = AppTest.from_function(_panel_app_not_always_drawn, default_timeout=120).run()
    at.button(key="t_export_go").click().run()
    assert len(calls) == 1 and "t_export_file" not in at.session_state       # stopped while rendering
    at.run()
    assert not at.exception and not at.error and len(calls) == 2
    assert at.session_state["t_export_file"][1].startswith(b"%PDF")
    at.run()
    assert len(calls) == 2 and "t_export_want" not in at.session_state      # made once


# -- the reference image --------------------------------------------------------------------------------------------
def write_reference():
    import tempfile

    from PIL import Image
    DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        img = _rasterise(_reference_pdf(reference_result(), Path(d) / "ref.pdf"))
    Image.fromarray(img).save(REFERENCE, optimize=True)
    print(f"wrote {REFERENCE} {img.shape}: look at it before committing")


if __name__ == "__main__":
    if "--write-reference" in sys.argv:
        write_reference()


# -- the view on screen ------------------------------------------------------------------------------------------------
def test_the_overlay_export_draws_every_path_in_the_colours_of_the_screen(res):
    """The Export panel's "view on screen" of an overlay map: one panel, every start's path of every method, each in
    the colour the browser's map gives that method, the contour filled as on screen."""
    from figures import browser
    from matplotlib.colors import to_hex
    fig = paper.build("overlay", res, st.Style(screen=True), "double")
    [ax] = _visible_axes(fig)
    screen = {t["name"]: t["line"]["color"] for t in browser.build_map(res).to_plotly_json()["data"]
              if t.get("name") in res.labels and t.get("line", {}).get("color")}
    assert set(screen) == set(res.labels)
    S = res.shape[1]
    for m, label in enumerate(res.labels):
        want = screen[label].lower()
        drawn = [ln for ln in ax.lines if to_hex(ln.get_color()).lower() == want and len(ln.get_xdata()) > 2]
        assert len(drawn) == S, (label, len(drawn))
        first = np.column_stack([drawn[0].get_xdata(), drawn[0].get_ydata()])[0]
        assert np.allclose(first, res.starts[0])                       # the same starts
    assert ax.collections, "filled contour bands"
    assert {t.get_text() for t in fig.legends[0].get_texts()} >= set(res.labels)


def test_the_export_panel_offers_the_view_on_screen_first():
    from pathlib import Path as _P
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(_P(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    at.query_params.update({"methods": "samgs,ls", "steps": "500", "layout": "multiples"})
    at.session_state["explore.whole_page"] = True      # the export panel, as after the map's first drawing
    at.run()
    assert at.selectbox(key="explore_export_kind").value == "view"
    at.button(key="explore_export_go").click().run()
    assert not at.exception and not at.error
    ident, pdf = at.session_state["explore_export_file"]
    spec = json.loads(ident[1])
    assert spec["kind"] == "small-multiples" and spec["style"] == {"screen": True, "contour": "sum"}
    assert pdf.startswith(b"%PDF")
