"""Animations of trajectories advancing over the steps: GIF (pillow) or MP4 (imageio-ffmpeg's ffmpeg).

One panel per method variant side by side (the small-multiples layout), every start's path growing, a red dot
at its head, and a step counter. The user picks the number of frames and the duration; frame ``i`` shows step
``round(i * steps / (frames - 1))``.

Memory stays bounded for long runs: the static layer (contours, Pareto set, optima, start dots) is drawn once,
then each frame restores it, draws the moving artists, and is handed straight to the encoder, so one frame is
in memory at a time. The GIF is written by a small streaming writer (global palette from the last frame, which
holds every colour that ever appears; pillow LZW-encodes each frame); pillow's own ``save_all`` keeps every frame
until the end, so it is not used. The MP4 is H.264 (yuv420p) fed frame by frame through a pipe to ffmpeg.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D

from . import paper
from . import style as st

MAX_FRAMES = 3000
MIN_DURATION, MAX_DURATION = 0.2, 600.0
MAX_GIF_FPS = 50        # GIF delays are whole centiseconds and browsers slow anything under 2 cs
MAX_MP4_FPS = 60


def check_timing(fmt, frames=60, duration=6.0):
    """Validate the user's frame count and duration for ``fmt``; returns (frames, duration, fps)."""
    try:
        n = int(frames)
    except (TypeError, ValueError):
        raise ValueError(f"frames: expected a whole number, got {frames!r}") from None
    if n != float(frames) or not 2 <= n <= MAX_FRAMES:
        raise ValueError(f"frames: must be a whole number between 2 and {MAX_FRAMES}, got {frames!r}")
    try:
        dur = float(duration)
    except (TypeError, ValueError):
        raise ValueError(f"duration: expected seconds, got {duration!r}") from None
    if not np.isfinite(dur) or not MIN_DURATION <= dur <= MAX_DURATION:
        raise ValueError(f"duration: must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds, got {duration!r}")
    fps = n / dur
    cap = MAX_GIF_FPS if fmt == "gif" else MAX_MP4_FPS
    if fps > cap + 1e-9:
        raise ValueError(f"frames: {n} frames in {dur:g} s is {fps:.3g} frames a second; a {fmt.upper()} plays at "
                         f"most {cap} (use fewer frames or a longer duration)")
    return n, dur, fps


def frame_steps(steps: int, frames: int) -> np.ndarray:
    """The step shown by each frame: evenly spaced from 0 to ``steps`` inclusive."""
    return np.round(np.linspace(0, steps, frames)).astype(int)


class _Scene:
    """The figure with its static layer drawn once and the moving artists (paths, heads, counter)."""

    def __init__(self, result, size, dpi, style, columns, methods):
        style = style if isinstance(style, st.Style) else paper.style_from_dict(style or {})
        size = paper.size_of(size)
        pos = paper._need_positions(result, "animation")
        land = result.landscape
        self.sel = paper._variants_to_draw(result, methods)
        rows, cols = paper._grid_shape(len(self.sel), size, columns)
        self.rc = size.rc
        with mpl.rc_context(self.rc):
            fig = paper._new_figure(size, rows, cols, extra_in=4.0 * size.font / 72)
            # whole, even pixel dimensions (H.264 in yuv420p needs even width and height)
            w_px, h_px = (int(round(v * dpi)) for v in fig.get_size_inches())
            w_px, h_px = w_px + w_px % 2, h_px + h_px % 2
            fig.set_size_inches(w_px / dpi, h_px / dpi)
            fig.set_dpi(dpi)
            self.canvas = FigureCanvasAgg(fig)
            axes = fig.subplots(rows, cols, squeeze=False)
            vstyle = st.variant_style(result.variants)
            sz = paper._marker_sizes(style, size)
            self.idx = st.decimate(pos.shape[2], style.max_points)
            self.pos = pos
            self.record_steps = np.asarray(result.record_steps)
            self.moving = []        # (line, head, m, s)
            for j, m in enumerate(self.sel):
                ax = axes[divmod(j, cols)]
                colour, dash = vstyle[m]
                paper.draw_landscape(ax, land, weights=paper._variant_weights(result, m),
                                     scale=paper._scale(result), style=style, size=size)
                paper._panel_title(ax, result.variants[m]["label"], size, cols)
                ax.set_xlabel(st.THETA_LABELS[0])
                if j % cols == 0:
                    ax.set_ylabel(st.THETA_LABELS[1])
                for s in range(pos.shape[1]):
                    p0 = pos[m, s, 0]
                    ax.plot(p0[0], p0[1], ls="none", marker="o", ms=sz["start"], color=st.START_COLOUR, zorder=4)
                    (line,) = ax.plot([], [], color=colour, ls=st.MPL_DASHES[dash], lw=sz["line"], zorder=3,
                                      solid_capstyle="round", animated=True)
                    (head,) = ax.plot([], [], ls="none", marker="o", ms=sz["end"] * 0.8, color=st.END_COLOUR,
                                      zorder=5, animated=True)
                    self.moving.append((line, head, m, s))
            for j in range(len(self.sel), rows * cols):
                axes[divmod(j, cols)].set_visible(False)
            fig.legend(handles=paper.marker_legend(style, size)[:1] +
                       [Line2D([], [], ls="none", marker="o", ms=sz["end"] * 0.8, color=st.END_COLOUR,
                                     label="current position")] + paper.marker_legend(style, size)[2:],
                       loc="outside lower center", ncol=4)
            self.total = int(result.config.get("steps", self.record_steps[-1]))
            self.counter = fig.text(0.995, 0.005, "", ha="right", va="bottom", animated=True,
                                    fontsize=size.font * 0.9, family="monospace")
            self.fig = fig
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(fig.bbox)
        self.size_px = (w_px, h_px)

    def frame(self, step: int) -> np.ndarray:
        """The RGB frame [H, W, 3] (uint8) at ``step``."""
        k = int(np.searchsorted(self.record_steps, step, side="right") - 1)
        k = max(k, 0)
        keep = self.idx[self.idx <= k]
        with mpl.rc_context(self.rc):
            self.canvas.restore_region(self.background)
            for line, head, m, s in self.moving:
                p = paper._finite_path(np.concatenate([self.pos[m, s, keep], self.pos[m, s, k:k + 1]]))
                line.set_data(p[:, 0], p[:, 1])
                head.set_data(p[-1:, 0], p[-1:, 1]) if len(p) else head.set_data([], [])
                line.axes.draw_artist(line)
                head.axes.draw_artist(head)
            shown = int(self.record_steps[k])
            self.counter.set_text(f"step {shown:>{len(f'{self.total:,}')},} / {self.total:,}")
            self.fig.draw_artist(self.counter)
        buf = np.asarray(self.canvas.buffer_rgba())
        return np.ascontiguousarray(buf[..., :3])


