"""``tuned`` trains the same model as ``store``: per-step losses, accuracy and parameters agree."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from perfsuite.analysis.check import compare
from perfsuite.core.clock import monotonic
from perfsuite.core.data import preprocess
from perfsuite.core.interface import SetupContext, interface_problems
from perfsuite.core.phases import time_epoch
from perfsuite.core.workload import CLASSES, INPUTS, epoch_permutation, initial_parameters
from perfsuite.impls.store import Store
from perfsuite.impls.tuned import Tuned, huge_page_bytes, huge_page_zeros, training_rows
from perfsuite.measure.worker import accuracy
from perfsuite.results.record import EpochRecord


def _trained(cls, workload, dataset, splits, epochs=1):
    train, test = splits
    n = workload.train_size(len(train.labels))
    ctx = SetupContext(
        workload,
        dataset,
        train,
        test,
        n,
        initial_parameters(workload),
        lambda e: epoch_permutation(workload, n, e),
        monotonic,
    )
    impl = cls()
    impl.setup(ctx)
    losses = np.concatenate([time_epoch(impl, e).losses for e in range(epochs)])
    x = impl.x if hasattr(impl, "x") else None
    return impl, losses, x, train.labels[:n]


@pytest.mark.parametrize("loss,batch", [("ce", 128), ("ce", 100), ("mse", 64)])
def test_tuned_matches_store(loss, batch, small_workload, dataset, splits):
    torch.set_num_threads(1)
    wl = replace(small_workload, loss=loss, batch_size=batch)
    store, ref, x, y = _trained(Store, wl, dataset, splits, epochs=2)
    tuned, ours, _, _ = _trained(Tuned, wl, dataset, splits, epochs=2)
    record = EpochRecord(0, 0, False, 1.0, (), tuple(ours), train_accuracy=accuracy(tuned, x, y))
    reference = EpochRecord(0, 0, False, 1.0, (), tuple(ref), train_accuracy=accuracy(store, x, y))
    verdict = compare("tuned", record, reference)
    assert verdict.ok, verdict.problem
    assert verdict.max_rel_loss_diff < 1e-5
    with torch.no_grad():
        assert torch.allclose(tuned.predict(x[:256]), store.predict(x[:256]), rtol=1e-3, atol=1e-4)


def test_tuned_is_a_staged_implementation():
    assert interface_problems(Tuned) == []


def test_tuned_reuses_its_buffers(small_workload, dataset, splits):
    tuned, _, _, _ = _trained(Tuned, small_workload, dataset, splits)
    full = small_workload.batch_size
    first = [(len(x), x.data_ptr()) for x, _ in tuned.batches(0)]
    assert len({ptr for rows, ptr in first if rows == full}) == 1, "every full batch lands in the same buffer"
    state = [t.data_ptr() for t in tuned.params + tuned.velocity]
    x, y = next(iter(tuned.batches(1)))
    tuned.backward(tuned.loss(tuned.forward(x), y))
    tuned.step()
    assert [t.data_ptr() for t in tuned.params + tuned.velocity] == state
    assert tuned.params[0].data_ptr() == tuned.flat_params.data_ptr()


def test_training_rows_hold_pixels_the_bias_one_and_the_targets(dataset, splits):
    train, _ = splits
    images, labels = train.images[:50], train.labels[:50]
    data, _ = training_rows(images, labels, -0.25)
    assert data.shape == (50, INPUTS + 1 + CLASSES)
    assert torch.equal(data[:, :INPUTS], preprocess(images))
    assert torch.equal(data[:, INPUTS], torch.ones(50))
    targets = data[:, INPUTS + 1 :]
    assert torch.equal(targets.argmin(1), labels.to(torch.int64))
    assert torch.equal(targets.sum(1), torch.full((50,), -0.25))


def test_huge_page_zeros_is_a_zeroed_writable_tensor():
    data, huge = huge_page_zeros(300, 7)
    assert data.shape == (300, 7) and data.dtype == torch.float32 and not data.any()
    data[299, 6] = 2.0
    assert float(data.sum()) == 2.0
    assert isinstance(huge, bool)
    empty, _ = huge_page_zeros(0, 7)
    assert empty.shape == (0, 7)


def test_huge_page_bytes_reads_the_mapping_that_holds_the_tensor(tmp_path):
    tensor = torch.zeros(4)
    address = tensor.data_ptr()
    smaps = tmp_path / "smaps"
    smaps.write_text(
        f"{address - 4096:x}-{address - 1:x} rw-p 00000000 00:00 0\nAnonHugePages:      4096 kB\n"
        f"{address - 16:x}-{address + 4096:x} rw-p 00000000 00:00 0\nRss:   8 kB\nAnonHugePages:      2048 kB\n"
    )
    assert huge_page_bytes(tensor, str(smaps)) == 2048 * 1024
    assert huge_page_bytes(tensor, str(tmp_path / "missing")) is None


def test_huge_page_zeros_falls_back_to_plain_memory_when_the_kernel_refuses(monkeypatch):
    import mmap

    class Refusing:
        def __init__(self, *args, **kwargs):
            pass

        def madvise(self, advice):
            raise OSError(22, "Invalid argument")

        def close(self):
            pass

    monkeypatch.setattr(mmap, "MADV_HUGEPAGE", 14, raising=False)
    monkeypatch.setattr(mmap, "mmap", Refusing)
    data, huge = huge_page_zeros(4, 3)
    assert huge is False and data.shape == (4, 3) and not data.any()
