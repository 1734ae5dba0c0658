"""Noise diagnosis: machine state readings, the calibration probe, the side files, the diagnosis and the report."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from perfsuite.analysis import noise
from perfsuite.cli.main import main
from perfsuite.core.clock import FakeClock
from perfsuite.measure import machine
from perfsuite.render import report
from perfsuite.results.reader import load_run
from perfsuite.results.record import EpochRecord
from perfsuite.results.writer import ResultsWriter
from tests.fakerun import _meta, add_machine, make_run, slow_epochs
from tests.test_run import data_args

STAT = "cpu  {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"


def write_stat(proc, user=100, system=50, idle=800, iowait=20, steal=30):
    (proc / "stat").write_text(STAT.format(user=user, system=system, idle=idle, iowait=iowait, steal=steal))


def fake_process(proc, pid, state, parent, name="python x"):
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(f"{pid} ({name}) {state} {parent} 1 1 0 -1\n")


def test_cpu_shares_from_proc_stat_deltas(tmp_path):
    write_stat(tmp_path)
    before = machine.read_cpu_times(tmp_path)
    assert before == (30, 20, 1000)
    write_stat(tmp_path, user=150, system=60, idle=900, iowait=30, steal=80)
    after = machine.read_cpu_times(tmp_path)
    steal, iowait = machine.cpu_shares(before, after)
    assert steal == pytest.approx(50 / 220) and iowait == pytest.approx(10 / 220)
    assert all(math.isnan(v) for v in machine.cpu_shares(after, after))


def test_frequency_from_cpufreq_else_cpuinfo(tmp_path):
    sys_root, proc = tmp_path / "sys", tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2000.0\nprocessor\t: 1\ncpu MHz\t\t: 3000.0\n")
    assert machine.read_cpu_mhz(sys_root, proc) == pytest.approx(2500.0)
    for cpu, khz in (("cpu0", 1_800_000), ("cpu1", 2_200_000)):
        folder = sys_root / "devices/system/cpu" / cpu / "cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(f"{khz}\n")
    assert machine.read_cpu_mhz(sys_root, proc) == pytest.approx(2000.0)


def test_other_running_leaves_out_this_runs_process_tree(tmp_path):
    fake_process(tmp_path, 10, "R", 1)  # this run's parent
    fake_process(tmp_path, 11, "R", 10, name="perfsuite-store (worker)")  # its worker
    fake_process(tmp_path, 12, "R", 11)  # a grandchild (torchrun rank)
    fake_process(tmp_path, 20, "R", 1)  # another job
    fake_process(tmp_path, 21, "S", 1)  # sleeping
    (tmp_path / "self").mkdir()
    assert machine.other_running(tmp_path, own=10) == 1


def test_sampler_rows_and_failures_noted_once(tmp_path):
    write_stat(tmp_path)
    (tmp_path / "loadavg").write_text("1.50 0.80 0.40 2/98 123\n")
    fake_process(tmp_path, 10, "R", 1)
    clock = FakeClock()
    sampler = machine.MachineSampler(tmp_path, tmp_path / "nosys", own=10, clock=clock)
    started = sampler.start()
    write_stat(tmp_path, idle=900, steal=40)
    clock.advance(2.0)
    row = sampler.finish(started)
    assert row["seconds"] == 2.0 and row["steal_share"] == pytest.approx(10 / 110) and row["loadavg_1m"] == 1.5
    assert row["other_running"] == 0 and math.isnan(row["cpu_mhz"])
    assert "cpu frequency" in row["note"]
    assert sampler.finish(sampler.start())["note"] == ""


def test_calibration_probe_rates_and_threads_restored():
    before = torch.get_num_threads()
    probe = machine.CalibrationProbe(1, seconds=0.002)
    row = probe.measure()
    assert row["sgemm_gflops"] > 0 and row["copy_gbps"] > 0 and row["note"] == "" and row["threads"] == 1
    assert 0 < row["probe_seconds"] < 2
    assert torch.get_num_threads() == before


def test_failing_probe_records_nan_and_its_reason_once(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no BLAS")

    monkeypatch.setattr(machine.torch, "mm", broken)
    probe = machine.CalibrationProbe(1, seconds=0.001)
    first, second = probe.measure(), probe.measure()
    assert math.isnan(first["sgemm_gflops"]) and first["copy_gbps"] > 0
    assert "sgemm: RuntimeError: no BLAS" in first["note"] and second["note"] == ""


def test_side_files_round_trip(tmp_path):
    folder = make_run(tmp_path / "r", epochs=2)
    run = load_run(folder)
    assert run.machine.empty and run.calibration.empty
    out = ResultsWriter(folder)
    out.append_machine({"impl": "store", "round": 0, "epoch": 1, "seconds": 0.5, "steal_share": math.nan, "note": "x"})
    out.append_calibration({"round": 0, "epoch": 1, "threads": 2, "sgemm_gflops": 150.0, "copy_gbps": 12.5})
    out.close()
    run = load_run(folder)
    row = run.machine.iloc[0]
    assert (row["impl"], row["round"], row["epoch"], row["seconds"], row["note"]) == ("store", 0, 1, 0.5, "x")
    assert math.isnan(row["steal_share"]) and math.isnan(row["cpu_mhz"])
    assert run.calibration[["sgemm_gflops", "copy_gbps"]].iloc[0].tolist() == [150.0, 12.5]


@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    """Twelve measured passes; passes 7–12 ran 30% slower while the calibration sgemm rate was 30% lower."""
    folder = make_run(tmp_path_factory.mktemp("drift") / "r", epochs=12, warmup=1, steps=20, noise=0.03)
    slow_epochs(folder, range(7, 13), 1.3)
    return add_machine(folder, rate=lambda r, e: 105.0 if e >= 7 else 150.0)


def test_diagnosis_names_the_slow_stretch(drifting):
    found = noise.diagnose(load_run(drifting))
    assert found.kind == "calibration"
    assert found.stretch == [(0, e) for e in range(7, 13)]
    assert "epochs 7–12" in found.sentence and "30% lower rate" in found.sentence
    assert "30% slower than the rest" in found.sentence
    assert all(v == pytest.approx(0.3, abs=0.03) for v in found.slowdown.values())
    assert "within this run only" in found.recommendation


def test_scattered_slow_passes_are_counted_not_listed(tmp_path):
    """Every other pass of three rounds slow: told as a count of scattered passes, not a list of 12 spans."""
    folder = make_run(tmp_path / "r", epochs=8, warmup=1, rounds=3, steps=20, noise=0.02)
    slow_epochs(folder, [2, 4, 6, 8], 1.2)
    add_machine(folder, rate=lambda r, e: 110.0 if e in (2, 4, 6, 8) else 150.0)
    found = noise.diagnose(load_run(folder))
    assert found.kind == "calibration" and len(found.stretch) == 12
    assert "lower rate in 12 of 24 measured passes, scattered over 3 rounds, than in the rest" in found.sentence
    assert "epochs in those passes were 20% slower than the rest" in found.sentence
    assert "round 0" not in found.sentence


def test_a_few_spans_are_listed():
    words, scattered = noise.label_passes([(0, 1), (0, 2), (1, 5), (2, 3)], False, {0: 6, 1: 6, 2: 6})
    assert (words, scattered) == ("round 0 epochs 1–2, round 1 epoch 5, round 2 epoch 3", False)
    words, scattered = noise.label_passes([(0, e) for e in (1, 3, 5, 7, 9)], True, {0: 10})
    assert (words, scattered) == ("5 of 10 measured passes, scattered over the run", True)


def test_diagnosis_of_stolen_time(tmp_path):
    folder = make_run(tmp_path / "r", epochs=8, warmup=1, steps=20, noise=0.03)
    slow_epochs(folder, [3, 4], 1.25)
    add_machine(folder, steal=lambda r, e: 0.35 if e in (3, 4) else 0.0)
    found = noise.diagnose(load_run(folder))
    assert found.kind == "steal"
    assert found.sentence.startswith("epochs 3–4 ran while 35% of CPU time was stolen by the host")
    assert "slower than the rest" in found.sentence
    assert all(v == pytest.approx(0.25, abs=0.03) for v in found.slowdown.values())


def test_steady_machine(tmp_path):
    folder = add_machine(make_run(tmp_path / "r", epochs=8, warmup=1, steps=20, noise=0.03), noise=0.01)
    found = noise.diagnose(load_run(folder))
    assert found.kind == "steady" and found.stretch == []
    assert found.sentence.startswith("the machine was steady: calibration within ±") and "no steal" in found.sentence


def test_steady_calibration_tells_lone_passes_apart():
    rates = pd.Series([100.0, 102.0, 98.0, 101.0, 99.0, 78.0])
    assert noise._calibration_words(rates) == "calibration within ±2.5% but for 1 lone pass (at most 22% off)"
    assert noise._calibration_words(rates.iloc[:5]) == "calibration within ±2.0%"
    assert noise._calibration_words(pd.Series([math.nan, math.nan])) == "calibration not recorded"


@pytest.mark.parametrize("swing", [False, True])
def test_other_processes_throughout(tmp_path, swing):
    folder = make_run(tmp_path / "r", epochs=6, warmup=1, steps=20, noise=0.03)
    add_machine(folder, rate=lambda r, e: 20.0 if swing and e % 2 else 150.0, busy=lambda r, e: 2)
    found = noise.diagnose(load_run(folder))
    if swing:
        assert found.kind == "shared" and found.sentence.startswith("every measured pass ran while 2.0 other processes")
        assert "fewer --threads" in found.recommendation
    else:
        assert found.kind == "steady" and "though 2.0 other processes were running" in found.sentence


def test_old_folder_says_the_state_was_not_recorded(tmp_path):
    found = noise.diagnose(load_run(make_run(tmp_path / "r", epochs=3)))
    assert found.kind == "unrecorded" and "not recorded" in found.sentence
    assert set(found.splits) == {"idiomatic", "store"}


def nested_run(folder, rounds, epochs, steps, sd_round, sd_epoch, sd_step, seed=0):
    """One implementation whose epoch time is 1 s + a round effect + an epoch effect + independent step noise."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    out = ResultsWriter(folder)
    out.write_meta(_meta({"x": {}}, False, epochs, 0, rounds, None))
    for r in range(rounds):
        shift_r = rng.normal(0, sd_round)
        for e in range(epochs):
            shift = (shift_r + rng.normal(0, sd_epoch)) / steps
            times = 1.0 / steps + shift + rng.normal(0, sd_step, steps)
            phases = tuple((0.0, float(t), 0.0, 0.0, 0.0) for t in times)
            record = EpochRecord(r, e, False, float(times.sum()), phases, (1.0,) * steps, 0.9, 0.9)
            out.append_epoch("x", record)
    out.close()
    return folder


