"""Which device and which backend run a simulation.

Device: ``"auto"`` (the default everywhere: ``simulate``, ``Config``, job configs, the CLI, the pages) is CUDA
when ``torch.cuda.is_available()``, else the CPU; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` name one.

Backend: ``"auto"`` is the fused kernel of the device: Triton on CUDA (``"triton"``), the C kernel on the CPU
(``"c"``). ``"compile"`` (``torch.compile`` of the same step) and ``"torch"`` (eager) are named fallbacks:
``"auto"`` takes one where the kernel cannot be had (no Triton, no C compiler), and the engine takes one for
a group whose step the kernel generator refuses; either way ``Result.timings`` says which ran and why.
``"triton"`` on the CPU runs under Triton's interpreter only (``TRITON_INTERPRET=1``, for tests).
"""
from __future__ import annotations

import torch

from .kernel import build_triton
from .kernel import compiler as c_compiler

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "c", "triton", "compile", "torch")


def check_device_name(name) -> str:
    """The device field's syntax (``auto``, ``cpu``, ``cuda``, ``cuda:N``); availability is checked when run."""
    text = str(name).strip().lower() if isinstance(name, (str, torch.device)) else None
    ok = text in DEVICES or (text is not None and text.startswith("cuda:") and text[5:].isdigit())
    if not ok:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)} or cuda:N, got {name!r}")
    return text


def resolve_device(name) -> torch.device:
    text = check_device_name(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {text!r} asked for, but no CUDA device is available here "
                             f"(torch.cuda.is_available() is False); use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {text!r} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    return dev


def describe(dev: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: what ``Result.timings["device"]`` shows."""
    if dev.type != "cuda":
        return "cpu"
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def fallback(dev: torch.device) -> str:
    """The backend a group falls back to when its kernel cannot be built: torch.compile on CUDA (Inductor
    generates Triton there), eager torch on the CPU (Inductor's C++ code generation costs ~40 s here)."""
    return "compile" if dev.type == "cuda" and build_triton.unavailable() is None else "torch"


def choose_backend(backend, dev: torch.device) -> tuple[str, str]:
    """``(backend, reason)``: the backend to run on ``dev``, and why it is a fallback ('' when it is not)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        if dev.type == "cuda":
            why = build_triton.unavailable()
            return ("triton", "") if why is None else ("torch", f"the Triton kernel is unavailable: {why}")
        if c_compiler():
            return "c", ""
        return "torch", "the C kernel is unavailable: no C compiler (gcc) on PATH"
    if backend == "c" and dev.type != "cpu":
        raise ValueError("backend: the C kernel runs on the CPU only; on CUDA use 'triton', 'compile' or 'torch'")
    if backend == "triton":
        why = build_triton.unavailable()
        if why:
            raise ValueError(f"backend: 'triton' asked for, but {why}")
        if dev.type == "cpu" and not build_triton.interpreting():
            raise ValueError("backend: 'triton' needs a CUDA device (on the CPU it runs only under Triton's "
                             "interpreter, TRITON_INTERPRET=1, for tests)")
    return backend, ""
