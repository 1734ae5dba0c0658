"""``tox -e bench``'s runner: one pytest process per implementation, one merged JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.benchmarks import isolated
from tests.conftest import mnist_root

ROOT = Path(__file__).resolve().parent.parent


def test_options_choose_implementations_and_pass_the_rest():
    chosen, rest = isolated.split_impls(["-k", "test_epoch", "--bench-impls", "store,tuned", "--benchmark-autosave"])
    assert chosen == "store,tuned" and rest == ["-k", "test_epoch", "--benchmark-autosave"]
    assert isolated.split_impls(["--bench-impls=native"]) == ("native", [])
    assert isolated.implementations("store,tuned") == ["store", "tuned"]
    assert "store" in isolated.implementations(None)


def test_each_implementation_keeps_its_own_storage(tmp_path):
    command = isolated.pytest_command("path/to/my.py:Loop", tmp_path / "x.json", ["-q"])
    assert "--bench-impls=path/to/my.py:Loop" in command and command[-1] == "-q"
    assert "--benchmark-storage=file://.benchmarks/path_to_my_py_Loop" in command


def test_merge_keeps_every_benchmark():
    parts = [
        {"machine_info": {"node": "a"}, "benchmarks": [{"name": "x"}]},
        {"machine_info": {}, "benchmarks": [{"name": "y"}]},
    ]
    merged = isolated.merge(parts)
    assert merged["machine_info"] == {"node": "a"} and [b["name"] for b in merged["benchmarks"]] == ["x", "y"]


def test_two_implementations_in_two_processes_one_json(tmp_path):
    out = tmp_path / "bench.json"
    root = mnist_root()
    extra = [
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "test_epoch",
        "--bench-subset",
        "0.02",
        "--bench-rounds",
        "1",
        "--bench-warmup",
        "0",
    ]
    env_data = {"PERFSUITE_DATA": root} if root else {}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.isolated",
            "--json",
            str(out),
            "--impls",
            "store,tuned",
            "--storage",
            str(tmp_path / "history"),
            "--",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env_data},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("its own pytest process") == 2
    names = [b["name"] for b in json.loads(out.read_text())["benchmarks"]]
    assert names == ["test_epoch[store]", "test_epoch[tuned]"]
