"""Workloads as a registry: names, ``file.py:Class``, support per implementation, the CNN's flops, check and run."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from perfsuite.analysis import roofline
from perfsuite.cli.main import build_parser, main
from perfsuite.core import options, registry, workloads
from perfsuite.core.errors import UsageError
from perfsuite.core.workload import Workload, initial_parameters
from perfsuite.impls import cnn
from perfsuite.impls.compiled import Compiled
from perfsuite.impls.store import Memory, MyCnn
from perfsuite.measure import probes
from tests.test_run import data_args

FIXTURES = Path(__file__).parent / "fixtures" / "test_workloads.py"
TINY = "0.005"
"""300 training samples: three steps of the CNN (batches 128, 128, 44)."""


def test_builtin_workloads_and_their_defaults():
    assert workloads.names()[:2] == ["mnist-mlp", "mnist-cnn"]
    mlp, net = workloads.load("mnist-mlp"), workloads.load("mnist-cnn")
    assert (mlp.default_subset, net.default_subset) == (1.0, 0.1)
    assert Workload().name == "mnist-mlp"
    a, b = mlp.initial_parameters(Workload(seed=3)), initial_parameters(Workload(seed=3))
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_cnn_initial_parameters_are_deterministic_and_conv_shaped():
    net = workloads.load("mnist-cnn")
    a, b = net.initial_parameters(Workload(seed=1)), net.initial_parameters(Workload(seed=1))
    assert set(a) == set(cnn.ORDER) and all(torch.equal(a[k], b[k]) for k in a)
    assert a["conv1_w"].shape == (32, 1, 3, 3) and a["conv2_w"].shape == (64, 32, 3, 3)
    assert a["fc1_w"].shape == (128, 9216) and a["fc2_w"].shape == (10, 128)
    assert a["conv2_w"].abs().max() <= 1 / (32 * 9) ** 0.5
    assert not torch.equal(a["fc1_w"], net.initial_parameters(Workload(seed=2))["fc1_w"])
    assert sum(p.numel() for p in a.values()) == net.parameter_count(128)


def _args(*argv):
    return build_parser().parse_args(["run", *argv])


def test_workload_option_names_the_workload_and_its_default_subset():
    assert options.workload_from(_args()) == Workload(threads=options.workload_from(_args()).threads)
    cnn_run = options.workload_from(_args("--workload", "mnist-cnn"))
    assert (cnn_run.name, cnn_run.subset) == ("mnist-cnn", 0.1)
    assert options.workload_from(_args("--workload", "mnist-cnn", "--subset", "0.5")).subset == 0.5
    by_class = options.workload_from(_args("--workload", "perfsuite.core.workloads:MnistCnn"))
    assert by_class.name == "mnist-cnn"


def test_unknown_workload_is_one_line_and_exit_2(capsys):
    assert main(["run", "--workload", "mnist-rnn", "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "--workload mnist-rnn: unknown workload (known: mnist-mlp, mnist-cnn" in err
    with pytest.raises(UsageError, match="not a perfsuite workload"):
        workloads.load(f"{FIXTURES}:NotAWorkload")
    with pytest.raises(UsageError, match="^--workload nowhere.py:X: file nowhere.py does not exist"):
        workloads.load("nowhere.py:X")


def test_a_workload_registered_through_the_entry_point_group(monkeypatch):
    point = SimpleNamespace(name="half-mlp", load=lambda: workloads.load(f"{FIXTURES}:HalfMlp").__class__)
    monkeypatch.setattr(workloads, "entry_points", lambda group: [point] if group == workloads.GROUP else [])
    assert "half-mlp" in workloads.names()
    assert workloads.load("half-mlp").default_subset == 0.2


def test_support_is_declared_per_implementation():
    tuned, store = registry.resolve(["tuned", "store"], "mnist-cnn")
    assert tuned.unavailable_reason == "does not train workload mnist-cnn (it trains mnist-mlp)"
    assert store.unavailable_reason is None
    assert {"idiomatic", "store", "compiled"} <= {
        name for name in registry.builtin() if "mnist-cnn" in registry.load_class(name).workloads
    }
    assert all(s.unavailable_reason is None for s in registry.resolve(["store", "tuned"]))  # the MLP: unchanged


def test_an_unsupported_pair_named_explicitly_is_a_usage_error(capsys):
    assert main(["check", "--workload", "mnist-cnn", "--impls", "tuned", *data_args()]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "--impls tuned: does not train workload mnist-cnn (it trains mnist-mlp); perfsuite list "
        "shows which implementation trains which"
    )


def test_list_shows_the_matrix_and_why_a_pair_cannot_run(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "implementations × workloads" in out and "mnist-cnn" in out
    assert "does not train workload mnist-cnn" in out


def _step_flops(forward, params, x, y):
    counter = FlopCounterMode(display=False)
    with counter:
        F.nll_loss(forward(x).log_softmax(-1), y).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("hidden", [128, 32])
def test_cnn_flops_formula_matches_torch_flop_counter_on_one_step(hidden):
    definition = workloads.load("mnist-cnn")
    params = definition.initial_parameters(Workload(hidden=hidden))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    per_sample = definition.sample_flops(hidden)
    expected = 8 * (per_sample["forward"] + per_sample["backward"])
    net = cnn.Net(hidden)
    net.load_initial(params)
    assert _step_flops(net, params, x, y) == expected
    mem = Memory()
    store_net = MyCnn(mem, hidden, params)
    assert _step_flops(lambda b: store_net.forward(mem, b), params, x, y) == expected
    gemm_flops = sum(2 * m * k * n for _, m, k, n, *_ in definition.gemms(8, hidden))
    assert gemm_flops == expected
    if hidden == 128:
        assert per_sample["forward"] + per_sample["backward"] == 71_565_312


def test_the_roofline_probe_times_the_cnn_convolutions_themselves():
    shapes = roofline.workload_shapes(4, 16, 64, workloads.load("mnist-cnn"))
    convs = [s for s in shapes if s.conv]
    assert [s.name for s in convs] == [
        "forward conv1",
        "forward conv2",
        "backward conv1 weight",
        "backward conv2 weight",
        "backward conv2 input",
    ]
    record = probes.measure(threads=1, budget=0.05, shapes=convs)
    assert all(r["best_gflops"] >= r["median_gflops"] > 0 for r in record["shapes"])
    assert record["shapes"][1]["conv"] == [4, 32, 64, 26, "forward"]


def test_mlp_flops_formula_matches_torch_flop_counter_on_one_step():
    definition = workloads.load("mnist-mlp")
    p = initial_parameters(Workload())
    w1, w2 = p["w1"].t().clone().requires_grad_(), p["w2"].t().clone().requires_grad_()
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    per_sample = definition.sample_flops(128)
    counted = _step_flops(lambda b: (b @ w1 + p["b1"]).relu() @ w2 + p["b2"], p, x, y)
    assert counted == 16 * (per_sample["forward"] + per_sample["backward"])


@pytest.mark.slow
def test_check_mnist_cnn_passes_for_idiomatic_store_and_compiled(capsys):
    """Without --impls every registered one is tried: those that do not train the CNN are skipped with the reason."""
    assert main(["check", "--workload", "mnist-cnn", "--subset", TINY, *data_args()]) == 0
    captured = capsys.readouterr()
    assert "workload mnist-cnn" in captured.out
    trained = ["idiomatic"] + ([] if Compiled.unavailable_reason() else ["compiled"])
    rows = [line for line in captured.out.splitlines() if line.startswith("│ ")]
    for name in trained:
        assert any(row.split()[1] == name and "same" in row for row in rows), name
    assert "perfsuite: tuned skipped: does not train workload mnist-cnn (it trains mnist-mlp)" in captured.err
    assert "diverged" not in captured.err


@pytest.mark.slow
def test_run_mnist_cnn_reports_floor_multiples(tmp_path):
    out = tmp_path / "cnn"
    argv = ["run", "--workload", "mnist-cnn", "--impls", "idiomatic,store", "--subset", TINY]
    assert main([*argv, "--epochs", "1", "--warmup", "0", "--quiet", "--out", str(out), *data_args()]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["workload"]["name"], meta["workload"]["subset"]) == ("mnist-cnn", 0.005)
    assert meta["roofline"]["flops"]["samples"] == 300
    summary = json.loads((out / "summary.json").read_text())
    for name in ("idiomatic", "store"):
        assert math.isfinite(summary["implementations"][name]["roofline"]["floor_multiple"])
    page = (out / "index.html").read_text()
    assert 'id="workload-name">mnist-cnn' in page and "Distance to the compute floor" in page
    assert "Epoch flops of mnist-cnn" in page


@pytest.mark.slow
def test_a_workload_from_a_file_runs_with_the_implementations_that_train_it(tmp_path, capsys):
    out = tmp_path / "half"
    spec = f"{FIXTURES}:HalfMlp"
    argv = ["run", "--workload", spec, "--impls", f"{FIXTURES}:HalfStore", "--subset", "0.01", "--threads", "1"]
    assert main([*argv, "--epochs", "1", "--warmup", "0", "--quiet", "--out", str(out), *data_args()]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["workload"]["name"] == spec and "declares no flop count" in meta["roofline"]["error"]
    assert meta["implementations"]["half-store"]["status"] == "ok"
    assert main(["run", "--workload", spec, "--impls", "store", "--dataset", "synthetic"]) == 2
    assert "--impls store: does not train workload half-mlp" in capsys.readouterr().err
