"""Jacobson-Truax reliable and clinically significant change, per instrument.

Jacobson & Truax (1991, J Consult Clin Psychol 59:12):

* reliable change index RCI = (post - pre) / S_diff, S_diff = sqrt(2 SE²) = sqrt(2) · SD ·
  sqrt(1 - r_xx), SE the standard error of measurement, SD the standard deviation of the
  pre-treatment scores, r_xx the instrument's (test-retest) reliability; |RCI| > 1.96 is a
  change unlikely (p < .05) to be measurement error alone;
* clinically significant change: the endpoint score on the functional side of a cut-off,
  criterion (a) M1 - 2 s1 (two SDs beyond the dysfunctional mean), (b) M0 + 2 s0 (within two
  SDs of the functional mean) or (c) (s0 M1 + s1 M0) / (s0 + s1) (closer to the functional
  mean), with M1, s1 the patients' pre-treatment mean and SD and M0, s0 a functional
  (general-population) norm. They prefer (c) when norms exist; without norms only (a) can be
  computed.

Lower scores are better on every registered instrument (symptom scales); ``lower_is_better
=False`` turns the directions round for a user's instrument where higher is better.

Categories (mutually exclusive, the usual reporting of Jacobson & Truax's method):
``recovered`` reliably improved and past the cut-off; ``improved`` reliably improved, not
past it; ``unchanged`` no reliable change; ``deteriorated`` reliably worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, z_value
from ..instruments import Instrument, get_instrument
from ._common import as_number, paired_vectors

__all__ = ["PSYCHOMETRICS", "Psychometrics", "ReliableChangeResult", "psychometrics", "reliable_change"]

CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated")
CRITERIA = ("a", "b", "c", "remission")


@dataclass(frozen=True)
class Psychometrics:
    """Published reliabilities and functional-population norms of an instrument.

    ``None`` where no value is adopted (see docs/effects.md for the reasons).
    """

    instrument: str
    test_retest: float | None
    internal_consistency: float | None
    reliability_source: str
    norm_mean: float | None = None
    norm_sd: float | None = None
    norm_source: str = ""


#: reliabilities and norms of the built-in depression and anxiety instruments (docs/effects.md)
PSYCHOMETRICS: dict[str, Psychometrics] = {p.instrument: p for p in (
    Psychometrics(
        "PHQ-9", test_retest=0.84, internal_consistency=0.89,
        reliability_source="Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606 (retest within 48 h; "
                           "alpha 0.89 primary care, 0.86 obstetrics-gynaecology)",
        norm_mean=2.91, norm_sd=3.51,
        norm_source="Kocalevent, Hinz & Brahler 2013, Gen Hosp Psychiatry 35:551 (German general population, "
                    "n = 5018, 53.6% women; women 3.1 (SD 3.5), men 2.7 (SD 3.5), combined here)",
    ),
    Psychometrics(
        "GAD-7", test_retest=0.83, internal_consistency=0.92,
        reliability_source="Spitzer, Kroenke, Williams & Lowe 2006, Arch Intern Med 166:1092 (retest ICC)",
        norm_mean=2.97, norm_sd=3.37,
        norm_source="Lowe et al. 2008, Med Care 46:266 (German general population, n = 5030, 53.6% women; "
                    "women 3.2 (SD 3.5), men 2.7 (SD 3.2), combined here)",
    ),
    Psychometrics(
        "BDI-II", test_retest=0.93, internal_consistency=0.92,
        reliability_source="Beck, Steer & Brown 1996, BDI-II manual (retest over 1 week, 26 outpatients; "
                           "alpha 0.92 outpatients, 0.93 students)",
    ),
    Psychometrics(
        "QIDS-SR16", test_retest=None, internal_consistency=0.86,
        reliability_source="Rush et al. 2003, Biol Psychiatry 54:573 (596 outpatients with chronic depression)",
    ),
    Psychometrics(
        "HAM-D17", test_retest=None, internal_consistency=0.789,
        reliability_source="Trajkovic et al. 2011, Psychiatry Res 189:1 (meta-analysis, pooled alpha; retest "
                           "0.65-0.98, falling with the interval, not pooled)",
    ),
    Psychometrics(
        "MADRS", test_retest=None, internal_consistency=0.847,
        reliability_source="Chinese J Behav Med Brain Sci 2011;20:85 (122 patients with major depression; "
                           "retest during treatment 0.52-0.74, not a stability estimate)",
    ),
)}


def psychometrics(instrument: str | Instrument) -> Psychometrics | None:
    """The adopted reliabilities and norms of an instrument, or None when there are none.

    Examples
    --------
    >>> from analysis.effects import psychometrics
    >>> psychometrics("phq9").test_retest
    0.84
    """
    inst = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    return PSYCHOMETRICS.get(inst.name)


@dataclass(frozen=True)
class ReliableChangeResult:
    """Reliable and clinically significant change of a group of patients.

    Attributes
    ----------
    instrument : str
    table : pandas.DataFrame
        One row per category (``recovered, improved, unchanged, deteriorated``): ``category,
        n, percent``.
    per_patient : pandas.DataFrame
        One row per patient used (patient-level: not for rendered reports): ``pre, post,
        change, rci, reliable, past_cutoff, category`` (with ``patient_id`` when the data
        had one), in the data's order.
    reliability : float
    reliability_kind : str
        ``"test-retest"``, ``"internal consistency"`` or ``"given"``.
    sd : float
        The SD in S_diff (the pre-treatment SD unless given).
    s_diff : float
        Standard error of a difference score.
    threshold : float
        |RCI| at or above which a change is reliable (1.96 for 95%).
    minimal_reliable_change : float
        threshold · S_diff: the smallest change in points that is reliable.
    criterion : str
        ``"a"``, ``"b"``, ``"c"``, ``"remission"`` or ``"given"``.
    cutoff : float
        The clinical cut-off; the functional side is ``post < cutoff`` (``post <=
        remission_max`` for ``"remission"``), reversed when higher is better.
    norm_mean, norm_sd : float or None
        Functional norms used by criteria b and c.
    n_past_cutoff_at_baseline : int
        Patients already on the functional side before treatment (they can be "recovered"
        without crossing the cut-off; report them).
    n_dropped : int
        Patients dropped for a missing pre or post score (``dropna=True``).
    conf_level : float
    lower_is_better : bool
    """

    instrument: str
    table: pd.DataFrame
    per_patient: pd.DataFrame
    reliability: float
    reliability_kind: str
    sd: float
    s_diff: float
    threshold: float
    minimal_reliable_change: float
    criterion: str
    cutoff: float
    norm_mean: float | None
    norm_sd: float | None
    n_past_cutoff_at_baseline: int
    n_dropped: int
    conf_level: float
    lower_is_better: bool

    @property
    def summary(self) -> pd.DataFrame:
        """One row: ``instrument, n, reliability, reliability_kind, sd, s_diff,
        minimal_reliable_change, criterion, cutoff``, then the counts per category."""
        row = {"instrument": self.instrument, "n": int(self.table["n"].sum()), "reliability": self.reliability,
               "reliability_kind": self.reliability_kind, "sd": self.sd, "s_diff": self.s_diff,
               "minimal_reliable_change": self.minimal_reliable_change, "criterion": self.criterion,
               "cutoff": self.cutoff}
        row.update(dict(zip(self.table["category"], self.table["n"])))
        return pd.DataFrame([row])


def _instrument(instrument, data) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    if instrument is None:
        names = pd.unique(data["instrument"].dropna()) if data is not None and "instrument" in data.columns else []
        if len(names) != 1:
            raise ValueError("give instrument= (the data have no single 'instrument' value)")
        instrument = names[0]
    return get_instrument(instrument)


def reliable_change(data: pd.DataFrame | None = None, instrument: str | Instrument | None = None, *,
                    pre="baseline_score", post="endpoint_score", reliability: float | str | None = None,
                    sd: float | None = None, criterion: str | None = None, cutoff: float | None = None,
                    norm_mean: float | None = None, norm_sd: float | None = None, conf_level: float = 0.95,
                    lower_is_better: bool = True, dropna: bool = False) -> ReliableChangeResult:
    """Jacobson-Truax reliable change index and clinically significant change.

    Parameters
    ----------
    data : pandas.DataFrame or analysis.outcomes.Outcomes, optional
        One row per patient, with pre- and post-treatment totals (``Outcomes.courses`` has
        ``baseline_score`` and ``endpoint_score`` and an ``instrument`` column). An
        ``Outcomes`` is read through its ``courses``. Without ``data``, ``pre`` and ``post``
        are the scores themselves.
    instrument : str or Instrument, optional
        The instrument; read from the data's ``instrument`` column when it holds one value.
    pre, post : str or array-like, default "baseline_score", "endpoint_score"
        Column names of ``data``, or the scores.
    reliability : float or {"test-retest", "internal consistency"}, optional
        r_xx. Default: the instrument's published test-retest reliability (the one
        Jacobson & Truax use), else its internal consistency (``PSYCHOMETRICS``,
        docs/effects.md); required for instruments without one.
    sd : float, optional
        The SD in S_diff and of the dysfunctional population; default the SD of the
        pre-treatment scores used (Jacobson & Truax's s1).
    criterion : {"a", "b", "c", "remission"}, optional
        The cut-off: default ``"c"`` when functional norms exist (given or adopted), else
        ``"a"``; ``"remission"`` uses the instrument's remission cut-off. Give either this
        or ``cutoff``.
    cutoff : float, optional
        A cut-off of your own; the functional side is ``post < cutoff``.
    norm_mean, norm_sd : float, optional
        Functional-population mean and SD for criteria b and c (default the adopted norms:
        PHQ-9 and GAD-7).
    conf_level : float, default 0.95
        |RCI| >= z for this level is reliable (1.96 for 0.95, as Jacobson & Truax).
    lower_is_better : bool, default True
    dropna : bool, default False
        A missing pre or post score is an error unless ``dropna=True``, which drops the
        patient and counts it in ``n_dropped``.

    Returns
    -------
    ReliableChangeResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.effects import reliable_change
    >>> courses = pd.DataFrame({"baseline_score": [20, 18, 24, 15, 22, 19, 26, 17],
    ...                         "endpoint_score": [6, 16, 25, 4, 12, 21, 8, 15]})
    >>> res = reliable_change(courses, "PHQ-9")
    >>> round(res.minimal_reliable_change, 2), round(res.cutoff, 2)
    (4.08, 11.31)
    >>> res.table
           category  n  percent
    0     recovered  3     37.5
    1      improved  1     12.5
    2     unchanged  4     50.0
    3  deteriorated  0      0.0
    """
    if hasattr(data, "courses") and hasattr(data, "definitions") and not isinstance(data, pd.DataFrame):
        data = data.courses
    if data is not None and not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a DataFrame or an Outcomes, got {type(data).__name__}")
    inst = _instrument(instrument, data)
    level = check_conf_level(conf_level)
    if not isinstance(lower_is_better, (bool, np.bool_)):
        raise TypeError(f"lower_is_better must be True or False, got {lower_is_better!r}")
    if data is not None:
        for name, col in (("pre", pre), ("post", post)):
            if not isinstance(col, str) or col not in data.columns:
                raise ValueError(f"{name}={col!r} is not a column of data")
        pre_v, post_v = data[pre], data[post]
        labels = (f"column {pre!r} (pre)", f"column {post!r} (post)")
    else:
        pre_v, post_v = pre, post
        labels = ("pre", "post")
    a_pre, a_post, dropped, keep = paired_vectors(labels[0], pre_v, labels[1], post_v, dropna=dropna,
                                                  return_mask=True)
    for label, arr in zip(labels, (a_pre, a_post)):
        bad = (arr < inst.min_score) | (arr > inst.max_score)
        if bad.any():
            raise ValueError(f"{label} has {int(bad.sum())} score(s) outside {inst.name}'s range "
                             f"{inst.min_score:g} to {inst.max_score:g} (first {arr[bad][0]:g})")

    known = PSYCHOMETRICS.get(inst.name)
    if reliability is None or isinstance(reliability, str):
        want = reliability
        if want is not None:
            check_choice("reliability", want, ("test-retest", "internal consistency"))
        if known is None:
            raise ValueError(f"no reliability is adopted for {inst.name}; pass reliability= (a number)")
        if want in (None, "test-retest") and known.test_retest is not None:
            r_xx, r_kind = known.test_retest, "test-retest"
        elif want in (None, "internal consistency") and known.internal_consistency is not None:
            r_xx, r_kind = known.internal_consistency, "internal consistency"
        else:
            raise ValueError(f"no {want} reliability is adopted for {inst.name}; pass reliability= (a number)")
    else:
        r_xx, r_kind = as_number("reliability", reliability, low=0, high=1, high_open=True), "given"

    m1 = float(a_pre.mean())
    s1 = float(a_pre.std(ddof=1)) if sd is None else as_number("sd", sd, low=0, low_open=True)
    if s1 == 0:
        raise ValueError(f"{labels[0]} has zero standard deviation; pass sd= (a normative SD)")
    s_diff = math.sqrt(2.0) * s1 * math.sqrt(1.0 - r_xx)
    z = z_value(level)
    sign = 1.0 if lower_is_better else -1.0  # improvement is a fall in score when lower is better
    change = a_post - a_pre
    rci = change / s_diff
    improved = sign * rci <= -z
    worse = sign * rci >= z

    if (norm_mean is None) != (norm_sd is None):
        raise ValueError("give both norm_mean and norm_sd, or neither")
    if norm_mean is not None:
        m0, s0 = as_number("norm_mean", norm_mean), as_number("norm_sd", norm_sd, low=0, low_open=True)
    elif known is not None and known.norm_mean is not None:
        m0, s0 = known.norm_mean, known.norm_sd
    else:
        m0 = s0 = None
    if cutoff is not None:
        if criterion is not None:
            raise ValueError("give criterion= or cutoff=, not both")
        cut, crit = as_number("cutoff", cutoff), "given"
    else:
        crit = criterion if criterion is not None else ("c" if m0 is not None and s0 is not None else "a")
        check_choice("criterion", crit, CRITERIA)
        if crit in ("b", "c") and (m0 is None or s0 is None):
            raise ValueError(f"criterion {crit!r} needs functional norms for {inst.name}; pass norm_mean= and norm_sd=")
        if crit == "a":
            cut = m1 - sign * 2 * s1
        elif crit == "b":
            cut = m0 + sign * 2 * s0
        elif crit == "c":
            cut = (s0 * m1 + s1 * m0) / (s0 + s1)
        else:
            if inst.remission_max is None:
                raise ValueError(f"{inst.name} has no remission cut-off; choose criterion 'a', 'b' or 'c'")
            cut = float(inst.remission_max)

    def functional(scores: np.ndarray) -> np.ndarray:
        if crit == "remission":
            return scores <= cut if lower_is_better else scores >= cut
        return scores < cut if lower_is_better else scores > cut

    past = functional(a_post)
    category = np.where(improved & past, "recovered", np.where(improved, "improved",
                                                               np.where(worse, "deteriorated", "unchanged")))
    n = category.size
    counts = [int((category == c).sum()) for c in CATEGORIES]
    table = pd.DataFrame({"category": list(CATEGORIES), "n": counts, "percent": [100.0 * k / n for k in counts]})
    per_patient = pd.DataFrame({"pre": a_pre, "post": a_post, "change": change, "rci": rci,
                                "reliable": improved | worse, "past_cutoff": past, "category": category})
    if data is not None and "patient_id" in data.columns:
        per_patient.insert(0, "patient_id", data["patient_id"].to_numpy()[keep])
    return ReliableChangeResult(
        instrument=inst.name, table=table, per_patient=per_patient, reliability=float(r_xx), reliability_kind=r_kind,
        sd=s1, s_diff=s_diff, threshold=z, minimal_reliable_change=z * s_diff, criterion=crit, cutoff=float(cut),
        norm_mean=m0, norm_sd=s0, n_past_cutoff_at_baseline=int(functional(a_pre).sum()), n_dropped=dropped,
        conf_level=level, lower_is_better=bool(lower_is_better),
    )
