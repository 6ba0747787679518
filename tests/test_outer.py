"""The batched outer optimisers against torch.optim, run one start at a time."""
import pytest
import torch

from optimizers import outer


def _directions(T, B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("lrs", [[1e-3, 1e-3, 1e-3], [1e-3, 0.05, 0.3]])
def test_adam_matches_torch_optim(lrs):
    T, B = 60, len(lrs)
    d = _directions(T, B)
    theta0 = torch.randn(B, 2, dtype=torch.float64)
    o = outer.get("adam")
    theta, st = theta0.clone(), o.init(theta0)
    lr = torch.tensor(lrs, dtype=torch.float64)
    for t in range(T):
        theta, st = o.step(theta, d[t], st, lr, None, o.options)
    for b in range(B):
        p = theta0[b].clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=lrs[b])
        for t in range(T):
            p.grad = d[t, b].clone()
            opt.step()
        torch.testing.assert_close(theta[b], p.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_torch_optim(nesterov):
    T, B = 40, 2
    d = _directions(T, B, 1)
    theta0 = torch.randn(B, 2, dtype=torch.float64)
    o = outer.get("sgd")
    theta, st = theta0.clone(), o.init(theta0)
    lr = torch.tensor([0.01, 0.1], dtype=torch.float64)
    mu = torch.tensor([0.9, 0.5], dtype=torch.float64)
    for t in range(T):
        theta, st = o.step(theta, d[t], st, lr, mu, {"nesterov": nesterov})
    for b in range(B):
        p = theta0[b].clone().requires_grad_(True)
        opt = torch.optim.SGD([p], lr=lr[b].item(), momentum=mu[b].item(), nesterov=nesterov)
        for t in range(T):
            p.grad = d[t, b].clone()
            opt.step()
        torch.testing.assert_close(theta[b], p.detach(), rtol=1e-12, atol=1e-12)


def test_unknown_outer():
    with pytest.raises(ValueError, match="unknown outer"):
        outer.get("lbfgs")


def test_adam_in_float32_follows_torch_optim_to_the_last_bits():
    """float32 parameters over a long run: the bias corrections in double (pow), rounded once, as
    torch.optim.Adam does with its Python-float lr and betas. The one remaining difference is torch's lerp,
    which rounds m + w (d - m) as one fused multiply-add; ours (and the kernel's) rounds twice."""
    T, B = 3000, 3
    d = _directions(T, B, 2).to(torch.float32) * torch.tensor([1e-6, 1.0, 1e6])[None, :, None]
    theta0 = torch.randn(B, 2, dtype=torch.float32)
    o = outer.get("adam")
    theta, st = theta0.clone(), o.init(theta0)
    lr = torch.full((B,), 1e-3, dtype=torch.float64)
    for t in range(T):
        theta, st = o.step(theta, d[t], st, lr, None, o.options)
    for b in range(B):
        p = theta0[b].clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=1e-3)
        for t in range(T):
            p.grad = d[t, b].clone()
            opt.step()
        torch.testing.assert_close(theta[b], p.detach(), rtol=2e-6, atol=1e-6)