def test_variance_split_recovers_known_components(tmp_path):
    sd_round, sd_epoch, sd_step, steps = 0.05, 0.03, 0.002, 40
    run = load_run(nested_run(tmp_path / "n", 40, 6, steps, sd_round, sd_epoch, sd_step))
    split = noise.variance_split(run, "x")
    assert split.step_var == pytest.approx(steps * sd_step**2, rel=0.1)
    assert split.epoch_var == pytest.approx(sd_epoch**2, rel=0.35)
    assert split.round_var == pytest.approx(sd_round**2, rel=0.45)
    assert split.rounds == 40 and split.epochs == 240 and split.steps_per_epoch == steps


def test_suggested_repeats_reach_the_target_at_least_cost():
    n, r = noise.suggest(1.0, 0.0, 0.01, 1.0, 1.0)
    assert n == 1
    assert noise.half_width(1.0, 0.01 / r, r - 1) <= noise.TARGET < noise.half_width(1.0, 0.01 / (r - 1), r - 2)
    n, r = noise.suggest(1.0, 0.0004, 0.0025, 20.0, 0.5)
    assert r == math.ceil(math.sqrt(20.0 * 0.0025 / (0.5 * 0.0004)))
    assert noise.half_width(1.0, (0.0004 + 0.0025 / r) / n, n - 1) <= noise.TARGET
    assert noise.half_width(1.0, (0.0004 + 0.0025 / r) / (n - 1), n - 2) > noise.TARGET


