"""The outer optimisers that move theta along the aggregated direction d: Adam and SGD with momentum.

Both are batched over B independent runs with a per-run learning rate ``lr[B]`` (so a learning-rate
sweep is one batch) and follow torch.optim's update rules exactly (``tests/test_outer.py`` checks them
against ``torch.optim.Adam`` / ``torch.optim.SGD`` run one start at a time):

Adam (Kingma & Ba, 2015), torch's placement of eps::

    m <- b1 m + (1 - b1) d ;  v <- b2 v + (1 - b2) d^2
    theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

SGD with momentum (torch's form, dampening 0)::

    buf <- d at t = 1, else mu buf + d ;  theta <- theta - lr * buf      (Nesterov: lr * (d + mu buf))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Outer:
    key: str
    name: str
    options: dict            # static options and their defaults
    help: str

    def init(self, theta: torch.Tensor) -> dict:
        z = torch.zeros_like(theta)
        one = torch.ones(theta.shape[0], dtype=theta.dtype, device=theta.device)
        if self.key == "adam":      # beta^t in double, as torch.optim.Adam computes it in Python
            one64 = one.to(torch.float64)
            return {"m": z, "v": z.clone(), "p1": one64, "p2": one64.clone()}
        return {"buf": z, "first": one}

    def step(self, theta, d, state, lr, momentum, opts):
        if self.key == "adam":
            return _adam(theta, d, state, lr, opts)
        return _sgd(theta, d, state, lr, momentum, opts)


def _adam(theta, d, s, lr, o):
    b1, b2, eps = o["beta1"], o["beta2"], o["eps"]
    m = s["m"] + (d - s["m"]) * (1 - b1)          # torch: exp_avg.lerp_(grad, 1 - beta1)
    v = s["v"] * b2 + (1 - b2) * d * d
    p1 = s["p1"] * b1                               # b1^t, b2^t and the bias corrections in double (torch:
    p2 = s["p2"] * b2                               # Python's beta ** step; a running product in double is
                                                    # within 1e-11 of it), rounded once to theta's dtype
    step_size = (lr.to(torch.float64) / (1 - p1)).to(theta.dtype)
    bc2 = torch.sqrt(1 - p2).to(theta.dtype)
    denom = torch.sqrt(v) / bc2[:, None] + eps
    theta = theta - step_size[:, None] * m / denom
    return theta, {"m": m, "v": v, "p1": p1, "p2": p2}


def _sgd(theta, d, s, lr, mu, o):
    first = s["first"][:, None] > 0
    buf = torch.where(first, d, mu[:, None] * s["buf"] + d)
    upd = d + mu[:, None] * buf if o["nesterov"] else buf
    theta = theta - lr[:, None] * upd
    return theta, {"buf": buf, "first": torch.zeros_like(s["first"])}


OUTERS = {
    "adam": Outer("adam", "Adam", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                  "Adam with torch's defaults, the published toy code's choice (lr 1e-3)."),
    "sgd": Outer("sgd", "SGD + momentum", {"nesterov": False},
                 "Plain (heavy-ball) momentum SGD; momentum 0 gives gradient descent."),
}


def get(key: str) -> Outer:
    try:
        return OUTERS[key]
    except KeyError:
        raise ValueError(f"optimizer: unknown outer optimiser {key!r} (known: {', '.join(OUTERS)})") from None
