"""Workloads as a registry: what is trained, by name (``--workload NAME``).

A workload definition says what a run trains: its initial parameters (drawn
once from the seed, so every implementation starts from the same numbers and
``perfsuite check`` can compare them step by step), the share of the training
split it uses when ``--subset`` is not given, the implementation ``check``
compares the others with, and its arithmetic per sample for the roofline.
The configuration that goes with it (batch size, width, learning rate,
momentum, loss, epochs, seed, threads) stays in
:class:`~perfsuite.core.workload.Workload`, whose ``name`` field says which
definition it trains.

Built in:

``mnist-mlp`` (the default)
    the article's MLP, Linear(784→h) → ReLU → Linear(h→10), on the whole training split.
``mnist-cnn``
    the PyTorch examples' MNIST convnet: conv 1→32 3×3 → ReLU → conv 32→64 3×3 → ReLU →
    max-pool 2 → flatten 9216 → Linear(9216→h) → ReLU → Linear(h→10), h = ``--hidden``
    (128, as in the example); dropout is left out, so training is deterministic. About
    72 MFLOP per sample per training step (~100× the MLP's), so it uses 0.1 of the training
    split unless ``--subset`` says otherwise.

A third-party workload is a :class:`WorkloadDefinition` subclass registered in the
``perfsuite.workloads`` entry-point group, or named as ``package.module:Class`` or
``path/to/file.py:Class``. Implementations say which workloads they train with a
``workloads`` class attribute (default: ``("mnist-mlp",)``); see
:func:`perfsuite.core.interface.support_problem`.
"""

import math
from importlib.metadata import entry_points

import torch

from perfsuite.core import registry
from perfsuite.core.errors import UsageError
from perfsuite.core.workload import CLASSES, DEFAULT_WORKLOAD, INPUTS, Workload, _generator, initial_parameters

GROUP = "perfsuite.workloads"
DEFAULT = DEFAULT_WORKLOAD
UPDATE_FLOPS_PER_PARAMETER = 5
"""v = βv + (1−β)g is 3 flops, p −= lr·v is 2 flops, per parameter per step."""

IMAGE = (1, 28, 28)
"""Channels, height, width of one MNIST image (the preprocessed 784 values, reshaped)."""


class WorkloadDefinition:
    """What one workload trains. Subclass it to register a workload of your own.

    ``initial_parameters`` is the one method a definition must have. The flop
    methods are optional: without them a run has no roofline (the report says
    why) but everything else works.
    """

    name: str = ""
    description: str = ""
    default_subset: float = 1.0
    """Share of the training split used when ``--subset`` is not given."""
    reference: str = "store"
    """The implementation ``perfsuite check`` compares the others with."""
    formula: str = ""
    """How the flops of one epoch are counted, in one line (shown in the report)."""

    def initial_parameters(self, workload: Workload) -> dict:
        """Every trained parameter by name, drawn from ``workload.seed`` (fresh tensors: callers mutate them)."""
        raise NotImplementedError

    def sample_flops(self, hidden: int) -> dict | None:
        """``{"forward": …, "backward": …}`` flops of one sample in a training step, or ``None`` (not counted)."""
        return None

    def parameter_count(self, hidden: int) -> int | None:
        """Number of trained parameters (the update costs 5 flops per parameter per step)."""
        return None

    def gemms(self, batch: int, hidden: int) -> list:
        """The products of one training step as ``(name, m, k, n, transposed_a)`` (roofline probe shapes).

        A convolution adds a sixth item, ``(batch, c_in, c_out, side_in, kind)`` with ``kind`` one of
        ``forward``, ``weight``, ``input``: the probe then times the convolution pass itself, and
        ``m x k x n`` is its im2col product (which gives its flops).
        """
        return []

    def test_samples(self, workload: Workload, available: int) -> int:
        """How many test samples the per-epoch test accuracy is computed on (default: all of them)."""
        return available


def epoch_flops(definition: WorkloadDefinition, samples: int, hidden: int, batch_size: int) -> dict | None:
    """Flops of one epoch over ``samples`` samples: forward + backward per sample, plus the update per step."""
    per_sample = definition.sample_flops(hidden)
    count = definition.parameter_count(hidden)
    if per_sample is None or count is None:
        return None
    steps = math.ceil(samples / batch_size)
    forward = samples * per_sample["forward"]
    backward = samples * per_sample["backward"]
    update = UPDATE_FLOPS_PER_PARAMETER * count * steps
    return {
        "forward": forward,
        "backward": backward,
        "update": update,
        "total": forward + backward + update,
        "steps": steps,
        "samples": samples,
    }


