"""The noise diagnosis: what the machine did during a run, what it did to the epochs, and what to do.

Inputs are a run's measured epochs (``epochs.csv``), per-step phase seconds
(``phases.csv``), the machine state around each epoch (``machine.csv``) and
the calibration probe before each pass (``calibration.csv``); the last two
are absent from older run folders, which get a sentence saying so.

**Passes.** A pass is one ``(round, epoch)``: one epoch of each
implementation, back to back. Per measured pass the diagnosis takes the
probe's sgemm rate, the mean steal share and the mean number of other
running processes over the pass's epochs.

**The rule**, first match wins:

0. *shared*: every measured pass had, on average over its epochs, at least
   :data:`BUSY` other running process, and the sgemm rate (without a probe,
   some implementation's epoch relative to its median) moved by more than
   :data:`DROP`: there is no quiet stretch to compare with, and the sentence
   gives the range of the probe's rate instead (other processes that slowed
   nothing are only mentioned in the steady sentence);
1. *calibration*: with at least :data:`MIN_PASSES` measured passes, the
   passes' log sgemm rates are split in two groups at the cut that
   minimises the within-group sum of squares (a one-dimensional two-means);
   when the lower group's median rate is more than :data:`DROP` below the
   upper group's, the lower group is the slow stretch;
2. *steal*: the passes whose steal share exceeds :data:`STEAL`;
3. *load*: the passes with, on average, at least :data:`BUSY` other running
   process, when some passes had none;
4. otherwise the machine was *steady*.

For a stretch, each implementation's slowdown is
``median(wall in the stretch) / median(wall elsewhere) − 1``; the sentence
gives the median over implementations (their range when it is wider than
five points). A stretch whose passes fall in more than :data:`MAX_SPANS`
spans of consecutive epochs is told as a count of its passes and the rounds
they are scattered over, not as a list of spans.

**Variance split** (per implementation, in epoch seconds², after Kalibera &
Jones). Levels: rounds (a worker process set up afresh), epochs within a
round, steps within an epoch (a fixed count ``n_s`` per epoch):

* ``σ_s²`` — pooled within-epoch variance of step times (sum of the five
  phases); ``S_steps² = n_s σ_s²`` is what independent steps would add to
  the variance of one epoch's time;
* ``T_e²`` — pooled within-round variance of epoch walls;
  ``S_epochs² = max(T_e² − S_steps², 0)``;
* ``T_r²`` — variance of the rounds' mean walls; ``S_rounds² = max(T_r² −
  T_e² / r̄, 0)`` with ``r̄`` the mean measured epochs per round (unknown with
  one round).

These are the biased-variance corrections ``S_i² = T_i² − T_{i−1}² / n_{i−1}``
of Kalibera & Jones. With ``n`` rounds of ``r`` epochs, the variance of the
mean epoch is ``V(n, r) = S_rounds² / n + T_e² / (n r)``. Given the cost of an
epoch ``c_e`` (its median wall) and of a new round ``c_r`` (worker start,
set-up, and the round's warm-up epochs), the cost ``n (c_r + r c_e)`` at a
fixed ``V`` is least at::

    r* = ceil( sqrt( c_r T_e² / (c_e S_rounds²) ) )

(Kalibera & Jones's optimal repetition count for the lower level), and ``n``
is then the least count ≥ 2 whose half-width
``t_{(1+γ)/2, n−1} · sqrt(V(n, r*))`` is at most the target (default ±3% of
the mean at γ = 95%). Without a between-round variance (one round, or zero
measured) the suggestion is one round of the least ``r`` with
``t_{(1+γ)/2, r−1} · sqrt(T_e² / r)`` within the target; with one round the
between-round variance is unmeasured, and the split says so.

Reference: T. Kalibera and R. Jones, "Rigorous Benchmarking in Reasonable
Time", ISMM 2013, https://doi.org/10.1145/2464157.2464160.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _stats

from perfsuite.core.interface import PHASES
from perfsuite.results.reader import PAIR_KEYS, Run, job_rows

DROP = 0.10
"""A calibration stretch counts when its median sgemm rate is this much below the rest."""
STEAL = 0.05
"""Steal share of all CPU time above which a pass counts as stolen from."""
BUSY = 1.0
"""Mean other running processes at or above which a pass counts as loaded."""
MIN_PASSES = 4
"""Measured passes needed to split the calibration rates into a slow stretch and the rest."""
MAX_SPANS = 4
"""Spans of consecutive passes beyond which a stretch is told as a count of scattered passes, not listed."""
NOISY = 0.10
"""Relative IQR of an implementation's epochs above which a steady machine's run is called noisy."""
TARGET = 0.03
"""Default target: half-width of the 95% interval of the mean epoch, relative to the mean."""
CONFIDENCE = 0.95
MAX_REPEATS = 100_000
"""Largest repetition count searched for."""


@dataclass(frozen=True)
class VarianceSplit:
    """Variance components of one implementation's epoch time and the repeats that reach the target."""

    impl: str
    rounds: int
    epochs: int
    steps_per_epoch: int
    mean: float
    round_var: float
    epoch_var: float
    step_var: float
    round_cost: float
    epoch_cost: float
    suggested_rounds: int
    suggested_epochs: int
    note: str = ""

    @property
    def shares(self) -> dict:
        """Each level's share of the variance of one epoch (rounds counted as 0 when unknown)."""
        parts = {"rounds": _zero_nan(self.round_var), "epochs": self.epoch_var, "steps": self.step_var}
        total = sum(parts.values())
        return {k: (v / total if total > 0 else math.nan) for k, v in parts.items()}

    @property
    def suggested_seconds(self) -> float:
        """Estimated cost of the suggested design: rounds × (set-up + epochs × epoch cost)."""
        return self.suggested_rounds * (self.round_cost + self.suggested_epochs * self.epoch_cost)

    def to_dict(self) -> dict:
        return {
            **{k: _num(v) for k, v in self.__dict__.items()},
            "shares": {k: _num(v) for k, v in self.shares.items()},
            "suggested_seconds": _num(self.suggested_seconds),
        }


