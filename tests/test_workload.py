"""The workload: validated options, shared initial parameters and permutations."""

import dataclasses
import math

import pytest
import torch

from perfsuite.core.errors import UsageError
from perfsuite.core.workload import Workload, epoch_permutation, initial_parameters


@pytest.mark.parametrize(
    "field,value,option",
    [
        ("batch_size", 0, "--batch-size"),
        ("lr", -0.1, "--lr"),
        ("lr", float("nan"), "--lr"),
        ("subset", 0.0, "--subset"),
        ("subset", 1.5, "--subset"),
        ("threads", 0, "--threads"),
        ("repeats", 0, "--repeats"),
        ("epochs", 0, "--epochs"),
        ("warmup", -1, "--warmup"),
        ("loss", "hinge", "--loss"),
        ("momentum", 1.0, "--momentum"),
        ("hidden", 0, "--hidden"),
    ],
)
def test_nonsense_values_name_their_option(field, value, option):
    with pytest.raises(UsageError) as info:
        Workload(**{field: value})
    assert str(info.value).startswith(option)


def test_defaults_are_the_articles():
    w = Workload()
    assert (w.batch_size, w.hidden, w.lr, w.momentum, w.loss) == (128, 128, 0.3, 0.9, "ce")
    assert w.steps(60000) == 469 and w.train_size(60000) == 60000
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.lr = 1.0


def test_initial_parameters_are_deterministic_and_linear_init_shaped():
    a, b = initial_parameters(Workload(seed=3)), initial_parameters(Workload(seed=3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["w1"].shape == (128, 784) and a["b2"].shape == (10,)
    assert a["w1"].abs().max() <= 1 / math.sqrt(784) and a["w2"].abs().max() <= 1 / math.sqrt(128)
    assert not torch.equal(a["w1"], initial_parameters(Workload(seed=4))["w1"])


def test_permutations_are_shared_and_differ_by_epoch():
    w = Workload()
    p0 = epoch_permutation(w, 1000, 0)
    assert torch.equal(p0, epoch_permutation(w, 1000, 0))
    assert not torch.equal(p0, epoch_permutation(w, 1000, 1))
    assert torch.equal(p0.sort().values, torch.arange(1000))