class MnistMlp(WorkloadDefinition):
    """The article's MLP (DESIGN.md): Linear(784→h) → ReLU → Linear(h→10)."""

    name = "mnist-mlp"
    description = "the article's MLP: Linear(784→h) → ReLU → Linear(h→10), h = --hidden (128)"
    default_subset = 1.0
    formula = "forward 2N(784h+10h) + backward 2N(784h+10h) + 2N·10h + update 5·P·steps"

    def initial_parameters(self, workload):
        return initial_parameters(workload)

    def sample_flops(self, hidden):
        layers = INPUTS * hidden + hidden * CLASSES
        return {"forward": 2 * layers, "backward": 2 * layers + 2 * hidden * CLASSES}

    def parameter_count(self, hidden):
        return INPUTS * hidden + hidden + hidden * CLASSES + CLASSES

    def gemms(self, batch, hidden):
        return [
            ("forward x·W1", batch, INPUTS, hidden, False),
            ("forward a·W2", batch, hidden, CLASSES, False),
            ("backward xᵀ·dh", INPUTS, batch, hidden, True),
            ("backward aᵀ·g", hidden, batch, CLASSES, True),
            ("backward g·W2ᵀ", batch, CLASSES, hidden, False),
        ]


CONV1 = (1, 32, 26)
"""Input channels, output channels and output side of the first 3×3 convolution (28 → 26)."""
CONV2 = (32, 64, 24)
"""The same for the second (26 → 24); max-pool 2 then gives 64 × 12 × 12."""
FLAT = 64 * 12 * 12
"""Features after max-pool and flatten: 9216."""
KERNEL = 3 * 3