@dataclass
class Diagnosis:
    """One sentence of what happened, one recommendation, and the evidence behind them."""

    kind: str
    sentence: str
    recommendation: str
    stretch: list = field(default_factory=list)
    slowdown: dict = field(default_factory=dict)
    calibration_spread: float = math.nan
    max_steal: float = math.nan
    splits: dict = field(default_factory=dict)
    target: float = TARGET

    @property
    def recorded(self) -> bool:
        """Whether there is recorded machine state or calibration to show beside measured epochs."""
        return self.kind not in ("unrecorded", "unmeasured")

    def to_dict(self) -> dict:
        """The ``noise`` entry of ``summary.json``."""
        return {
            "kind": self.kind,
            "sentence": self.sentence,
            "recommendation": self.recommendation,
            "stretch": [list(map(int, key)) for key in self.stretch],
            "slowdown": {k: _num(v) for k, v in self.slowdown.items()},
            "calibration_spread": _num(self.calibration_spread),
            "max_steal": _num(self.max_steal),
            "target": self.target,
            "confidence": CONFIDENCE,
            "variance": {k: s.to_dict() for k, s in self.splits.items()},
        }


def _num(value):
    if isinstance(value, (int, str)) or value is None:
        return value
    return float(value) if math.isfinite(value) else None


def _zero_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def pass_table(run: Run) -> pd.DataFrame:
    """One row per pass in run order: ``warmup``, probe rates, machine means and each implementation's wall.

    Columns: ``round``, ``epoch``, ``warmup``, ``sgemm_gflops``, ``copy_gbps``,
    ``steal_share``, ``iowait_share``, ``loadavg_1m``, ``other_running``,
    then ``wall:<impl>`` (an implementation's epoch wall divided by the median of its measured ones).
    """
    epochs = job_rows(run.epochs)
    table = epochs.groupby(PAIR_KEYS, as_index=False)["warmup"].max()
    probe = run.calibration.groupby(PAIR_KEYS, as_index=False)[["sgemm_gflops", "copy_gbps"]].mean()
    state = ["steal_share", "iowait_share", "loadavg_1m", "other_running"]
    machine = run.machine.groupby(PAIR_KEYS, as_index=False)[state].mean()
    table = table.merge(probe, on=PAIR_KEYS, how="left").merge(machine, on=PAIR_KEYS, how="left")
    for name in run.measured_impls:
        rows = epochs[epochs["impl"] == name]
        centre = float(np.median(run.measured(name)["wall_seconds"]))
        walls = rows.assign(**{f"wall:{name}": rows["wall_seconds"] / centre})[[*PAIR_KEYS, f"wall:{name}"]]
        table = table.merge(walls, on=PAIR_KEYS, how="left")
    return table.sort_values(PAIR_KEYS).reset_index(drop=True)


