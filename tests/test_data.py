"""The IDX reader and data resolution: every kind of bad file gets a precise one-line error."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from perfsuite.core import data
from perfsuite.core.errors import DataError, UsageError

SIZES = {"train": 6, "test": 4}


def write_valid(root: Path) -> Path:
    """A small, valid MNIST-layout root (6 training and 4 test images)."""
    folder = data.raw_dir(root)
    folder.mkdir(parents=True)
    for split, n in SIZES.items():
        images = torch.arange(n * 784, dtype=torch.int64).remainder(256).reshape(n, 28, 28).to(torch.uint8)
        data._write_idx(folder / data.FILES[f"{split}_images"], data.IMAGE_MAGIC, images)
        data._write_idx(folder / data.FILES[f"{split}_labels"], data.LABEL_MAGIC, torch.arange(n) % 10)
    return folder


def corruptions():
    """(file key, description, how to corrupt the bytes, expected message fragment)."""
    out = []
    for key in data.FILES:
        image = key.endswith("images")
        header = 16 if image else 8
        out += [
            (key, "missing", None, "file not found"),
            (key, "empty", lambda b: b"", "file is empty"),
            (key, "short header", lambda b: b[:6], "truncated header"),
            (key, "wrong magic", lambda b: b"\x00\x00\x08\x02" + b[4:], "wrong magic number"),
            (key, "truncated body", lambda b: b[:-5], "truncated"),
            (key, "extra bytes", lambda b: b + b"\x00\x00", "unexpected bytes"),
            (key, "wrong count", (lambda b, h=header: b[:4] + (99).to_bytes(4, "big") + b[8:]), "truncated"),
        ]
        if image:
            out.append(
                (
                    key,
                    "wrong dimensions",
                    lambda b: b[:8] + (30).to_bytes(4, "big") + b[12:16] + b[16:],
                    "wrong dimensions 30x28",
                )
            )
        else:
            out.append((key, "label out of range", lambda b: b[:8] + b"\x0c" + b[9:], "outside 0-9"))
    return out


@pytest.mark.parametrize("key,what,corrupt,message", corruptions(), ids=[f"{c[0]}-{c[1]}" for c in corruptions()])
def test_each_corruption_is_rejected_naming_the_file(tmp_path, key, what, corrupt, message):
    folder = write_valid(tmp_path)
    path = folder / data.FILES[key]
    if corrupt is None:
        path.unlink()
    else:
        path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError) as info:
        data.resolve("mnist", tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_image_and_label_counts_must_agree(tmp_path):
    folder = write_valid(tmp_path)
    data._write_idx(folder / data.FILES["train_labels"], data.LABEL_MAGIC, torch.zeros(5, dtype=torch.long))
    with pytest.raises(DataError, match="has 5 labels but train-images-idx3-ubyte has 6 images"):
        data.resolve("mnist", tmp_path)


def test_valid_files_round_trip(tmp_path):
    write_valid(tmp_path)
    info = data.resolve("auto", tmp_path)
    assert (info.kind, info.n_train, info.n_test) == ("mnist", 6, 4)
    train, test = data.load(info)
    assert train.images.dtype == torch.uint8 and train.images.shape == (6, 28, 28)
    assert train.labels.dtype == torch.int64 and test.labels.tolist() == [0, 1, 2, 3]


def test_missing_root_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(UsageError, match="data root does not exist"):
        data.resolve("auto", tmp_path / "nowhere")


def test_auto_without_mnist_falls_back_to_labelled_synthetic(tmp_path):
    info = data.resolve("auto", tmp_path)
    assert info.synthetic and "SYNTHETIC" in info.label and "SYNTHETIC" in info.note
    train, test = data.load(info)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == torch.uint8 and set(train.labels.unique().tolist()) == set(range(10))


def test_synthetic_is_deterministic_and_learnable():
    a = data.load(data.synthetic_dataset())[0]
    x = data.preprocess(a.images[:2000]).double()
    y = a.labels[:2000]
    centroids = torch.stack([x[y == c].mean(0) for c in range(10)])
    nearest = torch.cdist(x, centroids).argmin(1)
    assert (nearest == y).double().mean() > 0.9
    assert torch.equal(data.load(data.synthetic_dataset())[0].images[:10], a.images[:10])


def test_mnist_mode_without_data_is_an_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        data.resolve("mnist", tmp_path)


def test_unknown_dataset_mode():
    with pytest.raises(UsageError, match="--dataset"):
        data.resolve("cifar", None)


def test_preprocess_matches_torchvision_transforms(splits):
    from PIL import Image
    from torchvision import transforms

    train, _ = splits
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((data.MEAN,), (data.STD,))])
    expected = torch.stack([transform(Image.fromarray(img.numpy(), mode="L")) for img in train.images[:16]])
    assert torch.equal(data.preprocess(train.images[:16]), expected.reshape(16, -1))


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path):
    folder = write_valid(tmp_path)
    (folder / data.FILES["test_labels"]).write_bytes(b"\x00\x00\x08\x01\x00")
    proc = subprocess.run(
        [sys.executable, "-m", "perfsuite", "data", "check", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "t10k-labels-idx1-ubyte: truncated header" in proc.stderr
