"""The HTML report: sections, self-containment, optional evidence, summary.json statistics, CLI."""

import json
import re

import pytest

from perfsuite import cli
from perfsuite.render import report
from tests.fakerun import SLOW as SLOW_PHASES
from tests.fakerun import make_run

SECTIONS = (
    "headline",
    "overview",
    "phases",
    "gap",
    "steps",
    "equivalence",
    "implementations",
    "environment",
    "methodology",
    "files",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = make_run(
        tmp_path_factory.mktemp("rep") / "run",
        epochs=3,
        steps=20,
        info={
            "store": {"info": {"deprecation": "torch.jit.script is deprecated"}, "metrics": {"compile_seconds": 12.5}}
        },
    )
    path = report.write_report(folder)
    return folder, path.read_text()


def test_report_has_every_section(page):
    _, html = page
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "store is the fastest implementation" in html
    assert html.count("<svg") >= 4
    assert html.count('src="data:image/png;base64,') >= 2


def test_report_makes_no_requests(page):
    _, html = page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "@import" not in html and "<script" not in html and "<link" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)


def test_report_links_files_and_shows_impl_info(page):
    _, html = page
    for name in ("phases.csv", "steps.csv", "epochs.csv", "meta.json", "summary.json"):
        assert f'href="{name}"' in html
    assert "torch.jit.script is deprecated" in html
    assert "compile_seconds: 12.5" in html


def test_summary_json_gets_statistics(page):
    folder, _ = page
    summary = json.loads((folder / "summary.json").read_text())
    stats = summary["statistics"]
    assert stats["baseline"] == "idiomatic"
    store = stats["implementations"]["store"]
    assert store["speedup"]["median"] > 1 and store["speedup"]["ci_low"] is not None
    assert store["epoch"]["n"] == 3
    assert summary["implementations"]["store"]["measured_epochs"] == 3


def test_no_evidence_sections_without_files(page):
    _, html = page
    assert 'id="evidence"' not in html


def test_synthetic_data_is_labelled_loudly(tmp_path):
    html = report.write_report(make_run(tmp_path / "s", epochs=2, steps=5, synthetic=True)).read_text()
    assert 'id="synthetic-banner"' in html
    assert "SYNTHETIC DATA" in html


def _evidence(folder):
    (folder / "flame").mkdir()
    (folder / "flame" / "store.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (folder / "flame" / "store.json").write_text(
        json.dumps({"samples": 100, "shares": {"batching": 10, "forward": 20, "loss": 5, "backward": 45, "step": 20}})
    )
    (folder / "flame" / "idiomatic.json").write_text("{truncated")
    (folder / "trace").mkdir()
    events = [
        {"name": f"perfsuite.{p}", "ph": "X", "ts": i, "dur": d}
        for i, (p, d) in enumerate([("batching", 5), ("forward", 30), ("loss", 5), ("backward", 40), ("step", 20)])
    ]
    (folder / "trace" / "store-round0.json").write_text(json.dumps({"traceEvents": events}))
    (folder / "benchmark.json").write_text(
        json.dumps(
            {
                "benchmarks": [
                    {
                        "name": "test_step",
                        "fullname": "tests/test_bench.py::test_step",
                        "stats": {
                            "median": 0.001,
                            "iqr": 0.0001,
                            "mean": 0.0011,
                            "stddev": 0.0002,
                            "min": 0.0009,
                            "max": 0.002,
                            "rounds": 50,
                        },
                    }
                ]
            }
        )
    )


def test_evidence_sections_when_files_exist(tmp_path):
    folder = make_run(tmp_path / "e", epochs=2, steps=5)
    _evidence(folder)
    html = report.write_report(folder).read_text()
    for anchor in ("evidence", "flame", "attribution", "traces", "benchmarks"):
        assert f'id="{anchor}"' in html, anchor
    assert 'href="flame/store.svg"' in html and 'href="trace/store-round0.json"' in html
    assert "tests/test_bench.py::test_step" in html
    assert "sampled stacks (flame/store.json)" in html and "trace ranges (trace/store-round0.json)" in html
    assert "flame/idiomatic.json: unreadable JSON" in html


