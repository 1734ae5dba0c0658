"""``perfsuite check``: equivalent implementations pass, a different one is named."""

from pathlib import Path

import numpy as np

from perfsuite.analysis.check import compare
from perfsuite.cli import main
from perfsuite.results.record import EpochRecord
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"


def record(losses, acc):
    return EpochRecord(round=0, epoch=0, warmup=False, wall=1.0, phases=(), losses=tuple(losses), train_accuracy=acc)


def test_compare_finds_first_diverging_step():
    losses = np.linspace(2, 1, 200)
    ref = record(losses, 0.9)
    losses[37] *= 1.001
    ours = record(losses, 0.9)
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
