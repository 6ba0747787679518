"""The one vocabulary of outcomes (figures/vocabulary.py): every engine code has words and a colour, the thresholds
in the prose are the engine's, tables carry no sentinels and no snake_case headers."""
from __future__ import annotations

import numpy as np
import pandas as pd

import landscapes
import trajectories
from figures import data, vocabulary as vocab
from trajectories import metrics


def test_the_prose_thresholds_are_the_engines():
    assert vocab.PARETO_EPS == metrics.PARETO_EPS and vocab.TARGET_EPS == metrics.TARGET_EPS


def test_every_outcome_code_has_words_a_colour_and_a_place_in_the_order():
    for code in metrics.OUTCOMES:
        name = "optimum 1" if code == "optimum" else code
        assert name in vocab.OUTCOME_ORDER and name in vocab.OUTCOME_COLOURS
        assert vocab.outcome_words(name) != name or name in ("stalled",)
        assert "_" not in vocab.outcome_label(name, np.zeros((1, 2)))
    assert data.OUTCOME_ORDER is vocab.OUTCOME_ORDER          # one definition, re-exported


def test_words_for_runs_say_what_was_reached_first_and_what_happened_next():
    assert vocab.outcome_words("optimum 1") == "reached the optimum"
    assert vocab.outcome_words("optimum 2", n_optima=2) == "reached optimum 2"
    assert vocab.run_words("optimum 1", "nan:optimum", optimum_step=12429, status_step=14310) == \
        "reached the optimum at step 12 429, then turned NaN at the optimum (step 14 310)"
    assert vocab.run_words("nan", "nan", status_step=80) == "turned NaN at step 80"
    assert vocab.run_words("moving", "moving", status_step=-1) == "still moving"
    assert vocab.status_words("blowup") == "blew up" and vocab.status_words("settled") == "stopped moving"
    assert vocab.fmt_int(-1) == vocab.MISSING and vocab.fmt_int(float("nan")) == vocab.MISSING
    assert vocab.plural(1, "method") == "1 method" and vocab.plural(3, "method") == "3 methods"
    assert vocab.big(512000) == "512 000" and vocab.big(1.024e7) == "10.2 million" and vocab.big(5.2e12) == \
        "5.2 trillion"


def test_marked_runs_are_those_that_reached_something_and_then_died():
    outcome = np.array(["optimum 1", "optimum 1", "pareto", "nan", "stalled"])
    status = np.array(["nan:optimum", "settled", "blowup:pareto", "nan", "settled"])
    assert vocab.died_after_reaching(outcome, status).tolist() == [True, False, True, False, False]


def test_the_tables_have_words_for_headers_and_no_sentinels():
    res = trajectories.simulate(landscapes.get("one_optimum"), ["samgs", "ls"], "paper", 2000, record_every=100)
    summary = vocab.summary_table(res.summary())
    runs = vocab.runs_table(res.to_frame(), 2)
    for table in (summary, runs):
        assert not any("_" in c for c in table.columns), list(table.columns)
        values = table.to_numpy().ravel().tolist()
        assert -1 not in values and "-1" not in [str(v) for v in values]
    # at 2 000 steps nothing has reached the optimum: its step column is empty, not -1
    assert (res.optimum_step == -1).all()
    assert runs[vocab.header("steps_to_optimum")].isna().all()
    assert summary[vocab.header("optimum")].tolist() == ["0/7", "0/7"]


def test_the_cli_table_prints_words_and_dashes():
    table = pd.DataFrame([{"label": "LS", "runs": 7, "reached": 0, "pareto": 2, "median_steps": float("nan"),
                           "p90_steps": float("nan"), "final_distance": 0.5, "stalled": 1, "moving": 4,
                           "blowup": 0, "nan": 0, "died_after": 0, "wall_s": 0.1}])
    text = vocab.text_table(table)
    assert "reached the optimum" in text and "0/7" in text and vocab.MISSING in text and "-1" not in text


def test_durations_read_in_the_largest_units_that_fit():
    assert [vocab.duration(s) for s in (0, 42.4, 59.6, 60, 185, 3599, 3600, 7830)] == \
        ["0 s", "42 s", "1 min 00 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 00 min", "2 h 10 min"]
    assert vocab.duration(None) == vocab.duration(float("nan")) == vocab.MISSING
    assert vocab.duration(-3) == "0 s"