class _GifWriter:
    """A streaming GIF89a writer: header and a global palette once, then one frame at a time."""

    def __init__(self, path, size_px, palette_frame, comment=""):
        from PIL import Image
        self.Image = Image
        self.pal = Image.fromarray(palette_frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                           dither=Image.Dither.NONE)
        pal = (self.pal.getpalette() or [])[:768]
        pal = bytes(pal + [0] * (768 - len(pal)))
        w, h = size_px
        self.f = open(path, "wb")
        self.f.write(b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little") + bytes([0xF7, 0, 0]) + pal)
        self.f.write(b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")          # loop forever
        if comment:
            data = comment.encode()
            self.f.write(b"!\xfe" + b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                                             for i in range(0, len(data), 255)) + b"\x00")

    def write(self, frame: np.ndarray, delay_cs: int):
        from PIL import GifImagePlugin
        im = self.Image.fromarray(frame).quantize(palette=self.pal, dither=self.Image.Dither.NONE)
        for chunk in GifImagePlugin.getdata(im, (0, 0), duration=delay_cs * 10, disposal=1):
            self.f.write(chunk)

    def close(self):
        self.f.write(b";")
        self.f.close()


class _Mp4Writer:
    def __init__(self, path, size_px, fps, comment=""):
        try:
            import imageio_ffmpeg
        except ImportError:
            raise ValueError("format: MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
        params = ["-movflags", "+faststart"] + (["-metadata", f"comment={comment}"] if comment else [])
        self.gen = imageio_ffmpeg.write_frames(str(path), size_px, fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                               pix_fmt_out="yuv420p", quality=8, macro_block_size=2,
                                               ffmpeg_log_level="error", output_params=params)
        self.gen.send(None)

    def write(self, frame: np.ndarray, delay_cs=None):
        self.gen.send(frame.tobytes())

    def close(self):
        self.gen.close()


def _gif_delays(frames: int, duration: float) -> list[int]:
    """Whole-centisecond delays that add up to the duration (rounding error carried to the next frame)."""
    edges = np.round(np.linspace(0, duration * 100, frames + 1)).astype(int)
    return np.maximum(np.diff(edges), 2).tolist()


def animate(result, path, *, fmt=None, frames=60, duration=6.0, size="slide", dpi=100, style=None, columns=None,
            methods=None, spec=None, progress=None) -> Path:
    """Write the animation of ``result`` to ``path`` (GIF or MP4, by ``fmt`` or the suffix); returns the path.
    ``progress(done, total)`` is called after each frame."""
    from .save import check_dpi, format_of
    path = Path(path)
    fmt = format_of(path, fmt)
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"format: an animation is written as gif or mp4, not {fmt}")
    n, dur, fps = check_timing(fmt, frames, duration)
    dpi = check_dpi(dpi)
    scene = _Scene(result, size, dpi, style, columns, methods)
    steps = frame_steps(scene.total, n)
    comment = json.dumps(spec.to_dict() if hasattr(spec, "to_dict") else spec, sort_keys=True,
                         separators=(",", ":")) if spec is not None else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp." + fmt)
    if fmt == "gif":
        writer = _GifWriter(tmp, scene.size_px, scene.frame(steps[-1]), comment)
        delays = _gif_delays(n, dur)
    else:
        writer = _Mp4Writer(tmp, scene.size_px, fps, comment)
        delays = [None] * n
    try:
        for i, s in enumerate(steps):
            writer.write(scene.frame(int(s)), delays[i])
            if progress is not None:
                progress(i + 1, n)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(path)
    return path
