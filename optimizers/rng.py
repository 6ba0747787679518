"""Counter-based random numbers: a pure function of (run key, step, salt, index).

Every run carries an int64 key (derived from the seed and the run's identity). A draw hashes the key,
the step count and a per-call-site salt with a 32-bit xor-shift-multiply mixer (multipliers kept
below 2**31 so every product fits in a signed int64), so

* a run's draws never depend on the other runs in its batch (sweeps and sub-batches reproduce);
* the same draws come out of eager torch, the fused C kernel and a GPU, bit for bit
  (only int64 adds, multiplies below 2**63, xors and shifts; no overflow anywhere).
"""
from __future__ import annotations

import math

import torch

MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = x & MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & MASK32
    x = x ^ (x >> 16)
    return x


def run_keys(seed: int, n: int, stream: int = 0) -> torch.Tensor:
    """Keys for runs 0..n-1 of a stream (e.g. one per method): int64 [n]."""
    idx = torch.arange(n, dtype=torch.int64)
    k = _mix32(idx * 0x9E3779B1 + (seed & MASK32))
    return _mix32(k + (stream * 0x85EBCA77 & MASK32))


def bits(key: torch.Tensor, t: torch.Tensor, salt: int, shape: tuple[int, ...]) -> torch.Tensor:
    """int64 [B, *shape] of 32 random bits each."""
    step = t.to(torch.int64)
    h = _mix32(key ^ _mix32(step * 0x27D4EB2F + salt * 0x165667B1))
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.int64).reshape(shape) if n else torch.zeros(shape, dtype=torch.int64)
    lead = h.reshape(h.shape + (1,) * len(shape))
    return _mix32(lead + idx * 0x9E3779B1)


def uniform(key, t, salt, shape, dtype=torch.float32) -> torch.Tensor:
    """U[0, 1) with 24 random bits (exactly representable in float32)."""
    return (bits(key, t, salt, shape) >> 8).to(dtype) * (1.0 / 16777216.0)


def normal(key, t, salt, shape, dtype=torch.float32) -> torch.Tensor:
    """N(0, 1) by Box-Muller from two independent uniforms."""
    u1 = uniform(key, t, salt * 2 + 1, shape, dtype)
    u2 = uniform(key, t, salt * 2 + 2, shape, dtype)
    return torch.sqrt(-2.0 * torch.log(1.0 - u1)) * torch.cos(6.283185307179586 * u2)