def low_group(values: pd.Series) -> tuple:
    """``(mask of the lower group, relative drop)`` of a two-group split of positive ``values`` on a log scale.

    The cut minimises the within-group sum of squares; the drop is
    ``1 − median(lower) / median(upper)``. NaN values are never in the lower group.
    """
    finite = values[np.isfinite(values) & (values > 0)]
    mask = pd.Series(False, index=values.index)
    if len(finite) < 2:
        return mask, 0.0
    logs = np.log(finite.sort_values())
    best, cut = math.inf, 1
    for k in range(1, len(logs)):
        sse = logs.iloc[:k].var(ddof=0) * k + logs.iloc[k:].var(ddof=0) * (len(logs) - k)
        if sse < best:
            best, cut = sse, k
    lower = logs.index[:cut]
    mask[lower] = True
    drop = 1.0 - float(np.exp(np.median(logs.iloc[:cut]) - np.median(logs.iloc[cut:])))
    return mask, drop


def slowdowns(run: Run, stretch: set) -> dict:
    """Per implementation, ``median(wall in stretch) / median(wall elsewhere) − 1`` over measured epochs."""
    found = {}
    for name in run.measured_impls:
        rows = run.measured(name)
        inside = [tuple(k) in stretch for k in rows[PAIR_KEYS].itertuples(index=False)]
        walls = rows["wall_seconds"].to_numpy()
        flags = np.array(inside, dtype=bool)
        if flags.any() and (~flags).any():
            found[name] = float(np.median(walls[flags]) / np.median(walls[~flags]) - 1.0)
    return found


def label_passes(keys: list, single_round: bool, round_sizes: dict) -> tuple:
    """``(words, scattered)``: plain words for a set of passes (``epochs 7–12``, ``rounds 3–4`` or ``round 2
    epochs 3–5``), and whether they were scattered.

    Passes that fall in more than :data:`MAX_SPANS` spans are scattered, and
    counted instead of listed: ``N of M measured passes, scattered over R rounds``.
    """
    by_round = {}
    for r, e in sorted(keys):
        by_round.setdefault(r, []).append(e)
    whole = [r for r, es in by_round.items() if not single_round and len(es) == round_sizes.get(r, -1)]
    parts = [f"round{'s' if len(g) > 1 else ''} {_span(g)}" for g in _runs(whole)] if whole else []
    spans = len(parts)
    for r, es in by_round.items():
        if r in whole:
            continue
        groups = _runs(es)
        spans += len(groups)
        words = f"epoch{'s' if len(es) > 1 else ''} {', '.join(_span(g) for g in groups)}"
        parts.append(words if single_round else f"round {r} {words}")
    if spans > MAX_SPANS:
        over = "the run" if single_round else f"{len(by_round)} round{'s' if len(by_round) > 1 else ''}"
        return f"{len(keys)} of {sum(round_sizes.values())} measured passes, scattered over {over}", True
    return ", ".join(parts), False


def _runs(values: list) -> list:
    """Consecutive integers grouped: [1, 2, 3, 7] -> [[1, 2, 3], [7]]."""
    groups = []
    for v in sorted(values):
        if groups and v == groups[-1][-1] + 1:
            groups[-1].append(v)
        else:
            groups.append([v])
    return groups


def _span(group: list) -> str:
    return f"{group[0]}–{group[-1]}" if len(group) > 1 else f"{group[0]}"


def _slower_words(found: dict, scattered: bool = False) -> str:
    if not found:
        return "there is no quieter stretch to compare their epochs with"
    where = "epochs in those passes" if scattered else "epochs in that stretch"
    values = sorted(found.values())
    middle = float(np.median(values))
    if values[-1] - values[0] > 0.05:
        low, high = _change(values[0]), _change(values[-1])
        return f"{where} were between {low} and {high} than the rest, by implementation"
    if abs(middle) < 0.005:
        return f"{where} were no slower than the rest"
    return f"{where} were {_change(middle)} than the rest"