class MnistCnn(WorkloadDefinition):
    """The PyTorch examples' MNIST convnet, without dropout (deterministic).

    Parameters (``nn.Conv2d``/``nn.Linear`` layout): ``conv1_w`` 32×1×3×3,
    ``conv1_b`` 32, ``conv2_w`` 64×32×3×3, ``conv2_b`` 64, ``fc1_w`` h×9216,
    ``fc1_b`` h, ``fc2_w`` 10×h, ``fc2_b`` 10, each uniform in ±1/sqrt(fan_in)
    (PyTorch's default init distribution), drawn once from the seed.

    Flops per sample (a multiply-add is 2), convolutions counted as their
    im2col products, ReLU, max-pool, biases and the loss not counted::

        conv1 = 2·26²·32·9      =    389,376      conv2 = 2·24²·64·288 = 21,233,664
        fc1   = 2·9216·h        =  2,359,296      fc2   = 2·h·10       =      2,560   (h = 128)
        forward  = conv1 + conv2 + fc1 + fc2                           = 23,984,896
        backward = weight gradients (= forward) + input gradients of
                   conv2, fc1, fc2 (conv1's input needs none)          = 47,580,416

    71.6 MFLOP per sample, plus 5 flops per parameter per step for the
    update. ``torch.utils.flop_counter.FlopCounterMode`` counts the same
    total for one step (tests/test_workloads.py).
    """

    name = "mnist-cnn"
    description = (
        "PyTorch examples' MNIST convnet: conv 1→32 3×3, ReLU, conv 32→64 3×3, ReLU, max-pool 2, "
        "9216→h→10 (no dropout); 0.1 of the training split by default"
    )
    default_subset = 0.1
    formula = (
        "forward N(2·26²·32·9 + 2·24²·64·288 + 2·9216h + 2·10h) + backward 2× forward − N·2·26²·32·9 "
        "(no input gradient of conv1) + update 5·P·steps"
    )

    def initial_parameters(self, workload):
        g = _generator(workload.seed, 0)

        def uniform(shape, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            return torch.rand(shape, generator=g).mul_(2 * bound).sub_(bound)

        h = workload.hidden
        c_in1, c1, _ = CONV1
        c_in2, c2, _ = CONV2
        return {
            "conv1_w": uniform((c1, c_in1, 3, 3), c_in1 * KERNEL),
            "conv1_b": uniform((c1,), c_in1 * KERNEL),
            "conv2_w": uniform((c2, c_in2, 3, 3), c_in2 * KERNEL),
            "conv2_b": uniform((c2,), c_in2 * KERNEL),
            "fc1_w": uniform((h, FLAT), FLAT),
            "fc1_b": uniform((h,), FLAT),
            "fc2_w": uniform((CLASSES, h), h),
            "fc2_b": uniform((CLASSES,), h),
        }

    @staticmethod
    def _layers(hidden):
        c_in1, c1, s1 = CONV1
        c_in2, c2, s2 = CONV2
        conv1 = 2 * s1 * s1 * c1 * c_in1 * KERNEL
        conv2 = 2 * s2 * s2 * c2 * c_in2 * KERNEL
        return conv1, conv2, 2 * FLAT * hidden, 2 * hidden * CLASSES

    def sample_flops(self, hidden):
        conv1, conv2, fc1, fc2 = self._layers(hidden)
        forward = conv1 + conv2 + fc1 + fc2
        return {"forward": forward, "backward": forward + conv2 + fc1 + fc2}

    def parameter_count(self, hidden):
        c_in1, c1, _ = CONV1
        c_in2, c2, _ = CONV2
        return (
            (c1 * c_in1 * KERNEL + c1)
            + (c2 * c_in2 * KERNEL + c2)
            + (FLAT * hidden + hidden)
            + (hidden * CLASSES + CLASSES)
        )

    def gemms(self, batch, hidden):
        c_in1, c1, s1 = CONV1
        c_in2, c2, s2 = CONV2
        rows1, rows2 = batch * s1 * s1, batch * s2 * s2
        k1, k2 = c_in1 * KERNEL, c_in2 * KERNEL

        def conv(c_in, c_out, side_out, kind):
            return (batch, c_in, c_out, side_out + 2, kind)

        return [
            ("forward conv1", rows1, k1, c1, False, conv(c_in1, c1, s1, "forward")),
            ("forward conv2", rows2, k2, c2, False, conv(c_in2, c2, s2, "forward")),
            ("forward x·W1", batch, FLAT, hidden, False),
            ("forward a·W2", batch, hidden, CLASSES, False),
            ("backward conv1 weight", k1, rows1, c1, True, conv(c_in1, c1, s1, "weight")),
            ("backward conv2 weight", k2, rows2, c2, True, conv(c_in2, c2, s2, "weight")),
            ("backward conv2 input", rows2, c2, k2, False, conv(c_in2, c2, s2, "input")),
            ("backward xᵀ·dh", FLAT, batch, hidden, True),
            ("backward dh·W1ᵀ", batch, hidden, FLAT, False),
            ("backward aᵀ·g", hidden, batch, CLASSES, True),
            ("backward g·W2ᵀ", batch, CLASSES, hidden, False),
        ]

    def test_samples(self, workload, available):
        """The test split scaled by the subset (at least 1,000): a CNN forward of all 10,000 takes ~10 s here."""
        return min(available, max(1000, round(workload.subset * available)))


BUILTIN = {"mnist-mlp": MnistMlp, "mnist-cnn": MnistCnn}


def registered() -> dict:
    """Every workload by name: the built-in ones, then the ``perfsuite.workloads`` entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def names() -> list:
    """The registered workload names: the built-in ones (the default first), then the others sorted."""
    return list(BUILTIN) + sorted(set(registered()) - set(BUILTIN))


def _problems(cls) -> list:
    if not isinstance(cls, type):
        return [f"{cls!r} is not a class"]
    method = getattr(cls, "initial_parameters", None)
    if not callable(method) or method is WorkloadDefinition.initial_parameters:
        return ["missing method initial_parameters"]
    return []


def load(spec: str) -> WorkloadDefinition:
    """The definition ``spec`` names: a registered name, ``module:Class`` or ``file.py:Class`` (an instance)."""
    spec = (spec or DEFAULT).strip()
    if ":" not in spec:
        known = registered()
        if spec not in known:
            raise UsageError(
                f"--workload {spec}: unknown workload (known: {', '.join(names())}; "
                "or give module:Class or file.py:Class)"
            )
        cls = known[spec]
        if not isinstance(cls, type):
            try:
                cls = cls.load()
            except Exception as exc:
                raise UsageError(
                    f"--workload {spec}: its entry point failed to load: {type(exc).__name__}: {exc}"
                ) from exc
    else:
        cls = registry.load_object(spec, "--workload")
    problems = _problems(cls)
    if problems:
        raise UsageError(f"--workload {spec}: not a perfsuite workload ({'; '.join(problems)})")
    definition = cls()
    if ":" not in spec:
        definition.name = spec  # the registered name is the one implementations declare
    elif not getattr(definition, "name", ""):
        definition.name = cls.__name__
    return definition


def canonical(spec: str) -> str:
    """The name a run records: the registered name when ``spec`` names a registered class, else ``spec``."""
    spec = (spec or DEFAULT).strip()
    if ":" in spec:
        cls = type(load(spec))
        if BUILTIN.get(cls.name) is cls:
            return cls.name
    return spec


def of(workload: Workload) -> WorkloadDefinition:
    """The definition ``workload`` trains (its ``name``)."""
    return load(workload.name)


def resolve_impls(specs, workload: Workload, explicit: bool) -> list:
    """The implementations ``specs`` name, to train ``workload``.

    One that does not train it is marked unavailable (with the reason) when the list
    is the default one, and is a one-line usage error when it was named (``explicit``).
    """
    impls = registry.resolve(specs, of(workload).name)
    if explicit:
        registry.require_workload(impls)
    return impls
