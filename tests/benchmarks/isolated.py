"""``tox -e bench``: the benchmarks of each implementation in a pytest process of its own, one JSON.

pytest-benchmark times callables inside the pytest process, so in one session
every implementation runs after the others in the same process, beside their
runtime state (TorchScript's executor, Dynamo and Inductor, several copies of
the data set). ``perfsuite run`` gives each implementation a process of its
own; to compare like with like, this runner does the same for the
benchmarks: one ``pytest tests/benchmarks --bench-impls NAME`` per
implementation, each with its own pytest-benchmark storage
(``.benchmarks/<name>/``, so ``--benchmark-autosave`` and
``--benchmark-compare`` gate each implementation against its own history),
then one merged ``--benchmark-json`` file.

Usage: ``python -m tests.benchmarks.isolated --json PATH [--impls LIST] [--storage DIR] [-- pytest options]``.
Exit status: the worst of the pytest runs (1 when a comparison gate failed).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from perfsuite.core import registry

STORAGE = ".benchmarks"


def implementations(text) -> list:
    """The implementations to benchmark: ``text`` (comma-separated) or every registered one."""
    return registry.parse_list(text) if text else sorted(registry.builtin())


def storage_name(spec: str) -> str:
    """A folder name for an implementation spec (names stay as they are)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in spec)


def child_environment() -> dict:
    """This process's environment without a pytest-xdist worker's variables, for a pytest child of its own.

    pytest-benchmark disables itself in a process that sees ``PYTEST_XDIST_WORKER``, so a child that
    inherited it (this runner started from a test under ``pytest -n``) would measure nothing.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


def pytest_command(spec: str, json_path: Path, extra: list, storage: str = STORAGE) -> list:
    """The pytest run of one implementation's benchmarks (its history in ``storage/<name>``)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "tests/benchmarks",
        "--benchmark-enable",
        f"--bench-impls={spec}",
        f"--benchmark-json={json_path}",
        f"--benchmark-storage=file://{storage}/{storage_name(spec)}",
        "--benchmark-columns=median,iqr,mean,stddev,min,rounds",
        *extra,
    ]


def merge(parts: list) -> dict:
    """One pytest-benchmark document from several: the first one's machine and commit, every benchmark."""
    if not parts:
        raise ValueError("no benchmark results to merge")
    merged = dict(parts[0])
    merged["benchmarks"] = [bench for part in parts for bench in part.get("benchmarks", [])]
    return merged


def run(json_out: Path, specs: list, extra: list, storage: str = STORAGE) -> int:
    """Benchmark every implementation in its own process; write the merged JSON; return the exit status."""
    status, parts = 0, []
    with tempfile.TemporaryDirectory(prefix="perfsuite-bench-") as tmp:
        for spec in specs:
            path = Path(tmp) / f"{storage_name(spec)}.json"
            print(f"== {spec}: its own pytest process", flush=True)
            done = subprocess.run(pytest_command(spec, path, extra, storage), env=child_environment())
            if done.returncode not in (0, 5):  # 5: nothing collected (e.g. -k matched none of its tests)
                status = max(status, done.returncode)
            if path.is_file():
                parts.append(json.loads(path.read_text()))
    if parts:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(merge(parts), indent=4))
        print(f"benchmarks of {len(specs)} implementation(s), {len(parts)} process(es): {json_out}", flush=True)
    return status


def split_impls(extra: list) -> tuple:
    """``(LIST or None, the other pytest options)``: a ``--bench-impls`` among them chooses the implementations."""
    found, rest, i = None, [], 0
    while i < len(extra):
        arg = extra[i]
        if arg == "--bench-impls" and i + 1 < len(extra):
            found, i = extra[i + 1], i + 2
            continue
        if arg.startswith("--bench-impls="):
            found = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return found, rest


def main(argv=None) -> int:
    """Entry point: ``--json PATH [--impls LIST] [-- pytest options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.isolated", description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, type=Path, help="merged pytest-benchmark JSON to write")
    p.add_argument("--impls", default=None, help="implementations, comma-separated (default: every registered one)")
    p.add_argument("--storage", default=STORAGE, help=f"folder of the per-implementation histories (default {STORAGE})")
    args = p.parse_args(own)
    chosen, extra = split_impls(extra)
    return run(args.json, implementations(chosen or args.impls), extra, args.storage)


if __name__ == "__main__":
    sys.exit(main())