def _change(value: float) -> str:
    """``0.3`` -> ``30% slower``, ``-0.2`` -> ``20% faster``."""
    return f"{abs(value):.0%} {'slower' if value >= 0 else 'faster'}"


def _stretch(table: pd.DataFrame) -> tuple:
    """``(kind, mask of the stretch, figure)`` by the rule of the module docstring (kind ``steady`` when none)."""
    busy = table["other_running"]
    everywhere = bool(len(table)) and bool((busy >= BUSY).all())
    if everywhere and _unsettled(table):
        return "shared", busy >= BUSY, float(busy.mean())
    rates = table["sgemm_gflops"]
    if rates.notna().sum() >= MIN_PASSES:
        mask, drop = low_group(rates)
        if drop > DROP:
            return "calibration", mask, drop
    steal = table["steal_share"]
    if (steal > STEAL).any():
        return "steal", steal > STEAL, float(steal[steal > STEAL].mean())
    if (busy >= BUSY).any() and not everywhere:
        return "load", busy >= BUSY, float(busy[busy >= BUSY].mean())
    return "steady", pd.Series(False, index=table.index), 0.0


SHARED_ADVICE = (
    "rerun when the other processes have finished, or with fewer --threads than idle cores: paired epochs cancel "
    "only drift slower than an epoch, not contention that changes within one"
)


def _shared_sentence(run: Run, measured: pd.DataFrame, busy: float) -> str:
    """The sentence of a run whose every measured pass shared the machine with other running processes."""
    text = f"every measured pass ran while {busy:.1f} other processes were running on average"
    rates = measured["sgemm_gflops"].dropna()
    if len(rates):
        text += f": the calibration sgemm ran at {rates.min():.3g} to {rates.max():.3g} GFLOP/s"
    noisy = _noisiest(run)
    if noisy:
        text += f" and {noisy[0]}'s epochs varied by {noisy[1]:.0%} (IQR/median)"
    return text


def _unsettled(table: pd.DataFrame) -> bool:
    """Whether the calibration rate (or, without one, some implementation's epoch) moved more than :data:`DROP`."""
    spread = _spread(table["sgemm_gflops"])
    if math.isfinite(spread):
        return spread > DROP
    walls = [_spread(table[c]) for c in table.columns if c.startswith("wall:")]
    return any(w > DROP for w in walls if math.isfinite(w))


def _offsets(values: pd.Series) -> pd.Series:
    """How far each finite value lies from their median, relative to it (``|v / median − 1|``)."""
    values = values[np.isfinite(values)]
    return (values / values.median() - 1.0).abs()


def _spread(values: pd.Series) -> float:
    offsets = _offsets(values)
    return float(offsets.max()) if len(offsets) else math.nan


def _calibration_words(rates: pd.Series) -> str:
    """How far the probe's sgemm rate moved on a steady machine, lone passes beyond :data:`DROP` told apart.

    A lone pass that far off is not a stretch (the two-group split did not
    find one), so "within ±20%" would overstate the spread of the rest.
    """
    off = _offsets(rates)
    if off.empty:
        return "calibration not recorded"
    lone = off[off > DROP]
    text = f"calibration within ±{off[off <= DROP].max():.1%}"
    if len(lone):
        text += f" but for {len(lone)} lone pass{'es' if len(lone) != 1 else ''} (at most {lone.max():.0%} off)"
    return text


def _steady_sentence(run: Run, measured: pd.DataFrame, steal: float) -> str:
    passes, busy = len(measured), float(measured["other_running"].mean())
    words = [_calibration_words(measured["sgemm_gflops"])]
    if math.isfinite(steal):
        words.append("no steal" if steal < 0.005 else f"steal at most {steal:.1%}")
    if busy >= BUSY:
        words.append(f"though {busy:.1f} other processes were running on average")
    if passes < MIN_PASSES:
        words.append(f"over only {passes} measured pass{'es' if passes != 1 else ''}")
    text = "the machine was steady: " + ", ".join(words)
    noisy = _noisiest(run)
    if noisy and noisy[1] > NOISY:
        text += f"; yet {noisy[0]}'s epochs varied by {noisy[1]:.0%} (IQR/median), so the noise is in the loops"
    return text


