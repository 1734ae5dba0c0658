"""``perfsuite report RUN_DIR``: one self-contained HTML page answering where the time goes.

:func:`write_report` reads a run folder (:mod:`perfsuite.results.reader`), computes
its statistics (:mod:`perfsuite.analysis.speedups`), adds them to ``summary.json``
under ``"statistics"``, and renders ``RUN_DIR/index.html`` from the Jinja2
template ``perfsuite/render/templates/report.html.j2``. Charts are inline (SVG or
PNG data URIs, :mod:`perfsuite.render.charts`), the CSS is inline, and nothing is
loaded from any address: the page opens the same offline. Links point at
the CSV/JSON files beside it.

The Noise section holds the diagnosis of :mod:`perfsuite.analysis.noise`
(also under ``"noise"`` in ``summary.json``); the quantities whose IQR/median
exceeds the noise threshold are listed there, collapsed.

Extra evidence (flame graphs, sampled shares, Chrome traces, pytest-benchmark
results) gets its own section when its files exist; the file names that are
looked for are documented in :mod:`perfsuite.results.artifacts`.
"""

from pathlib import Path

from perfsuite.analysis import benchjson, speedups
from perfsuite.analysis import noise as noise_mod
from perfsuite.analysis.stats import CONFIDENCE, NOISE_THRESHOLD, RESAMPLES
from perfsuite.analysis.summary import analyse_and_summarise
from perfsuite.core.metadata import VERSION
from perfsuite.render import charts, ddp_section, html, memory_section, tables, userphases_section
from perfsuite.results import artifacts
from perfsuite.results.reader import Run, load_run
from perfsuite.results.schema import FILES
from perfsuite.results.writer import write_text

REPORT_NAME = "index.html"
TEMPLATE = "report.html.j2"


def _charts(run: Run, result, diagnosis) -> dict:
    if not result.impls:
        return {}
    found = {
        "phase_stack": charts.phase_stack(result),
        "epoch_series": charts.epoch_series(run),
        "step_series": charts.step_series(run),
        "distributions": charts.distributions(run),
        "loss_curves": charts.loss_curves(run, result.baseline),
    }
    if any(s.speedup is not None for s in result.impls.values()):
        found["speedups"] = charts.speedups(result)
    if diagnosis.recorded:
        found["noise"] = charts.noise(noise_mod.pass_table(run), diagnosis.stretch)
    return found


def _tables(run: Run, result, found: dict, facts: dict, diagnosis) -> dict:
    meta = run.meta
    out = {
        "overview": tables.overview(run, result),
        "impl_info": tables.impl_info(run, facts),
        "machine": tables.key_values(meta.get("machine", {})),
        "software": tables.key_values(meta.get("software", {})),
        "workload": tables.key_values(
            {"workload": meta.get("workload", {}), "dataset": meta.get("dataset", {}), "timer": meta.get("timer", {})}
        ),
        "attribution": tables.attribution(run, found),
        "roofline": tables.roofline_section(meta, result),
        "noise": tables.noise(diagnosis),
    }
    if result.impls:
        out.update(
            phases=tables.phases(result), gaps=tables.gaps(result), equivalence=tables.equivalence(run, result.baseline)
        )
    return out


def _notices(run: Run, facts: dict) -> list:
    """Implementation info entries that warn (deprecations, warnings) and epoch facts that do, as ``(impl, text)``."""
    found = []
    for name in run.impls:
        shown = []
        for key, value in (run.status(name).get("info") or {}).items():
            if isinstance(value, bool) or not any(word in key.lower() for word in ("deprecat", "warning", "notice")):
                continue
            text = (
                value
                if isinstance(value, str)
                else "; ".join(map(str, value))
                if isinstance(value, list)
                else str(value)
            )
            if text and not any(text in earlier or earlier in text for earlier in shown):
                shown.append(text)
                found.append((name, f"{key}: {text}"))
        for key, counts in facts.get(name, {}).items():
            if "compil" in key and counts["measured"] > 0:
                found.append(
                    (
                        name,
                        f"{key}: {counts['measured']:g} during measured epochs, so compilation time is "
                        "inside their timings (use more warm-up epochs)",
                    )
                )
    return found


def context(run: Run, result, summary: dict, diagnosis=None) -> dict:
    """Everything the template shows, computed from the run, its analysis, its summary and its noise diagnosis."""
    diagnosis = diagnosis or noise_mod.diagnose(run)
    found = artifacts.discover(run.folder, run.impls)
    facts = {name: entry.get("epoch_facts", {}) for name, entry in summary["implementations"].items()}
    return {
        "run": run,
        "meta": run.meta,
        "analysis": result,
        "headline": speedups.headline(result),
        "charts": _charts(run, result, diagnosis),
        "tables": _tables(run, result, found, facts, diagnosis),
        "noise": diagnosis,
        "artifacts": found,
        "noisy": result.noisy,
        "notices": _notices(run, facts),
        "version": VERSION,
        "files": [name for name in FILES if (run.folder / name).is_file()],
        "confidence": CONFIDENCE,
        "noise_threshold": NOISE_THRESHOLD,
        "resamples": RESAMPLES,
        "pytest_benchmark": benchjson.sections(run, [run.folder / a.path for a in found.get("benchmark", [])]),
        "ddp_section": ddp_section.section(summary),
        "memory_section": memory_section.section(summary),
        "userphases_section": userphases_section.section(summary),
        "host_language": summary.get("host_language"),
        "host_table": tables.host_language(summary.get("host_language")),
    }


def render(run: Run, result, summary: dict, diagnosis=None) -> str:
    """The report page as an HTML string."""
    return html.render(TEMPLATE, **context(run, result, summary, diagnosis))


def write_report(folder, baseline=None) -> Path:
    """Analyse a run folder, write its ``summary.json`` (statistics and noise) and ``index.html``; the page's path."""
    run = load_run(folder)
    summary, result, diagnosis = analyse_and_summarise(run, baseline)
    path = run.folder / REPORT_NAME
    write_text(path, render(run, result, summary, diagnosis))
    return path
