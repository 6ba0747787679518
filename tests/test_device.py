"""The device policy: which device and backend run, what Result.timings says, and bad names refused."""
import json

import pytest
import torch

import trajectories
from cli.main import main
from jobs.config import JobConfig
from trajectories import device


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"backend: expected one of auto, c, triton, compile, torch, got 'no-such-backend'"):
        trajectories.simulate("one_optimum", ["ls"], "paper", 5, backend="no-such-backend")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", "", 3, None])
def test_a_bad_device_name_is_a_value_error_naming_the_field(bad):
    with pytest.raises(ValueError, match="^device: "):
        trajectories.Config.make("one_optimum", ["ls"], "paper", 5, device=bad)


def test_auto_is_the_default_and_resolves_to_the_cpu_without_cuda():
    cfg = trajectories.Config.make("one_optimum", ["ls"], "paper", 5)
    assert cfg.device == "auto"
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.resolve_device("auto").type == want
    if not torch.cuda.is_available():
        res = trajectories.simulate("one_optimum", ["ls", "samgs"], "paper", 5)
        assert res.timings["device"] == "cpu"
        assert res.timings["backends"] == {"ls": "c", "samgs": "c"}
        assert "backend_fallback" not in res.timings


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no CUDA device")
def test_asking_for_cuda_without_one_says_so():
    with pytest.raises(ValueError, match="device: 'cuda' asked for, but no CUDA device is available"):
        trajectories.simulate("one_optimum", ["ls"], "paper", 5, device="cuda")


def test_the_c_kernel_on_cuda_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="backend: the C kernel runs on the CPU only"):
        device.choose_backend("c", torch.device("cuda"))


def test_auto_takes_the_devices_kernel_and_names_the_fallback_when_it_cannot(monkeypatch):
    assert device.choose_backend("auto", torch.device("cuda")) == ("triton", "")
    assert device.choose_backend("auto", torch.device("cpu")) == ("c", "")
    monkeypatch.setattr(device, "c_compiler", lambda: None)
    backend, why = device.choose_backend("auto", torch.device("cpu"))
    assert backend == "torch" and "no C compiler" in why
    monkeypatch.setattr(device.build_triton, "unavailable", lambda: "triton cannot be imported (test)")
    backend, why = device.choose_backend("auto", torch.device("cuda"))
    assert backend == "torch" and "triton cannot be imported" in why


def test_a_job_config_carries_the_device_and_checks_it():
    cfg = JobConfig.from_dict({"methods": ["ls"], "starts": "grid:2", "steps": 10})
    assert cfg.device == "auto" and cfg.engine_config("ls", 0, [[1.0, 2.0]]).device == "auto"
    assert JobConfig.from_dict({"methods": ["ls"], "starts": "grid:2", "steps": 10, "device": "cpu"}).device == "cpu"
    with pytest.raises(ValueError, match="^device: "):
        JobConfig.from_dict({"methods": ["ls"], "starts": "grid:2", "steps": 10, "device": "gpu0"})


def test_the_cli_takes_a_device_and_reports_what_ran(tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert main(["run", "--methods", "ls", "--starts", "paper", "--steps", "20", "--device", "cpu",
                 "--out", str(out)]) == 0
    assert "on cpu, c)" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["device"] == "cpu"