def _noisiest(run: Run):
    found = []
    for name in run.measured_impls:
        walls = run.measured(name)["wall_seconds"]
        if len(walls) >= 3:
            q1, q3 = np.percentile(walls, [25, 75])
            found.append((name, float((q3 - q1) / np.median(walls))))
    return max(found, key=lambda item: item[1]) if found else None


def diagnose(run: Run, target: float = TARGET) -> Diagnosis:
    """The noise diagnosis of ``run`` (see the module docstring) with the variance split of each implementation."""
    splits = {name: split for name in run.measured_impls if (split := variance_split(run, name, target))}
    if not run.measured_impls:
        return Diagnosis("unmeasured", "no epoch was measured: there is nothing to diagnose", "measure epochs first")
    if run.machine.empty and run.calibration.empty:
        return Diagnosis(
            "unrecorded",
            "the machine state was not recorded for this run (no machine.csv or calibration.csv)",
            _repeat_advice(splits, target) or "rerun with this perfsuite to record the machine state",
            splits=splits,
            target=target,
        )
    table = pass_table(run)
    measured = table[table["warmup"] == 0].reset_index(drop=True)
    kind, mask, figure = _stretch(measured)
    spread, steal = _spread(measured["sgemm_gflops"]), float(measured["steal_share"].max())
    keys = [tuple(map(int, k)) for k in measured.loc[mask, PAIR_KEYS].itertuples(index=False)]
    found = slowdowns(run, set(keys))
    common = {"stretch": keys, "slowdown": found, "calibration_spread": spread, "max_steal": steal}
    if kind == "steady":
        advice = _repeat_advice(splits, target) or f"nothing to add: every mean epoch is within ±{target:.0%}"
        sentence = _steady_sentence(run, measured, steal)
        return Diagnosis(kind, sentence, advice, splits=splits, target=target, **common)
    where, scattered = label_passes(keys, measured["round"].nunique() == 1, measured.groupby("round").size().to_dict())
    if kind == "shared":
        return Diagnosis(
            kind, _shared_sentence(run, measured, figure), SHARED_ADVICE, splits=splits, target=target, **common
        )
    if mask.all():
        where, scattered = f"all {len(keys)} measured passes", False
    sentence = {
        "calibration": f"the calibration sgemm ran at a {figure:.0%} lower rate in {where}{',' if scattered else ''} "
        "than in the rest",
        "steal": f"{where} ran while {figure:.0%} of CPU time was stolen by the host",
        "load": f"{where} ran while {figure:.1f} other processes were running on average",
    }[kind]
    stolen = measured.loc[mask, "steal_share"].mean()
    if kind == "calibration" and stolen > STEAL:
        sentence += f", while {stolen:.0%} of CPU time was stolen by the host"
    advice = (
        "stop the other busy processes and rerun; meanwhile compare implementations within this run only"
        if kind == "load"
        else "compare implementations within this run only (paired epochs cancel the drift) or across runs "
        "with perfsuite compare's calibrated mode; rerun when the host is quiet before quoting raw seconds"
    )
    words = _slower_words(found, scattered)
    return Diagnosis(kind, f"{sentence}; {words}", advice, splits=splits, target=target, **common)


def _repeat_advice(splits: dict, target: float) -> str:
    """'measure N more epochs …' when some implementation is short of the target, else ''."""
    short = {n: s for n, s in splits.items() if s.suggested_rounds * s.suggested_epochs > s.epochs}
    if not short:
        return ""
    name, worst = max(short.items(), key=lambda item: item[1].suggested_rounds * item[1].suggested_epochs)
    if worst.suggested_rounds > max(worst.rounds, 1):
        return (
            f"to reach ±{target:.0%} on {name}'s mean epoch, measure {worst.suggested_rounds} rounds of "
            f"{worst.suggested_epochs} epochs (--repeats {worst.suggested_rounds} --epochs {worst.suggested_epochs})"
        )
    more = worst.suggested_rounds * worst.suggested_epochs - worst.epochs
    epochs = f"{more} more epoch{'s' if more != 1 else ''}"
    return f"measure {epochs} (to reach ±{target:.0%} on {name}'s mean epoch; --epochs or --precision)"


