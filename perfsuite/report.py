"""``perfsuite report RUN_DIR``: one self-contained HTML page answering where the time goes.

:func:`write_report` reads a run folder (:mod:`perfsuite.rundata`), computes
its statistics (:mod:`perfsuite.analysis`), adds them to ``summary.json``
under ``"statistics"``, and renders ``RUN_DIR/index.html`` from the Jinja2
template ``perfsuite/templates/report.html.j2``. Charts are inline (SVG or
PNG data URIs, :mod:`perfsuite.charts`), the CSS is inline, and nothing is
loaded from any address: the page opens the same offline. Links point at
the CSV/JSON files beside it.

Extra evidence (flame graphs, sampled shares, Chrome traces, pytest-benchmark
results) gets its own section when its files exist; the file names that are
looked for are documented in :mod:`perfsuite.artifacts`.
"""

import os
from pathlib import Path

import jinja2

from perfsuite import analysis as analysis_mod
from perfsuite import artifacts, benchjson, charts, ddp_report, roofline, sweep_report, tables
from perfsuite import __version__
from perfsuite.errors import UsageError
from perfsuite.results import FILES, write_json
from perfsuite.rundata import Run, load_run
from perfsuite.stats import CONFIDENCE, NOISE_THRESHOLD, RESAMPLES
from perfsuite.summary import summarize

REPORT_NAME = "index.html"
TEMPLATE = "report.html.j2"


def environment() -> jinja2.Environment:
    """The Jinja2 environment loading perfsuite's packaged templates (HTML autoescaped)."""
    return jinja2.Environment(loader=jinja2.PackageLoader("perfsuite", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)


def _charts(run: Run, result) -> dict:
    if not result.impls:
        return {}
    found = {"phase_stack": charts.phase_stack(result), "epoch_series": charts.epoch_series(run),
             "step_series": charts.step_series(run), "distributions": charts.distributions(run),
             "loss_curves": charts.loss_curves(run, result.baseline)}
    if any(s.speedup is not None for s in result.impls.values()):
        found["speedups"] = charts.speedups(result)
    return found


def _tables(run: Run, result, found: dict, facts: dict) -> dict:
    meta = run.meta
    out = {"overview": tables.overview(run, result), "impl_info": tables.impl_info(run, facts),
           "machine": tables.key_values(meta.get("machine", {})),
           "software": tables.key_values(meta.get("software", {})),
           "workload": tables.key_values({"workload": meta.get("workload", {}), "dataset": meta.get("dataset", {}),
                                          "timer": meta.get("timer", {})}),
           "attribution": tables.attribution(run, found), "roofline": roofline.report_html(meta, result)}
    if result.impls:
        out.update(phases=tables.phases(result), gaps=tables.gaps(result),
                   equivalence=tables.equivalence(run, result.baseline))
    return out


def _notices(run: Run, facts: dict) -> list:
    """Implementation info entries that warn (deprecations, warnings) and epoch facts that do, as ``(impl, text)``."""
    found = []
    for name in run.impls:
        shown = []
        for key, value in (run.status(name).get("info") or {}).items():
            if isinstance(value, bool) or not any(word in key.lower() for word in ("deprecat", "warning", "notice")):
                continue
            text = value if isinstance(value, str) else "; ".join(map(str, value)) if isinstance(value, list) else str(value)
            if text and not any(text in earlier or earlier in text for earlier in shown):
                shown.append(text)
                found.append((name, f"{key}: {text}"))
        for key, counts in facts.get(name, {}).items():
            if "compil" in key and counts["measured"] > 0:
                found.append((name, f"{key}: {counts['measured']:g} during measured epochs, so compilation time is "
                                    "inside their timings (use more warm-up epochs)"))
    return found


def context(run: Run, result, summary: dict) -> dict:
    """Everything the template shows, computed from the run, its analysis and its summary."""
    found = artifacts.discover(run.folder, run.impls)
    facts = {name: entry.get("epoch_facts", {}) for name, entry in summary["implementations"].items()}
    return {
        "run": run, "meta": run.meta, "analysis": result, "headline": analysis_mod.headline(result),
        "charts": _charts(run, result), "tables": _tables(run, result, found, facts), "artifacts": found,
        "noisy": result.noisy, "notices": _notices(run, facts), "version": __version__,
        "files": [name for name in FILES if (run.folder / name).is_file()],
        "confidence": CONFIDENCE, "noise_threshold": NOISE_THRESHOLD, "resamples": RESAMPLES,
        "pytest_benchmark": benchjson.sections(run, [run.folder / a.path for a in found.get("benchmark", [])]),
        "ddp_section": ddp_report.section(summary, environment()),
    }


def render(run: Run, result, summary: dict) -> str:
    """The report page as an HTML string."""
    return environment().get_template(TEMPLATE).render(**context(run, result, summary))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the report ({exc.strerror})") from exc


def add_statistics(run: Run, result) -> dict:
    """Recompute ``summary.json`` from the raw files with the statistics under ``"statistics"``."""
    summary = {**summarize(run.epochs, run.meta), "statistics": result.to_dict()}
    write_json(run.folder / "summary.json", summary)
    return summary


def write_report(folder, baseline=None) -> Path:
    """Analyse a run folder, update its ``summary.json`` and write ``index.html``; returns its path."""
    run = load_run(folder)
    result = analysis_mod.analyse(run, baseline)
    summary = add_statistics(run, result)
    path = run.folder / REPORT_NAME
    _write_text(path, render(run, result, summary))
    return path


def cmd_report(args) -> int:
    """``perfsuite report RUN_DIR [--baseline NAME] [--pytest-benchmark FILE ...]``: write and name the report.

    Each ``--pytest-benchmark`` file is validated and copied into the run
    folder first (:func:`perfsuite.benchjson.attach`), where the report finds it.
    """
    for source in getattr(args, "pytest_benchmark", None) or []:
        print(f"pytest-benchmark: {benchjson.attach(args.run_dir, source)}")
    if sweep_report.is_sweep(args.run_dir):
        path = sweep_report.write_sweep_report(args.run_dir)
        print(f"report: {path.resolve()}")
        return 0
    path = write_report(Path(args.run_dir), args.baseline)
    print(f"report: {path.resolve()}")
    return 0
