"""The public API of ``import perfsuite``, and what a worker process pays to start."""

import subprocess
import sys

import perfsuite
from tests.fakerun import make_run

HEAVY = ("pandas", "scipy", "matplotlib", "rich", "jinja2")


def test_every_public_name_resolves():
    assert set(perfsuite.__all__) >= {"Implementation", "SetupContext", "EpochTiming", "PHASES", "load_run", "analyse"}
    for name in perfsuite.__all__:
        assert getattr(perfsuite, name) is not None, name
    assert perfsuite.PHASES == ("batching", "forward", "loss", "backward", "step")


def test_load_run_gives_typed_records_and_analyse_their_statistics(tmp_path):
    run = perfsuite.load_run(make_run(tmp_path / "r", epochs=2, warmup=1, steps=6))
    records = run.records("store")
    assert len(records) == 3 and all(isinstance(r, perfsuite.EpochRecord) for r in records)
    assert [r.warmup for r in records] == [True, False, False] and records[0].steps == 6
    result = perfsuite.analyse(run)
    assert isinstance(result, perfsuite.Analysis) and result.impls["store"].epoch.n == 2


def test_worker_modules_do_not_load_the_analysis_libraries():
    """A spawned worker re-imports the main module and imports its own: none of them loads pandas or scipy."""
    code = (
        "import sys, perfsuite, perfsuite.__main__, perfsuite.measure.worker, perfsuite.profile.worker; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