def _pooled_var(values: pd.Series, groups: pd.Series) -> float:
    """Pooled within-group sample variance (NaN when no group has two values)."""
    grouped = values.groupby(groups)
    dof = grouped.count() - 1
    dof = dof[dof > 0]
    if dof.empty:
        return math.nan
    return float((grouped.var(ddof=1)[dof.index] * dof).sum() / dof.sum())


def variance_split(run: Run, impl: str, target: float = TARGET, confidence: float = CONFIDENCE):
    """The :class:`VarianceSplit` of ``impl``'s measured epochs (``None`` with fewer than two)."""
    walls = run.measured(impl)
    if len(walls) < 2:
        return None
    steps = run.measured_steps(impl)
    step_time = steps[list(PHASES)].sum(axis=1)
    epoch_of = steps["round"].astype(str) + ":" + steps["epoch"].astype(str)
    n_steps = int(np.median(walls["steps"]))
    step_var = n_steps * _zero_nan(_pooled_var(step_time, epoch_of))
    within = _pooled_var(walls["wall_seconds"], walls["round"])
    by_round = walls.groupby("round")["wall_seconds"]
    rounds = int(by_round.ngroups)
    round_var, note = math.nan, "one round: the variance between worker processes is not measured"
    if rounds >= 2:
        within = _zero_nan(within)
        round_var, note = max(float(by_round.mean().var(ddof=1)) - within / float(by_round.size().mean()), 0.0), ""
    epoch_var = max(_zero_nan(within) - step_var, 0.0)
    epoch_cost = float(np.median(walls["wall_seconds"]))
    cost_of_round = round_cost(run, impl)
    n, r = suggest(
        float(walls["wall_seconds"].mean()), _zero_nan(round_var), _zero_nan(within), cost_of_round, epoch_cost
    )
    return VarianceSplit(
        impl=impl,
        rounds=rounds,
        epochs=len(walls),
        steps_per_epoch=n_steps,
        mean=float(walls["wall_seconds"].mean()),
        round_var=round_var,
        epoch_var=epoch_var,
        step_var=step_var,
        round_cost=cost_of_round,
        epoch_cost=epoch_cost,
        suggested_rounds=n,
        suggested_epochs=r,
        note=note,
    )


def round_cost(run: Run, impl: str) -> float:
    """Seconds a new round costs ``impl``: worker start, median set-up and the round's warm-up epochs."""
    status = run.status(impl)
    setups = [s.get("setup_seconds") for s in status.get("setups") or [] if s.get("setup_seconds") is not None]
    rows = job_rows(run.epochs)
    warm = rows[(rows["impl"] == impl) & (rows["warmup"] == 1)]
    per_round = len(warm) / max(warm["round"].nunique(), 1)
    warm_cost = per_round * float(np.median(warm["wall_seconds"])) if len(warm) else 0.0
    return float(status.get("start_seconds") or 0.0) + (float(np.median(setups)) if setups else 0.0) + warm_cost


def half_width(mean: float, variance: float, df: int, confidence: float = CONFIDENCE) -> float:
    """Relative half-width ``t_{(1+γ)/2, df} · sqrt(variance) / mean`` of an interval of the mean."""
    return float(_stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(variance) / mean)


def suggest(
    mean: float,
    round_var: float,
    within: float,
    round_cost: float,
    epoch_cost: float,
    target: float = TARGET,
    confidence: float = CONFIDENCE,
) -> tuple:
    """``(rounds, epochs per round)`` reaching ``target`` at least cost (Kalibera & Jones; module docstring)."""
    if mean <= 0:
        return 1, 2
    if round_var <= 0:
        return 1, _least(lambda r: half_width(mean, within / r, r - 1, confidence), within, mean, target, confidence)
    r = max(1, math.ceil(math.sqrt(round_cost * within / (max(epoch_cost, 1e-12) * round_var))))
    variance = round_var + within / r
    return _least(lambda n: half_width(mean, variance / n, n - 1, confidence), variance, mean, target, confidence), r


def _least(width, variance: float, mean: float, target: float, confidence: float) -> int:
    """The least count ≥ 2 whose ``width(count)`` is within ``target``, searched from the normal approximation up."""
    z = _stats.norm.ppf((1 + confidence) / 2)
    count = max(2, math.ceil(variance * (z / (target * mean)) ** 2))
    while count < MAX_REPEATS and width(count) > target:
        count += 1
    return min(count, MAX_REPEATS)
