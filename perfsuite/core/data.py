"""MNIST in torchvision's layout: locate, validate, read, or synthesise.

The IDX files live under ``<root>/MNIST/raw/`` exactly as torchvision keeps
them, so the ``idiomatic`` implementation can hand the same root to
``torchvision.datasets.MNIST``. Every file is checked (magic number,
dimensions, counts, size, label range) before any worker starts, and a bad
file is reported as one line naming it.

Without MNIST, ``auto`` falls back to a deterministic, learnable,
MNIST-shaped synthetic set written in the same layout under the cache folder
and labelled as synthetic wherever results appear.
"""

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from perfsuite.core.errors import DataError, RunFailure, UsageError

MEAN = 0.1307
STD = 0.3081
ROWS = COLS = 28
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
DATASET_MODES = ("auto", "mnist", "synthetic")
SYNTHETIC_LABEL = "SYNTHETIC MNIST-shaped data (not MNIST)"
SYNTHETIC_VERSION = 1
SYNTHETIC_SIZES = {"train": 60000, "test": 10000}


@dataclass(frozen=True)
class DatasetInfo:
    """Which data a run uses: a torchvision-layout root and what it holds."""

    kind: str
    root: str
    n_train: int
    n_test: int
    note: str = ""

    @property
    def synthetic(self) -> bool:
        return self.kind == "synthetic"

    @property
    def label(self) -> str:
        """How reports name the data: MNIST, or a loud synthetic label."""
        return SYNTHETIC_LABEL if self.synthetic else "MNIST"

    def to_dict(self) -> dict:
        return {**asdict(self), "synthetic": self.synthetic, "label": self.label}


@dataclass(frozen=True)
class Split:
    """One split as tensors: uint8 images (N x 28 x 28) and int64 labels (N)."""

    images: torch.Tensor
    labels: torch.Tensor


def raw_dir(root) -> Path:
    """The folder torchvision reads MNIST's raw files from."""
    return Path(root) / "MNIST" / "raw"


def default_root() -> tuple[str, bool]:
    """The data root and whether the user chose it (``PERFSUITE_DATA``) or it is the default."""
    env = os.environ.get("PERFSUITE_DATA")
    return (env, True) if env else ("./data", False)


def cache_dir() -> Path:
    """Where perfsuite keeps generated data and build caches (``PERFSUITE_CACHE``)."""
    env = os.environ.get("PERFSUITE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "perfsuite"


def _header(path: Path, data: bytes, magic: int, ndim: int) -> list:
    what = "image" if magic == IMAGE_MAGIC else "label"
    need = 4 + 4 * ndim
    if not data:
        raise DataError(path, "file is empty")
    if len(data) < need:
        raise DataError(path, f"truncated header ({len(data)} bytes, an IDX {what} file needs {need})")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(path, f"wrong magic number 0x{found:08X} (an IDX {what} file starts 0x{magic:08X})")
    return [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]


def _check_size(path: Path, data: bytes, offset: int, count: int, item: int, what: str) -> None:
    expected = offset + count * item
    if len(data) < expected:
        raise DataError(
            path, f"truncated: header says {count} {what} ({expected} bytes) but the file has {len(data)} bytes"
        )
    if len(data) > expected:
        raise DataError(path, f"{len(data) - expected} unexpected bytes after {count} {what}")


def read_images(path) -> torch.Tensor:
    """Read and validate an IDX image file: uint8 tensor N x 28 x 28."""
    path = Path(path)
    data = _read(path)
    count, rows, cols = _header(path, data, IMAGE_MAGIC, 3)
    if (rows, cols) != (ROWS, COLS):
        raise DataError(path, f"wrong dimensions {rows}x{cols} (MNIST images are {ROWS}x{COLS})")
    if count == 0:
        raise DataError(path, "holds no images")
    _check_size(path, data, 16, count, rows * cols, "images")
    array = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)
    return torch.from_numpy(array.copy())


def read_labels(path) -> torch.Tensor:
    """Read and validate an IDX label file: int64 tensor N with values 0-9."""
    path = Path(path)
    data = _read(path)
    (count,) = _header(path, data, LABEL_MAGIC, 1)
    if count == 0:
        raise DataError(path, "holds no labels")
    _check_size(path, data, 8, count, 1, "labels")
    array = np.frombuffer(data, dtype=np.uint8, offset=8)
    bad = np.flatnonzero(array > 9)
    if bad.size:
        raise DataError(path, f"label {array[bad[0]]} at index {bad[0]} is outside 0-9")
    return torch.from_numpy(array.astype(np.int64))


def _read(path: Path) -> bytes:
    if not path.exists():
        raise DataError(path, "file not found (MNIST is expected in torchvision's layout: <root>/MNIST/raw/)")
    if not path.is_file():
        raise DataError(path, "is not a regular file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc.strerror}") from exc


def read_split(root, split: str) -> Split:
    """Read and cross-check one split (``train`` or ``test``) under ``root``."""
    folder = raw_dir(root)
    images = read_images(folder / FILES[f"{split}_images"])
    labels_path = folder / FILES[f"{split}_labels"]
    labels = read_labels(labels_path)
    if len(labels) != len(images):
        raise DataError(
            labels_path, f"has {len(labels)} labels but {FILES[f'{split}_images']} has {len(images)} images"
        )
    return Split(images, labels)


