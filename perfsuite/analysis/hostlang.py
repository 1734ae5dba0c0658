"""The host language at equal design: Python (``store``), C++ (``native``) and Rust (``rust``) in one run.

The three share one design — the article's tensor store, batches by
``index_select`` + ``narrow``, momentum updated in place — and differ only in
the language of the loop that issues the same LibTorch calls. For each compiled
host and every quantity (the epoch, each phase, ``other``) the epochs are
paired with ``store``'s by (round, epoch), as ``perfsuite ab`` pairs its sides
(:func:`perfsuite.analysis.ab.paired_row`): a row is the median of the per-pair
ratios host/store with its bootstrap interval. When ``idiomatic`` ran too, the
article's own comparison (the idiomatic loop against the Rust one) is paired
the same way, and the share of that speedup the host language explains is
``log(store/rust) / log(idiomatic/rust)`` (a log scale, so the host
language's and the design's shares add up).
"""

import math
from dataclasses import asdict, dataclass, field

from perfsuite.analysis.ab import Pair, paired_row
from perfsuite.analysis.compare import QUANTITIES
from perfsuite.results.reader import Run

REFERENCE = "store"
HOSTS = {"native": "C++", "rust": "Rust"}
"""The compiled host loops, by implementation name, with their language."""
ARTICLE = "idiomatic"
ARTICLE_SPEEDUP = 5.5
"""The article's claim: its Rust loop trained 5.5× faster than its Python one."""


@dataclass(frozen=True)
class HostRow:
    """One quantity of one host loop: the median of paired ratios host/store, its interval, the pairs."""

    impl: str
    language: str
    quantity: str
    ratio: float
    low: float
    high: float
    pairs: int


@dataclass
class HostLanguage:
    """The host-language rows of a run, the article's comparison when measured, and the sentence."""

    rows: list
    article: dict = field(default_factory=dict)
    sentence: str = ""

    def row(self, impl: str, quantity: str = "epoch"):
        """The row of ``impl`` and ``quantity``, or ``None``."""
        return next((r for r in self.rows if r.impl == impl and r.quantity == quantity), None)

    def to_dict(self) -> dict:
        """Rows, the article's comparison and the sentence, as written under ``host_language`` in summary.json."""
        return {
            "reference": REFERENCE,
            "rows": [asdict(r) for r in self.rows],
            "article": self.article,
            "sentence": self.sentence,
        }


def _ratio(run: Run, base: str, new: str, quantity: str, label: str) -> HostRow:
    row = paired_row(run, Pair(new, base, new), quantity)
    return HostRow(new, label, quantity, row.ratio, row.low, row.high, row.n_base)


def _article(run: Run) -> dict:
    """The idiomatic loop against the Rust one (speedup idiomatic/rust, paired) and the host language's share."""
    if not {ARTICLE, "rust", REFERENCE} <= set(run.measured_impls):
        return {}
    rust = _ratio(run, ARTICLE, "rust", "epoch", "Rust")
    host = _ratio(run, REFERENCE, "rust", "epoch", "Rust")
    if not rust.pairs or not host.pairs:
        return {}
    speedup = 1.0 / rust.ratio
    explained = math.log(1.0 / host.ratio) / math.log(speedup) if speedup > 1 else math.nan
    return {
        "speedup": speedup,
        "low": 1.0 / rust.high,
        "high": 1.0 / rust.low,
        "pairs": rust.pairs,
        "claimed": ARTICLE_SPEEDUP,
        "host_share": explained,
    }


def _times(ratio: float) -> str:
    return f"{ratio:.3f}×"


def sentence(result: HostLanguage) -> str:
    """What the run says about the article's claim, in words."""
    parts = []
    for impl in ("rust", "native"):
        row = result.row(impl)
        if row and row.pairs:
            parts.append(f"{_times(row.ratio)} [{row.low:.3f}–{row.high:.3f}] with a {row.language} host loop")
    if not parts:
        return ""
    text = f"At equal design the epoch takes {' and '.join(parts)} of Python's time (store, paired by epoch)."
    article = result.article
    if not article:
        return text
    text += (
        f" Against the idiomatic PyTorch loop — the article's comparison — the Rust loop is "
        f"{article['speedup']:.1f}× faster here [{article['low']:.1f}–{article['high']:.1f}] "
        f"(the article: {ARTICLE_SPEEDUP:g}×); "
    )
    share = article["host_share"]
    if not math.isfinite(share):
        return text + "the Rust loop is not faster than the idiomatic one, so there is no speedup to explain."
    if share <= 0:
        return text + (
            "the host language explains none of it (Rust is no faster than Python at equal design): "
            "the design explains all of it."
        )
    return text + (
        f"the host language explains {share:.0%} of that speedup (log scale) and the design "
        f"(index_select + narrow batches instead of a DataLoader, a tensor store) the other {1 - share:.0%}."
    )


def host_language(run: Run) -> HostLanguage | None:
    """The host-language comparison of a run, or ``None`` unless store and native or rust were measured."""
    measured = set(run.measured_impls)
    hosts = [h for h in HOSTS if h in measured]
    if REFERENCE not in measured or not hosts:
        return None
    rows = [_ratio(run, REFERENCE, h, q, HOSTS[h]) for h in hosts for q in QUANTITIES]
    result = HostLanguage(rows, _article(run))
    result.sentence = sentence(result)
    return result