def test_report_has_the_noise_section(drifting):
    html = report.write_report(drifting).read_text()
    assert 'id="noise"' in html and 'id="noise-diagnosis"' in html and 'id="noise-recommendation"' in html
    assert "The calibration sgemm ran at a 30% lower rate in epochs 7–12" in html
    assert 'aria-label="epoch walls, calibration probe and machine state per pass"' in html
    assert "Where the variance of an epoch comes from" in html and "between rounds" in html
    assert '<details id="noisy-list">' in html
    summary = json.loads((drifting / "summary.json").read_text())
    assert summary["noise"]["kind"] == "calibration" and summary["noise"]["stretch"][0] == [0, 7]
    assert set(summary["noise"]["variance"]) == {"idiomatic", "store"}


def test_report_of_an_old_folder(tmp_path):
    html = report.write_report(make_run(tmp_path / "r", epochs=3)).read_text()
    assert "The machine state was not recorded for this run" in html
    assert "calibration probe and machine state per pass" not in html


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise-run") / "r"
    args = ["run", "--impls", "store", "--subset", "0.02", "--epochs", "2", "--warmup", "1", "--threads", "1"]
    assert main([*args, "--no-roofline", "--quiet", "--out", str(out), *data_args()]) == 0
    return out


def test_real_run_records_machine_state_and_calibration(real_run):
    machine_rows = pd.read_csv(real_run / "machine.csv")
    calibration = pd.read_csv(real_run / "calibration.csv")
    epochs = pd.read_csv(real_run / "epochs.csv")
    keys = ["impl", "round", "epoch"]
    assert machine_rows[keys].values.tolist() == epochs[keys].values.tolist()
    assert calibration[["round", "epoch"]].values.tolist() == [[0, 0], [0, 1], [0, 2]]
    assert (calibration["sgemm_gflops"] > 0).all() and (calibration["threads"] == 1).all()
    assert (machine_rows["seconds"] > 0).all()
    assert json.loads((real_run / "summary.json").read_text())["noise"]["sentence"]