def has_any_mnist_file(root) -> bool:
    """Whether any of the four MNIST files exists under ``root``."""
    return any((raw_dir(root) / name).exists() for name in FILES.values())


def resolve(mode: str = "auto", data_dir=None) -> DatasetInfo:
    """Decide which data a run uses and validate it, before any worker starts.

    ``data_dir`` (or ``PERFSUITE_DATA``, or ``./data``) is a torchvision root.
    ``mnist`` requires valid MNIST there; ``synthetic`` always generates;
    ``auto`` uses MNIST when any of its files is there (and must then be
    valid) and otherwise falls back to the synthetic set, saying so.
    """
    if mode not in DATASET_MODES:
        raise UsageError(f"--dataset {mode}: must be one of {', '.join(DATASET_MODES)}")
    chosen = data_dir is not None
    root, from_env = (str(data_dir), True) if chosen else default_root()
    explicit = chosen or from_env
    if mode == "synthetic":
        return synthetic_dataset()
    if explicit and not Path(root).is_dir():
        raise DataError(root, "data root does not exist (give --data-dir the folder that holds MNIST/raw/)")
    if mode == "auto" and not has_any_mnist_file(root):
        note = f"no MNIST under {raw_dir(root)}; using {SYNTHETIC_LABEL}"
        return synthetic_dataset(note)
    train = read_split(root, "train")
    test = read_split(root, "test")
    return DatasetInfo("mnist", str(Path(root).resolve()), len(train.labels), len(test.labels))


def load(info: DatasetInfo) -> tuple[Split, Split]:
    """Read the train and test splits a :class:`DatasetInfo` names."""
    return read_split(info.root, "train"), read_split(info.root, "test")


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float32 N x 784: ``x/255`` normalised by MNIST's mean and std.

    The same element-wise operations, in the same order, as torchvision's
    ``ToTensor`` followed by ``Normalize((0.1307,), (0.3081,))``, so both
    paths give bit-identical inputs.
    """
    x = images.reshape(len(images), ROWS * COLS).to(torch.float32).div(255)
    return x.sub_(torch.tensor(MEAN)).div_(torch.tensor(STD))


def _synthetic_split(n: int, generator: torch.Generator, prototypes: torch.Tensor) -> Split:
    labels = torch.randint(0, 10, (n,), generator=generator)
    shifts = torch.randint(-2, 3, (n, 2), generator=generator)
    images = prototypes[labels]
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            images[rows] = torch.roll(images[rows], shifts=(dy, dx), dims=(1, 2))
    noise = torch.rand((n, ROWS, COLS), generator=generator) * 90
    pixels = (images * 200 + noise).clamp_(0, 255)
    return Split(pixels.to(torch.uint8), labels)


def _prototypes(generator: torch.Generator) -> torch.Tensor:
    coarse = (torch.rand((10, 1, 7, 7), generator=generator) > 0.55).float()
    fine = torch.nn.functional.interpolate(coarse, size=(20, 20), mode="bilinear", align_corners=False)
    canvas = torch.zeros((10, ROWS, COLS))
    canvas[:, 4:24, 4:24] = fine[:, 0]
    return canvas


def _write_idx(path: Path, magic: int, tensor: torch.Tensor) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in tensor.shape)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(header + tensor.to(torch.uint8).contiguous().numpy().tobytes())
    os.replace(tmp, path)


def synthetic_dataset(note: str = "") -> DatasetInfo:
    """Generate (once, cached) the synthetic MNIST-shaped set and describe it.

    Ten smooth class prototypes, each sample a prototype shifted by up to two
    pixels plus uniform noise: deterministic, learnable, and plainly not MNIST.
    """
    root = cache_dir() / f"synthetic-v{SYNTHETIC_VERSION}"
    folder = raw_dir(root)
    if not all((folder / name).exists() for name in FILES.values()):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            generator = torch.Generator().manual_seed(20231128)
            prototypes = _prototypes(generator)
            for split, n in SYNTHETIC_SIZES.items():
                data = _synthetic_split(n, generator, prototypes)
                _write_idx(folder / FILES[f"{split}_images"], IMAGE_MAGIC, data.images)
                _write_idx(folder / FILES[f"{split}_labels"], LABEL_MAGIC, data.labels)
        except OSError as exc:
            raise UsageError(
                f"{folder}: cannot write the synthetic data set ({exc.strerror}); "
                "set PERFSUITE_CACHE to a writable folder"
            ) from exc
    return DatasetInfo(
        "synthetic", str(root), SYNTHETIC_SIZES["train"], SYNTHETIC_SIZES["test"], note or f"using {SYNTHETIC_LABEL}"
    )


def download(root) -> DatasetInfo:
    """Fetch MNIST into ``root`` with torchvision's own downloader, then validate it."""
    from torchvision.datasets import MNIST  # only here: importing torchvision costs every run a second

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15)
    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = str(exc).strip().splitlines()
        raise RunFailure(
            f"download of MNIST into {root} failed: {reason[-1] if reason else type(exc).__name__}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return resolve("mnist", root)