def test_cli_report(tmp_path, capsys):
    folder = make_run(tmp_path / "c", epochs=2, steps=5)
    assert cli.main(["report", str(folder), "--baseline", "store"]) == 0
    assert "report:" in capsys.readouterr().out
    assert "faster than store" not in (folder / "index.html").read_text().split('id="overview"')[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "{tmp}/nowhere"], "no such run folder"),
        (["report", "{tmp}"], "no meta.json"),
        (["report", "{run}", "--baseline", "nosuch"], "--baseline nosuch"),
    ],
)
def test_cli_report_errors(tmp_path, capsys, args, message):
    run = make_run(tmp_path / "run", epochs=1, steps=3)
    argv = [a.format(tmp=tmp_path / "empty", run=run) for a in args]
    (tmp_path / "empty").mkdir()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_phase_a_loop_does_not_time_is_drawn(tmp_path):
    """A fused loop may report zero for a phase it cannot separate: the report still renders."""
    fused = {"batching": 0.0, "forward": 0.0008, "loss": 0.0, "backward": 0.001, "step": 0.0003}
    folder = make_run(tmp_path / "z", impls={"idiomatic": SLOW_PHASES, "fused": fused}, epochs=2, steps=5)
    html = report.write_report(folder).read_text()
    assert "fused is the fastest implementation" in html


def test_summary_keeps_one_off_costs_apart(tmp_path):
    from perfsuite.analysis.summary import write_summary

    folder = make_run(tmp_path / "r", info={"store": {"metrics": {"build_seconds": 1.5, "build_cached": True}}})
    summary = write_summary(folder)["implementations"]
    assert summary["store"]["setup"] == {"start_seconds": 0.4, "setup_seconds": 0.1, "build_seconds": 1.5}
    assert summary["idiomatic"]["setup"] == {"start_seconds": 0.4, "setup_seconds": 0.1}


def test_epoch_facts_are_summed_shown_and_a_measured_compile_warned(tmp_path):
    from perfsuite.analysis.summary import write_summary

    compiles = {"store": lambda epoch: {"graphs_compiled": 2 if epoch in (0, 3) else 0}}
    folder = make_run(tmp_path / "r", warmup=1, epochs=4, facts=compiles)
    summary = write_summary(folder)["implementations"]
    assert summary["store"]["epoch_facts"] == {"graphs_compiled": {"warmup": 2, "measured": 2}}
    assert "epoch_facts" not in summary["idiomatic"]
    assert cli.main(["report", str(folder)]) == 0
    html = (folder / "index.html").read_text()
    assert "graphs_compiled: 2 / 2" in html
    assert "graphs_compiled: 2 during measured epochs" in html


def test_damaged_facts_are_a_one_line_error(tmp_path, capsys):
    folder = make_run(tmp_path / "r", facts={"store": lambda epoch: {"graphs_compiled": 0}})
    path = folder / "epochs.csv"
    path.write_text(path.read_text().replace('{""graphs_compiled"": 0}', "{not json"))
    assert cli.main(["summary", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "not a JSON object" in err and "Traceback" not in err


def test_example_export_has_the_summary_charts_and_table(tmp_path, capsys):
    folder = make_run(tmp_path / "r", epochs=3, steps=8)
    assert cli.main(["report", str(folder), "--example", str(tmp_path / "example")]) == 0
    out = tmp_path / "example"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "phase-stack.png", "speedups.png", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["statistics"]["baseline"] == "idiomatic"
    text = (out / "README.md").read_text()
    assert "| store | " in text and "| idiomatic | " in text and "(UTC)" in text
    assert "![speedups](speedups.png)" in text
    assert f"example: {(out / 'README.md').resolve()}" in capsys.readouterr().out


def test_example_of_a_sweep_folder_is_one_line(tmp_path, capsys):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"schema_version": 1, "vary": [{"name": "batch_size"}], "points": []}))
    assert cli.main(["report", str(sweep), "--example", str(tmp_path / "e")]) == 2
    assert "--example:" in capsys.readouterr().err


def test_summary_command_keeps_statistics_and_noise(tmp_path, capsys):
    folder = make_run(tmp_path / "r", epochs=3, steps=8)
    assert cli.main(["summary", str(folder)]) == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert {"statistics", "noise", "implementations"} <= set(summary)
    assert "noise: " in capsys.readouterr().out
