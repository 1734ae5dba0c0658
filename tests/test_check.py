"""``perfsuite check``: equivalent implementations pass, a different one is named."""

from pathlib import Path

import numpy as np

from perfsuite.check import compare
from perfsuite.cli import main
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"


def record(losses, acc):
    return {"losses": losses, "train_accuracy": acc}


def test_compare_finds_first_diverging_step():
    ref = record(np.linspace(2, 1, 200), 0.9)
    ours = record(ref["losses"].copy(), 0.9)
    ours["losses"][37] *= 1.001
    verdict = compare("x", ours, ref)
    assert not verdict.ok and verdict.problem.startswith("step 37:")


def test_compare_accuracy_and_length():
    ref = record(np.ones(10), 0.90)
    assert not compare("x", record(np.ones(10), 0.894), ref).ok
    assert compare("x", record(np.ones(10), 0.897), ref).ok
    assert "ran 9 steps" in compare("x", record(np.ones(9), 0.9), ref).problem
    assert not compare("x", record(np.full(10, np.nan), 0.9), ref).ok


def test_check_passes_for_idiomatic_and_fails_for_a_different_rule(capsys):
    args = ["check", "--subset", "0.05", "--threads", "1", "--quiet", *data_args()]
    assert main([*args, "--impls", "idiomatic"]) == 0
    assert main([*args, "--impls", f"idiomatic,{FIXTURES}:WrongLR"]) == 1
    err = capsys.readouterr().err
    assert "wrong-lr diverged from store: step 1:" in err
    assert "idiomatic diverged" not in err
