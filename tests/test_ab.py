"""``perfsuite ab BASE NEW``: sides, bad input, random interleaving, and end-to-end A/B and A/A runs."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from perfsuite.cli.main import main
from perfsuite.core.clock import FakeClock
from perfsuite.core.workload import Workload
from perfsuite.measure.runner import Runner
from perfsuite.measure.sides import registered
from tests.test_reliability import one_line_error
from tests.test_run import data_args
from tests.test_sampling import FakeHandle, wall_of

ROOT = Path(__file__).resolve().parents[1]
SLOW_STEP = """    def step(self):
        time.sleep(0.002)
"""
QUICK = ["--subset", "0.02", "--warmup", "1", "--threads", "1", "--quiet"]


GREEDY_STEP = """    def step(self):
        self.kept = torch.ones(1 << 18)
"""


def make_side(folder: Path, slow: bool = False, greedy: bool = False) -> Path:
    """A copy of the repository's ``impls/`` and ``pyproject.toml``; ``slow``: ``Store.step`` sleeps 2 ms more;
    ``greedy``: it allocates one more 1 MiB tensor per step."""
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", folder)
    shutil.copytree(ROOT / "impls", folder / "impls", ignore=shutil.ignore_patterns("__pycache__", "build"))
    if slow:
        store = folder / "impls" / "store.py"
        text = store.read_text()
        assert text.count("    def step(self):\n") == 1
        text = text.replace("    def step(self):\n", SLOW_STEP).replace(
            "import torch\n", "import time\n\nimport torch\n", 1
        )
        store.write_text(text)
    if greedy:
        store = folder / "impls" / "store.py"
        store.write_text(store.read_text().replace("    def step(self):\n", GREEDY_STEP, 1))
    return folder


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    root = tmp_path_factory.mktemp("sides")
    return make_side(root / "a"), make_side(root / "a2"), make_side(root / "b", slow=True)


def verdicts(out: Path) -> dict:
    rows = json.loads((out / "ab.json").read_text())["rows"]
    return {(r["impl"], r["quantity"]): r["verdict"] for r in rows}


def test_a_slowed_step_is_slower(sides, tmp_path, capsys):
    a, _, b = sides
    out = tmp_path / "r"
    args = ["ab", str(a), str(b), "--impls", "store", "--epochs", "8", *QUICK, "--out", str(out), *data_args()]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "store step" in captured.err and "significant slowdown" in captured.err
    found = verdicts(out)
    assert "slower" in (found[("store", "step")], found[("store", "epoch")])
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store@base", "store@new"}
    assert (out / "index.html").is_file()
    record = json.loads((out / "meta.json").read_text())["ab"]
    assert [s["folder"] for s in record["sides"]] == [str(a), str(b)]
    assert record["pairs"] == [{"impl": "store", "base": "store@base", "new": "store@new"}]


def test_memory_gate_fails_on_more_tensor_memory(sides, tmp_path, capsys):
    a, _, _ = sides
    greedy = make_side(tmp_path / "greedy", greedy=True)
    out = tmp_path / "r"
    args = ["ab", str(a), str(greedy), "--impls", "store", "--epochs", "2", "--memory", *QUICK, "--out", str(out)]
    assert main([*args, *data_args()]) == 1
    failure = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("perfsuite: error:")]
    assert len(failure) == 1 and "more tensor memory beyond 5%: " in failure[0]
    assert "store tensor bytes allocated per step ×" in failure[0]
    assert "slowdown" not in failure[0]
    memory = json.loads((out / "memory-run" / "summary.json").read_text())["memory"]["impls"]
    step = {side: memory[f"store@{side}"]["phases"]["step"]["allocations_per_step"] for side in ("base", "new")}
    assert step["new"] == step["base"] + 1
    assert set(pd.read_csv(out / "epochs.csv")["impl"]) == {"store@base", "store@new"}


def test_identical_sides_are_not_slower(sides, tmp_path, capsys):
    a, a2, _ = sides
    out = tmp_path / "r"
    assert (
        main(["ab", str(a), str(a2), "--impls", "store", "--epochs", "6", *QUICK, "--out", str(out), *data_args()]) == 0
    )
    assert "no significant slowdown" in capsys.readouterr().out
    assert "slower" not in verdicts(out).values()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_git_revisions_are_checked_out_and_removed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    before = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True, check=True).stdout
    out = tmp_path / "r"
    args = ["ab", "HEAD", "HEAD", "--impls", "store", "--subset", "0.01", "--epochs", "2", "--warmup", "0"]
    assert main([*args, "--threads", "1", "--quiet", "--out", str(out), *data_args()]) in (0, 1)
    after = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert after == before
    sides_ = json.loads((out / "meta.json").read_text())["ab"]["sides"]
    assert sides_[0]["revision"] == "HEAD" and len(sides_[0]["commit"]) == 40
    assert (out / "ab.json").is_file()


@pytest.mark.parametrize(
    "which,args,fragment",
    [
        ("missing", ["--impls", "store"], "BASE {missing}: not a git revision of"),
        ("empty", ["--impls", "store,tuned"], "NEW ({empty}) registers none of store, tuned"),
        ("ok", ["--impls", "store", "--threshold", "5 percent"], "--threshold 5 percent"),
        ("ok", ["--impls", "store:Store"], "name them"),
        ("ok", ["--impls", "store,tuned", "--workload", "mnist-cnn"], "tuned does not train workload mnist-cnn"),
        ("ok", ["--impls", "store", "--fresh-workers"], "--fresh-workers: give --repeats 2 or more (not 1)"),
    ],
)
def test_bad_input_is_one_line(which, args, fragment, sides, tmp_path, capsys):
    a = sides[0]
    paths = {"missing": tmp_path / "nothing-here", "empty": tmp_path / "empty", "ok": a}
    (tmp_path / "empty").mkdir()
    base, new = (paths[which], a) if which == "missing" else (a, paths[which])
    out = tmp_path / "r"
    assert main(["ab", str(base), str(new), *args, "--quiet", "--out", str(out), *data_args()]) == 2
    one_line_error(capsys, fragment.format(missing=paths["missing"], empty=paths["empty"]))
    assert not out.exists()


def passes(walls: dict, shuffle) -> list:
    """The order of the implementations in each pass of a fake run."""
    workload = Workload(epochs=6, warmup=0, threads=1)
    clock, sunk = FakeClock(), []
    runner = Runner(workload, None, [], sink=lambda name, record: sunk.append((record.epoch, name)), shuffle=shuffle)
    runner.handles = [FakeHandle(name, wall, clock, 0) for name, wall in walls.items()]
    runner.run()
    return [[name for e, name in sunk if e == epoch] for epoch in range(6)]


def test_each_pass_runs_in_a_seeded_random_order():
    walls = {name: wall_of(1.0, 0.1, i) for i, name in enumerate(["a@base", "a@new", "b@base", "b@new"])}
    default = passes(walls, None)
    assert all(p == list(walls) for p in default)
    shuffled = passes(walls, random.Random(3))
    assert all(sorted(p) == sorted(walls) for p in shuffled)
    assert any(p != list(walls) for p in shuffled)
    assert shuffled == passes(walls, random.Random(3))
    assert shuffled != passes(walls, random.Random(4))


def test_activation_imports_the_sides_files(sides, tmp_path):
    assert registered(sides[2])["store"] == "perfsuite.impls.store:Store"
    (tmp_path / "pyproject.toml").write_text('[project.entry-points."perfsuite.impls"]\nmine = "sub/mine.py:Mine"\n')
    assert registered(tmp_path) == {"mine": f"{tmp_path / 'sub' / 'mine.py'}:Mine"}
    code = (
        f"from perfsuite.measure.sides import activate; activate({str(sides[2])!r}); import perfsuite.impls.store as s"
    )
    found = subprocess.run([sys.executable, "-c", code + "; print(s.__file__)"], capture_output=True, text=True)
    assert found.stdout.strip() == str(sides[2] / "impls" / "store.py"), found.stderr


def test_each_side_says_which_implementations_cannot_train_the_workload(sides):
    from perfsuite.measure.sides import Side, unsupported

    both = (Side("base", "a", sides[0]), Side("new", "a2", sides[1]))
    found = unsupported(both, ["idiomatic", "store", "tuned"], "mnist-cnn")
    assert set(found) == {"tuned"} and "BASE (a): tuned does not train workload mnist-cnn" in found["tuned"]
    assert unsupported(both, ["idiomatic", "tuned"], "mnist-mlp") == {}
