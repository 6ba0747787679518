"""One home for spec parsing (trajectories/specs.py): start specs, numbers, weights, sweep values and --hp, with the
same meaning and the same messages from the engine config, job configs, the CLI and the pages."""
from __future__ import annotations

import numpy as np
import pytest

import landscapes
import trajectories
from jobs import config as jobs
from trajectories import specs
from trajectories.specs import StartSpec

LAND = landscapes.get("one_optimum")


@pytest.mark.parametrize("text,kind", [("paper", "preset"), ("grid:7", "grid"), ("random:12", "random"),
                                       ("random:12:5", "random"), ("-8,5;3,7.5", "points")])
def test_a_start_spec_reads_back_to_the_same_text(text, kind):
    spec = StartSpec.parse(text, LAND.presets)
    assert spec.kind == kind
    assert StartSpec.parse(spec.text(), LAND.presets) == spec


def test_start_specs_count_and_describe_themselves():
    assert StartSpec.parse("grid:16").count == 256 and StartSpec.parse("grid:16").describe() == "a 16 × 16 grid"
    assert StartSpec.parse("random:1").describe() == "1 random point"
    assert StartSpec.parse("1,2;3,4").count == 2


@pytest.mark.parametrize("text,words", [("grid:x", "grid size"), ("random:0", "between 1"), ("1,2;3", "'3'"),
                                        ("1,a", "pair of numbers"), ("", "no start points"),
                                        ("random:3:4:5", "random:N:SEED")])
def test_a_bad_start_spec_is_refused_with_the_field_named(text, words):
    with pytest.raises(ValueError, match="^starts: ") as e:
        StartSpec.parse(text, LAND.presets)
    assert words in str(e.value)


def test_every_face_reads_a_start_spec_the_same_way():
    text = "random:5:3"
    direct = trajectories.starts.resolve(LAND, text)
    cfg = trajectories.Config.make(LAND, ["ls"], text, 10)
    job = jobs.JobConfig.from_dict({"landscape": "one_optimum", "methods": ["ls"], "starts": text, "steps": 10})
    np.testing.assert_array_equal(cfg.start_array, direct)
    np.testing.assert_array_equal(job.start_points(), direct)
    from views import explore_model
    mode, fields = explore_model.start_fields(text, LAND)
    assert (mode, fields["random"], fields["rseed"]) == ("random", 5, 3)
    assert explore_model.compose_starts(mode, fields) == text


def test_numbers_name_their_field():
    assert specs.number("2.5", "lr", 0, 10) == 2.5
    assert specs.number("3", "steps", 1, 10, integer=True) == 3
    for bad, words in (("abc", "is not a number"), ("nan", "finite"), ("20", "outside"), (True, "expected a number")):
        with pytest.raises(ValueError, match="^lr: ") as e:
            specs.number(bad, "lr", 0, 10)
        assert words in str(e.value)
    with pytest.raises(ValueError, match="^steps: .*whole number"):
        specs.number("2.5", "steps", integer=True)
    assert specs.numbers("1, 2,3", "w", 3) == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="^w: expected 2 comma-separated numbers, got 3"):
        specs.numbers("1,2,3", "w", 2)


def test_task_weights_and_sweeps_read_alike_in_job_configs():
    assert specs.weight_sets("1, 2; 3, 4", K=2) == [(1.0, 2.0), (3.0, 4.0)]
    with pytest.raises(ValueError, match="^task_weights: "):
        specs.weight_sets("1, -2", K=2)
    cfg = jobs.JobConfig.from_dict({"landscape": "one_optimum", "methods": ["ls"], "starts": "paper", "steps": 10,
                                    "task_weights": "1, 3"})
    assert cfg.task_weights == ((1.0, 3.0),)
    assert specs.sweep_values("lin(0, 1, 3)") == [0.0, 0.5, 1.0] == jobs.parse_values("lin(0, 1, 3)")


def test_hp_assignments_of_the_cli():
    assert specs.hp_assignments(["samgs.gamma=0.2", "samgs.beta1=0.5,0.9"]) == \
        {"samgs": {"gamma": 0.2, "beta1": [0.5, 0.9]}}
    for bad in ("samgs=0.2", "samgs.gamma=", "samgs.gamma=x"):
        with pytest.raises(ValueError, match="^--hp"):
            specs.hp_assignments([bad])
