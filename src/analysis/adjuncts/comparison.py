"""The adjunct comparison table: every adjunct drug and class against a reference group, on
every outcome measure, crude and adjusted, with multiplicity-adjusted p-values and a
statement of design and trust per estimate (``docs/adjuncts.md``).

Adjuncts are given to the patients who do worst (confounding by indication), so each
estimate says what it compares and how far it can be trusted:

* **between-patient** estimates compare exposed and reference patients; crude ones carry
  every confounder, adjusted ones remove the *measured* confounders in ``covariates``;
* the **within-patient** hazard ratio compares a patient's exposed and unexposed infusions
  (Cox stratified by patient), which removes every patient-level confounder, measured or
  not, for adjuncts that start or stop during the course (rapamycin).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import check_conf_level
from ..outcomes import definitions_of
from ..response import logistic, ordinal
from ..survival import cox, kaplan_meier, pwp_gap, within_patient
from .._table_one import smd
from ._fit import logit_scores
from ._frames import (
    REFERENCES, adjunct_columns, covariate_kind, drop_constant, groups, numeric_design, outcome_tables, related_adjuncts,
)

__all__ = ["AdjunctComparison", "MEASURES", "compare_adjuncts"]

EXPOSED = "adjunct_exposed"

#: every estimate of the table: key -> (panel, label, scale, kind)
MEASURES: dict[str, tuple[str, str, str, str]] = {
    "response_or_crude": ("response", "response OR, crude", "OR", "crude"),
    "response_or_adjusted": ("response", "response OR, adjusted", "OR", "adjusted"),
    "response_rd_crude": ("response (risk difference)", "response RD, crude", "RD", "crude"),
    "response_rd_adjusted": ("response (risk difference)", "response RD, adjusted (standardised)", "RD", "adjusted"),
    "remission_or_crude": ("remission", "remission OR, crude", "OR", "crude"),
    "remission_or_adjusted": ("remission", "remission OR, adjusted", "OR", "adjusted"),
    "category_or_adjusted": ("category", "category proportional-odds OR, adjusted", "OR", "adjusted"),
    "relapse_hr_crude": ("relapse after induction", "relapse HR, crude", "HR", "crude"),
    "relapse_hr_adjusted": ("relapse after induction", "relapse HR, adjusted", "HR", "adjusted"),
    "durability_hr_crude": ("per-infusion durability", "durability HR (PWP), crude", "HR", "crude"),
    "durability_hr_adjusted": ("per-infusion durability", "durability HR (PWP), adjusted", "HR", "adjusted"),
    "durability_hr_within": ("per-infusion durability", "durability HR, within-patient", "HR", "within"),
}

_PANEL_AXIS = {"OR": "odds ratio", "HR": "hazard ratio", "RD": "risk difference"}


@dataclass
class AdjunctComparison:
    """Result of :func:`compare_adjuncts`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per adjunct (``adjunct`` column, e.g. ``drug_lamotrigine``): group sizes,
        crude rates, KM medians, and for every measure in :data:`MEASURES` the columns
        ``<measure>``, ``<measure>_lower``, ``<measure>_upper``, ``<measure>_p``,
        ``<measure>_p_holm``, ``<measure>_p_bh`` and ``<measure>_trust``.
    estimates : pandas.DataFrame
        The same estimates in long form, one row per adjunct and measure, with
        ``n_exposed``, ``n_reference``, ``events_exposed``, ``events_reference``,
        ``design`` and ``trust``.
    design : pandas.DataFrame
        One row per measure: the population, the model and what it adjusts for.
    notes : list of str
        Everything decided on the way: covariates left out or constant, rare levels pooled,
        rows dropped for missing covariates, duplicate class columns, adjuncts below
        ``min_exposed``.
    balance : pandas.DataFrame
        Per adjunct and population: largest absolute SMD before and after (diagnostic)
        ATE weighting, and the share of rows in the propensity scores' common support.
    """

    table: pd.DataFrame
    estimates: pd.DataFrame
    design: pd.DataFrame
    notes: list[str]
    balance: pd.DataFrame
    covariates: list[str]
    reference: str
    conf_level: float
    min_exposed: int
    _labels: dict = field(default_factory=dict, repr=False)

    def formatted(self, digits: int = 2) -> pd.DataFrame:
        """Adjunct x measure table of ``estimate (lower-upper)`` strings, for reading."""
        est = self.estimates.dropna(subset=["estimate"])
        fmt = est.apply(lambda r: f"{r.estimate:.{digits}f} ({r.ci_lower:.{digits}f}-{r.ci_upper:.{digits}f})", axis=1) \
            if len(est) else pd.Series(dtype=object)
        out = pd.DataFrame({"adjunct": est["adjunct"], "measure": est["measure"], "value": fmt})
        wide = out.pivot(index="adjunct", columns="measure", values="value")
        order = [m for m in MEASURES if m in wide.columns]
        return wide.reindex(index=[a for a in self.table["adjunct"] if a in wide.index], columns=order)

    def plot(self, ax=None, *, measures: Sequence[str] | None = None):
        """Forest plot of every adjunct effect with its confidence interval.

        With ``ax=None`` a figure is made with one panel per outcome (response, risk
        difference, remission, category, relapse after induction, per-infusion durability),
        each with one marker set per estimate (crude, adjusted, within-patient); ratios on a
        log scale. Returns the array of axes. With one ``ax``, all ratio measures are drawn
        on it as marker sets (log scale) and it is returned; with a sequence of axes, one
        panel per axis.
        """
        est = self.estimates.dropna(subset=["estimate", "ci_lower", "ci_upper"])
        keys = [m for m in (measures or MEASURES) if m in set(est["measure"])]
        adjuncts = [a for a in self.table["adjunct"] if a in set(est["adjunct"])]
        ypos = {a: i for i, a in enumerate(reversed(adjuncts))}
        markers = {"crude": ("o", "#b03a2e"), "adjusted": ("s", "#1f5f9e"), "within": ("D", "#2b7a3d")}
        single = ax is not None and not isinstance(ax, (list, tuple, np.ndarray))
        if single:
            keys = [k for k in keys if MEASURES[k][2] != "RD"]
            panels = [("adjunct effects", keys)]
            axes = [ax]
        else:
            panels = []
            for k in keys:
                name = MEASURES[k][0]
                if panels and panels[-1][0] == name:
                    panels[-1][1].append(k)
                else:
                    panels.append((name, [k]))
            if ax is None:
                from matplotlib.figure import Figure

                ncols = min(3, max(1, len(panels)))
                nrows = max(1, math.ceil(len(panels) / ncols))
                fig = Figure(figsize=(3.0 * ncols + 1.2, 0.32 * max(len(adjuncts), 2) * nrows + 1.2 * nrows),
                             layout="constrained")
                grid = fig.subplots(nrows, ncols, squeeze=False)
                axes = list(grid.ravel())
                for extra in axes[len(panels):]:
                    extra.set_visible(False)
            else:
                axes = list(np.ravel(ax))
                if len(axes) < len(panels):
                    raise ValueError(f"{len(panels)} panels to draw but {len(axes)} axes given")
        for (name, ks), a in zip(panels, axes):
            n = len(ks)
            for j, k in enumerate(ks):
                rows = est[est["measure"] == k]
                offset = (j - (n - 1) / 2) * (0.6 / max(n, 1))
                y = np.array([ypos[r] for r in rows["adjunct"]], dtype=float) + offset
                kind = MEASURES[k][3]
                marker, color = markers[kind]
                if single:
                    color = None
                x = rows["estimate"].to_numpy(float)
                a.errorbar(x, y, xerr=[x - rows["ci_lower"].to_numpy(float), rows["ci_upper"].to_numpy(float) - x],
                           fmt=marker, color=color, ms=4, capsize=2, lw=1, label=MEASURES[k][1])
            scale = MEASURES[ks[0]][2]
            a.axvline(0.0 if scale == "RD" else 1.0, color="grey", linestyle="--", linewidth=0.8)
            if scale != "RD":
                _log_ratio_axis(a)
            a.set_yticks(list(ypos.values()), [self._labels.get(k, k) for k in ypos])
            a.set_ylim(-0.7, len(ypos) - 0.3)
            a.set_title(name, fontsize=9)
            a.set_xlabel(f"{'ratio' if single else _PANEL_AXIS[scale]} ({self.conf_level:.0%} CI)", fontsize=8)
            a.tick_params(labelsize=7)
            a.legend(frameon=False, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2 if single else -0.28))
        return axes[0] if single else np.array(axes[:len(panels)])

    def __repr__(self) -> str:
        return (f"AdjunctComparison({len(self.table)} adjuncts, reference={self.reference!r}, "
                f"covariates={', '.join(self.covariates)})\n{self.formatted().to_string()}")


def _log_ratio_axis(ax) -> None:
    """Log scale with a few plain-number ticks (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0, 50.0, 100.0) if lo <= t <= hi]
    if len(ticks) > 6:
        i = ticks.index(1.0) if 1.0 in ticks else 0
        ticks = [t for j, t in enumerate(ticks) if (j - i) % 2 == 0]
    if 1.0 not in ticks and lo <= 1.0 <= hi:
        ticks = sorted([*ticks, 1.0])
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


# ----------------------------------------------------------------------------------------
def _z(conf_level: float) -> float:
    return float(stats.norm.ppf(0.5 + conf_level / 2))


def _p(est: float, se: float) -> float:
    if not np.isfinite(se) or se <= 0:
        return np.nan
    return float(2 * stats.norm.sf(abs(est / se)))


def crude_binary(y: np.ndarray, e: np.ndarray, conf_level: float = 0.95) -> dict:
    """Crude odds ratio (Woolf interval) and risk difference (Wald interval, unpooled SE)
    of a 0/1 outcome between exposed (e = 1) and reference (e = 0) from the 2x2 table."""
    y, e = np.asarray(y, dtype=float), np.asarray(e, dtype=bool)
    a, n1 = float(y[e].sum()), int(e.sum())
    c, n0 = float(y[~e].sum()), int((~e).sum())
    b, d = n1 - a, n0 - c
    z = _z(conf_level)
    p1, p0 = (a / n1 if n1 else np.nan), (c / n0 if n0 else np.nan)
    rd = p1 - p0
    se_rd = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0) if n1 and n0 else np.nan
    out = {"n1": n1, "n0": n0, "events1": int(a), "events0": int(c), "p1": p1, "p0": p0,
           "rd": rd, "rd_lower": rd - z * se_rd, "rd_upper": rd + z * se_rd, "rd_p": _p(rd, se_rd)}
    if min(a, b, c, d) > 0:
        lor = math.log(a * d / (b * c))
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        out.update(odds_ratio=math.exp(lor), or_lower=math.exp(lor - z * se), or_upper=math.exp(lor + z * se),
                   or_p=_p(lor, se))
    else:
        out.update(odds_ratio=np.nan, or_lower=np.nan, or_upper=np.nan, or_p=np.nan)
    return out


def _short(msg: str, n: int = 140) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


class _Caught:
    """Run a fit, keep its warnings, turn an error into a note."""

    def __init__(self):
        self.messages: list[str] = []

    def __call__(self, fn, *args, **kwargs):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                res = fn(*args, **kwargs)
            except (ValueError, np.linalg.LinAlgError, KeyError, ZeroDivisionError) as exc:
                self.messages.append(f"not estimated: {_short(exc)}")
                res = None
        for w in rec:
            if not issubclass(w.category, (DeprecationWarning, FutureWarning)):
                self.messages.append(f"model warning: {_short(w.message)}")
        return res


def _diagnostics(frame: pd.DataFrame, covariates: list[str], design: pd.DataFrame) -> dict:
    """Balance and overlap of exposed vs reference rows: largest |SMD| unweighted and under
    diagnostic stabilised ATE weights (logistic propensity on the adjustment set), and the
    share of rows inside the common support of the propensity scores."""
    t = frame[EXPOSED].to_numpy(dtype=float)
    out = {"max_smd": np.nan, "max_smd_covariate": "", "max_smd_weighted": np.nan, "max_smd_weighted_covariate": "",
           "common_support": np.nan}
    if not covariates or t.min() == t.max():
        return out
    X = np.column_stack([np.ones(len(frame)), design.to_numpy(dtype=float)])
    e = logit_scores(X, t)
    lo = max(e[t == 1].min(), e[t == 0].min())
    hi = min(e[t == 1].max(), e[t == 0].max())
    out["common_support"] = float(np.mean((e >= lo) & (e <= hi)))
    e = np.clip(e, 1e-8, 1 - 1e-8)
    pt = t.mean()
    w = np.where(t == 1, pt / e, (1 - pt) / (1 - e))  # stabilised ATE weights (docs/adjuncts.md)
    best = (-1.0, ""), (-1.0, "")
    for cov in covariates:
        values = frame[cov]
        kind = covariate_kind(values)
        if kind == "categorical":
            text = values.astype(object).to_numpy()
            levels = pd.unique(text)
            if len(levels) < 2:
                continue
            x = np.column_stack([(text == lv).astype(float) for lv in levels])
            kind = "binary" if len(levels) == 2 else "categorical"
            if kind == "binary":
                x = x[:, 1]
        else:
            x = values.to_numpy(dtype=float)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            s0 = abs(smd(x, t, 1.0, 0.0, kind=kind))
            s1 = abs(smd(x, t, 1.0, 0.0, w, kind=kind, denominator="unweighted"))
        best = ((s0, cov) if np.isfinite(s0) and s0 > best[0][0] else best[0],
                (s1, cov) if np.isfinite(s1) and s1 > best[1][0] else best[1])
    if best[0][0] >= 0:
        out["max_smd"], out["max_smd_covariate"] = best[0]
    if best[1][0] >= 0:
        out["max_smd_weighted"], out["max_smd_weighted_covariate"] = best[1]
    return out


def _trust(kind: str, *, n1: int, n0: int, ev1: float | None, nonev1: float | None, diag: dict | None,
           small_n: int, extra: Sequence[str] = ()) -> str:
    flags = []
    if kind == "within":
        if n1 < small_n:
            flags.append(f"small n ({n1} patients with exposed and unexposed intervals)")
    elif n1 < small_n or n0 < small_n:
        flags.append(f"small n ({n1} exposed, {n0} reference)")
    if ev1 is not None and ev1 < 10:
        flags.append(f"few events in exposed ({int(ev1)})")
    if nonev1 is not None and nonev1 < 10:
        flags.append(f"few non-events in exposed ({int(nonev1)})")
    if diag is not None and kind == "crude" and np.isfinite(diag["max_smd"]) and diag["max_smd"] > 0.1:
        flags.append(f"imbalance: max |SMD| {diag['max_smd']:.2f} ({diag['max_smd_covariate']}); crude estimate confounded")
    if diag is not None and kind == "adjusted":
        if np.isfinite(diag["common_support"]) and diag["common_support"] < 0.95:
            flags.append(f"poor overlap: {1 - diag['common_support']:.0%} of rows outside the propensity common support")
        if np.isfinite(diag["max_smd_weighted"]) and diag["max_smd_weighted"] > 0.1:
            flags.append(f"residual imbalance after weighting: |SMD| {diag['max_smd_weighted']:.2f} "
                         f"({diag['max_smd_weighted_covariate']})")
    flags.extend(extra)
    return "; ".join(flags) if flags else "ok"


def _resolve_adjuncts(adjuncts, tables) -> list[str]:
    available = []
    for tab in (tables.courses, tables.relapse, tables.durability):
        if tab is not None:
            available += [c for c in adjunct_columns(tab) if c not in available]
    if adjuncts is None:
        return available
    if isinstance(adjuncts, str):
        adjuncts = [adjuncts]
    out = []
    for a in adjuncts:
        if a in available:
            out.append(a)
        elif f"drug_{a}" in available:
            out.append(f"drug_{a}")
        elif f"class_{a}" in available:
            out.append(f"class_{a}")
        else:
            raise KeyError(f"adjunct {a!r} is not an exposure column; columns are: {', '.join(available) or '(none)'}")
    return list(dict.fromkeys(out))


def _duplicates(adjuncts: list[str], tables) -> dict[str, str]:
    """class_* columns identical to a drug_* column in every table (a class with one drug)."""
    dup = {}
    tabs = [t for t in (tables.courses, tables.relapse, tables.durability) if t is not None]
    for c in [a for a in adjuncts if a.startswith("class_")]:
        for d in [a for a in adjuncts if a.startswith("drug_")]:
            if all(c in t and d in t and (t[c].astype(bool).to_numpy() == t[d].astype(bool).to_numpy()).all() for t in tabs):
                dup[c] = d
                break
    return dup


def _label(adjunct: str) -> str:
    if adjunct.startswith("drug_"):
        return adjunct[5:].replace("_", " ")
    if adjunct.startswith("class_"):
        return adjunct[6:].replace("_", " ") + " (class)"
    return adjunct


# ----------------------------------------------------------------------------------------
def compare_adjuncts(
    outcomes,
    *,
    adjuncts: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    reference: str = "none",
    dataset=None,
    conf_level: float = 0.95,
    min_exposed: int = 11,
    session_covariates: Sequence[str] = (),
    small_n: int = 50,
    max_interval_stratum: int | None = 10,
) -> AdjunctComparison:
    """Compare every adjunct with a reference group on every outcome measure.

    Parameters
    ----------
    outcomes : analysis.Outcomes
        From :func:`analysis.derive_outcomes` (or any object with ``courses``,
        ``relapse`` and ``durability`` tables of the same columns, and optionally the
        ``definitions`` they were derived under: :func:`analysis.outcomes.definitions_of`).
    adjuncts : sequence of str, optional
        Exposure columns (``"drug_lamotrigine"``, ``"class_benzodiazepine"``; a bare drug
        or class name is looked up). Default: every ``drug_*`` and ``class_*`` column; a
        class column identical to one of its drugs (a class with a single drug in the
        data) is reported once, under the drug.
    covariates : sequence of str, optional
        Patient-level adjustment set (columns of ``courses``; carried to the relapse and
        durability tables by patient). Default :data:`DEFAULT_COVARIATES`: age, sex,
        diagnosis, prior treatment failures, comorbid PTSD, baseline score, baseline GAD-7
        (read from ``dataset``) and site; a default the data lack is left out with a note
        (an explicit covariate that cannot be found is an error).
        Text columns become indicators against their first level; levels with fewer than
        11 rows in an analysis are pooled with the most frequent level (noted).
    reference : {"none", "unexposed"}, default "none"
        "none": the adjunct *alone* (patients on it and on no other adjunct considered;
        its own class or drugs do not count as other) against patients (or infusions) on
        none of the adjuncts considered: a clean contrast "adjunct vs no adjunct" that
        co-medication cannot bias; the co-medicated are left out and counted
        (``n_coexposed_excluded``). "unexposed": everyone on the adjunct against everyone
        not on it, including patients on other adjuncts (larger groups, but a reference
        that changes with every row, and other adjuncts confound unless added to
        ``covariates``).
    dataset : analysis.Dataset, optional
        Needed for baseline scores of other instruments (``baseline_gad7``).
    conf_level : float, default 0.95
    min_exposed : int, default 11
        An estimate needs at least this many exposed and reference patients (and the
        within-patient HR this many patients with both exposed and unexposed intervals);
        11 is the smallest count that small-cell rules let a report show.
    session_covariates : sequence of str, default ()
        Session-level columns of the durability table (``dose_mg_per_kg``,
        ``dissociation``) added to the durability models, including the within-patient one.
    small_n : int, default 50
        Group size below which an estimate is flagged "small n".
    max_interval_stratum : int or None, default 10
        PWP strata: intervals numbered this or higher share one baseline hazard.

    Returns
    -------
    AdjunctComparison

    Examples
    --------
    >>> import analysis
    >>> from analysis.adjuncts import compare_adjuncts
    >>> ds = analysis.load_dataset("data/sample")
    >>> cmp = compare_adjuncts(analysis.derive_outcomes(ds), dataset=ds, adjuncts=["lamotrigine"])
    >>> cmp.formatted().loc["drug_lamotrigine", ["response_or_crude", "response_or_adjusted"]].tolist()
    ['0.68 (0.38-1.23)', '1.01 (0.48-2.10)']
    >>> axes = cmp.plot()
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))}; got {reference!r}")
    conf_level = check_conf_level(conf_level)
    definitions = definitions_of(outcomes)
    tables, covariates = outcome_tables(outcomes, covariates, dataset, default_covariates=covariates is None)
    notes = list(tables.notes)
    if definitions.relapse_confirmations >= 2 and tables.durability is not None:
        notes.append(f"relapse needs {definitions.relapse_confirmations} confirming scores here (the outcomes' "
                     "relapse_confirmations): a relapse shortly before the next infusion cannot be confirmed and is "
                     "censored, which attenuates interval hazard ratios towards 1 (in simulation the within-patient "
                     "rapamycin HR of 0.5 was estimated as 0.58 with 2); derive with relapse_confirmations=1 as "
                     "a sensitivity analysis (docs/adjuncts.md)")
    candidates = _resolve_adjuncts(adjuncts, tables)
    dup = _duplicates(candidates, tables)
    for c, d in dup.items():
        notes.append(f"{c} is the same exposure as {d} in every table (the only drug of its class): reported once, as {d}")
    considered = [a for a in candidates if a not in dup]
    adj_text = ", ".join(covariates) if covariates else "nothing"

    # complete cases for the covariates, counted
    def complete(tab, name, extra=()):
        if tab is None:
            return None
        cols = [c for c in [*covariates, *extra] if c in tab.columns]
        missing = [c for c in [*covariates, *extra] if c not in tab.columns]
        if missing:
            raise KeyError(f"{name}: column(s) {', '.join(map(repr, missing))} not found")
        bad = tab[cols].isna().any(axis=1)
        if bad.any():
            per = {c: int(tab[c].isna().sum()) for c in cols if tab[c].isna().any()}
            unit = "patients" if name in ("courses", "relapse") else "intervals"
            notes.append(f"{name}: {int(bad.sum())} {unit} left out for missing covariates "
                         f"({', '.join(f'{k}: {v}' for k, v in per.items())}); every estimate uses the same complete cases")
        return tab.loc[~bad]

    courses = tables.courses
    courses = courses[courses["category"].notna()] if "category" in courses else courses
    courses = complete(courses, "courses")
    relapse = complete(tables.relapse, "relapse")
    durability = complete(tables.durability, "durability", tuple(session_covariates))

    design_rows = {
        "response_or_crude": "between-patient, crude: odds ratio of the 2x2 table (Woolf interval); patients with an endpoint",
        "response_or_adjusted": f"between-patient, adjusted for {adj_text}: logistic regression",
        "response_rd_crude": "between-patient, crude: difference of response proportions (Wald interval, unpooled SE)",
        "response_rd_adjusted": f"between-patient, adjusted for {adj_text}: standardised (g-computation) risk "
                                "difference from the logistic model, delta-method interval",
        "remission_or_crude": "between-patient, crude: odds ratio of the 2x2 table (Woolf interval)",
        "remission_or_adjusted": f"between-patient, adjusted for {adj_text}: logistic regression",
        "category_or_adjusted": f"between-patient, adjusted for {adj_text}: proportional-odds model (polr); OR of a "
                                "better category (non-responder < partial < responder)",
        "relapse_hr_crude": "between-patient, crude: Cox model of time to relapse after induction (followed "
                            "responders), exposure at the end-of-induction session",
        "relapse_hr_adjusted": f"between-patient, adjusted for {adj_text}: Cox model of time to relapse after induction, "
                               "exposure at the end-of-induction session",
        "durability_hr_crude": "between-patient, crude: PWP gap-time Cox model of every infusion's relapse interval "
                               "(strata by interval number), robust SE clustered by patient; exposure at each infusion",
        "durability_hr_adjusted": f"between-patient, adjusted for {adj_text}"
                                  + (f" and {', '.join(session_covariates)}" if session_covariates else "")
                                  + ": PWP gap-time Cox model, robust SE clustered by patient; exposure at each infusion",
        "durability_hr_within": "within-patient: gap-time Cox model stratified by patient; each patient's exposed and "
                                "unexposed infusions are compared, so between-patient confounding (measured or not) is "
                                "removed; only patients with both inform it"
                                + (f"; adjusted for {', '.join(session_covariates)}" if session_covariates else ""),
    }

    estimates: list[dict] = []
    rows: list[dict] = []
    bal_rows: list[dict] = []
    below = []
    all_tables = [t for t in (courses, relapse, durability) if t is not None]

    def prepare(tab, adjunct, related, extra_cols, population):
        e, ref, n_coexposed = groups(tab, adjunct, candidates, related, reference)
        keep_rows = e | ref
        sub = tab.loc[keep_rows]
        covs = [c for c in covariates if c not in related]
        design = numeric_design(sub, covs)
        frame = pd.concat([sub[extra_cols].reset_index(drop=True), design.frame.reset_index(drop=True)], axis=1)
        frame[EXPOSED] = e[keep_rows].astype(float)
        cols = [c for cs in design.columns.values() for c in cs]
        keep, const = drop_constant(frame, cols)
        dropped = [cov for cov, cs in design.columns.items() if cs and all(c in const for c in cs)]
        dropped += [c for c in covariates if c in related]
        diag_frame = pd.concat([sub[covs].reset_index(drop=True), frame[[EXPOSED]]], axis=1)
        prep = {"frame": frame, "cols": keep, "dropped": dropped, "n_coexposed": n_coexposed, "covs": covs,
                "design_notes": [f"{adjunct}, {population}: {n}" for n in design.notes], "diag_frame": diag_frame}
        return prep

    def diagnose(prep, adjunct, population, n1, n0):
        notes.extend(prep["design_notes"])
        diag = _diagnostics(prep["diag_frame"], prep["covs"], prep["frame"][prep["cols"]])
        bal_rows.append({"adjunct": adjunct, "population": population, "n_exposed": n1, "n_reference": n0, **diag})
        return diag

    def constant_note(prep):
        return [f"not adjusted for (constant here, or the exposure itself): {', '.join(prep['dropped'])}"] \
            if prep["dropped"] else []

    def add(adjunct, measure, est, lo, hi, p, n1, n0, ev1, ev0, trust):
        estimates.append({"adjunct": adjunct, "measure": measure, "outcome": MEASURES[measure][0],
                          "scale": MEASURES[measure][2], "estimate": est, "ci_lower": lo, "ci_upper": hi, "p_value": p,
                          "n_exposed": n1, "n_reference": n0, "events_exposed": ev1, "events_reference": ev0,
                          "design": design_rows[measure], "trust": trust})

    def pick(fit):
        if fit is None:
            return np.nan, np.nan, np.nan, np.nan
        s = fit.summary.loc[EXPOSED]  # the results convention (docs/api.md): hazard or odds ratio
        return s["ratio"], s["ratio_lower"], s["ratio_upper"], s["p_value"]

    for adjunct in considered:
        related = related_adjuncts(adjunct, candidates, all_tables)
        row = {"adjunct": adjunct, "label": _label(adjunct),
               "kind": "class" if adjunct.startswith("class_") else "drug" if adjunct.startswith("drug_") else "other"}
        present = False
        # ---------------- course outcomes ------------------------------------------------
        if courses is not None and adjunct in courses:
            prep = prepare(courses, adjunct, related, ["category", "remission"], "courses")
            frame, cols = prep["frame"], prep["cols"]
            frame["y_response"] = (frame["category"].astype(object) == "responder").astype(float)
            frame["y_remission"] = frame["remission"].astype("Float64").astype(float)
            e = frame[EXPOSED].to_numpy() == 1
            n1, n0 = int(e.sum()), int((~e).sum())
            row.update(n_exposed=n1, n_reference=n0, n_coexposed_excluded=prep["n_coexposed"])
            if n1 >= min_exposed and n0 >= min_exposed:
                present = True
                diag = diagnose(prep, adjunct, "courses", n1, n0)
                extra_notes = constant_note(prep)
                rhs = " + ".join([EXPOSED, *cols])
                for outcome, key in (("y_response", "response"), ("y_remission", "remission")):
                    y = frame[outcome].to_numpy()
                    cb = crude_binary(y, e, conf_level)
                    row.update({f"{key}_pct_exposed": 100 * cb["p1"], f"{key}_pct_reference": 100 * cb["p0"]})
                    counts = dict(n1=n1, n0=n0, ev1=cb["events1"], nonev1=n1 - cb["events1"])
                    crude_trust = _trust("crude", diag=diag, small_n=small_n, **counts)
                    add(adjunct, f"{key}_or_crude", cb["odds_ratio"], cb["or_lower"], cb["or_upper"], cb["or_p"], n1, n0,
                        cb["events1"], cb["events0"], crude_trust)
                    if key == "response":
                        add(adjunct, "response_rd_crude", cb["rd"], cb["rd_lower"], cb["rd_upper"], cb["rd_p"], n1, n0,
                            cb["events1"], cb["events0"], crude_trust)
                    caught = _Caught()
                    if min(cb["events1"], n1 - cb["events1"], cb["events0"], n0 - cb["events0"]) == 0:
                        caught.messages.append("not estimated: a group has no events or only events (empty 2x2 cell)")
                        fit = None
                    else:
                        fit = caught(logistic, f"{outcome} ~ {rhs}", frame, conf_level=conf_level)
                    add(adjunct, f"{key}_or_adjusted", *pick(fit), n1, n0, cb["events1"], cb["events0"],
                        _trust("adjusted", diag=diag, small_n=small_n, extra=extra_notes + caught.messages, **counts))
                    if key == "response":
                        caught2 = _Caught()
                        rd = caught2(fit.risk_difference, EXPOSED) if fit is not None else None
                        est = lo = hi = p = np.nan
                        if rd is not None:
                            s = rd.loc["difference"]
                            est, lo, hi, p = s["estimate"], s["ci_lower"], s["ci_upper"], s["p_value"]
                        add(adjunct, "response_rd_adjusted", est, lo, hi, p, n1, n0, cb["events1"], cb["events0"],
                            _trust("adjusted", diag=diag, small_n=small_n,
                                   extra=extra_notes + caught.messages + caught2.messages, **counts))
                caught = _Caught()
                fit = caught(ordinal, f"category ~ {rhs}", frame, conf_level=conf_level)
                add(adjunct, "category_or_adjusted", *pick(fit), n1, n0, np.nan, np.nan,
                    _trust("adjusted", n1=n1, n0=n0, ev1=None, nonev1=None, diag=diag, small_n=small_n,
                           extra=extra_notes + caught.messages))
        # ---------------- relapse after induction ----------------------------------------
        if relapse is not None and adjunct in relapse and len(relapse):
            prep = prepare(relapse, adjunct, related, ["time", "event"], "relapse")
            frame, cols = prep["frame"], prep["cols"]
            e = frame[EXPOSED].to_numpy() == 1
            n1, n0 = int(e.sum()), int((~e).sum())
            ev = frame["event"].to_numpy(dtype=float)
            row.update(relapse_n_exposed=n1, relapse_n_reference=n0)
            if n1 >= min_exposed and n0 >= min_exposed:
                present = True
                diag = diagnose(prep, adjunct, "relapse", n1, n0)
                ev1, ev0 = int(ev[e].sum()), int(ev[~e].sum())
                km = _Caught()(kaplan_meier, frame, "time", "event", group=EXPOSED, conf_level=conf_level)
                if km is not None:
                    med = km.median.set_index("group")["median"]
                    row.update(relapse_median_exposed=med.get(1.0, np.nan), relapse_median_reference=med.get(0.0, np.nan))
                extra_notes = constant_note(prep)
                for key, rhs in (("relapse_hr_crude", EXPOSED), ("relapse_hr_adjusted", " + ".join([EXPOSED, *cols]))):
                    caught = _Caught()
                    fit = caught(cox, rhs, frame, duration="time", event="event", conf_level=conf_level, table="relapse")
                    kind = "crude" if key.endswith("crude") else "adjusted"
                    add(adjunct, key, *pick(fit), n1, n0, ev1, ev0,
                        _trust(kind, n1=n1, n0=n0, ev1=ev1, nonev1=None, diag=diag, small_n=small_n,
                               extra=(extra_notes if kind == "adjusted" else []) + caught.messages))
        # ---------------- per-infusion durability ----------------------------------------
        if durability is not None and adjunct in durability and len(durability):
            extra_cols = list(dict.fromkeys(["patient_id", "interval", "time", "event", *session_covariates]))
            prep = prepare(durability, adjunct, related, extra_cols, "durability")
            frame, cols = prep["frame"], prep["cols"]
            e = frame[EXPOSED].to_numpy() == 1
            pid = frame["patient_id"].to_numpy()
            p1 = int(pd.unique(pid[e]).size)
            p0 = int(pd.unique(pid[~e]).size)
            ev = frame["event"].to_numpy(dtype=float)
            row.update(durability_patients_exposed=p1, durability_patients_reference=p0,
                       durability_intervals_exposed=int(e.sum()), durability_intervals_reference=int((~e).sum()))
            sess_cols = list(session_covariates)
            if p1 >= min_exposed and p0 >= min_exposed:
                present = True
                diag = diagnose(prep, adjunct, "durability", p1, p0)
                ev1, ev0 = int(ev[e].sum()), int(ev[~e].sum())
                km = _Caught()(kaplan_meier, frame, "time", "event", group=EXPOSED, conf_level=conf_level)
                if km is not None:
                    med = km.median.set_index("group")["median"]
                    row.update(durability_median_exposed=med.get(1.0, np.nan),
                               durability_median_reference=med.get(0.0, np.nan))
                extra_notes = constant_note(prep)
                for key, rhs in (("durability_hr_crude", EXPOSED),
                                 ("durability_hr_adjusted", " + ".join([EXPOSED, *cols, *sess_cols]))):
                    caught = _Caught()
                    fit = caught(pwp_gap, rhs, frame, max_stratum=max_interval_stratum, conf_level=conf_level)
                    kind = "crude" if key.endswith("crude") else "adjusted"
                    add(adjunct, key, *pick(fit), p1, p0, ev1, ev0,
                        _trust(kind, n1=p1, n0=p0, ev1=ev1, nonev1=None, diag=diag, small_n=small_n,
                               extra=(extra_notes if kind == "adjusted" else []) + caught.messages))
            # within-patient: patients with both exposed and reference intervals
            g = pd.DataFrame({"pid": pid, "e": e}).groupby("pid", sort=False)["e"].agg(["min", "max"])
            both = g.index[(~g["min"].astype(bool)) & g["max"].astype(bool)]
            nb = int(len(both))
            row["within_n_patients"] = nb
            if nb >= min_exposed:
                present = True
                wf = frame.loc[pd.Index(pid).isin(both)]
                we = wf[EXPOSED].to_numpy() == 1
                wev = wf["event"].to_numpy(dtype=float)
                caught = _Caught()
                fit = caught(within_patient, " + ".join([EXPOSED, *sess_cols]), wf, conf_level=conf_level)
                add(adjunct, "durability_hr_within", *pick(fit), nb, nb, int(wev[we].sum()), int(wev[~we].sum()),
                    _trust("within", n1=nb, n0=nb, ev1=int(wev[we].sum()), nonev1=None, diag=None, small_n=small_n,
                           extra=caught.messages))
        if present:
            rows.append(row)
        else:
            below.append(adjunct)
    if below:
        notes.append(f"fewer than {min_exposed} exposed (or reference) patients in every analysis, not compared: "
                     f"{', '.join(below)}")

    est = pd.DataFrame(estimates, columns=["adjunct", "measure", "outcome", "scale", "estimate", "ci_lower", "ci_upper",
                                           "p_value", "n_exposed", "n_reference", "events_exposed", "events_reference",
                                           "design", "trust"])
    est = _multiplicity(est)
    _flag_disagreement(est)
    table = _wide(pd.DataFrame(rows), est)
    design = pd.DataFrame([{"measure": m, "outcome": MEASURES[m][0], "estimate": MEASURES[m][1], "scale": MEASURES[m][2],
                            "design": design_rows[m]} for m in MEASURES])
    balance_table = pd.DataFrame(bal_rows)
    labels = {a: _label(a) for a in considered}
    return AdjunctComparison(table, est, design, notes, balance_table, list(covariates), reference, conf_level,
                             min_exposed, labels)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: statsmodels' ``multipletests(p, method="holm")[1]``
    operation for operation (the same sort, products and running maximum, so the same bits),
    without the ``gc.collect()`` that statsmodels runs on every Holm call (0.1 s or more each
    in a kernel holding a report's objects; a report makes a dozen)."""
    p = np.asarray(p)
    order = np.argsort(p)
    ranked = np.take(p, order)
    adjusted = np.maximum.accumulate(ranked * np.arange(len(ranked), 0, -1))
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def _multiplicity(est: pd.DataFrame) -> pd.DataFrame:
    """Holm and Benjamini-Hochberg adjusted p-values across adjuncts, per measure."""
    from statsmodels.stats.multitest import multipletests

    est = est.copy()
    est["p_holm"] = np.nan
    est["p_bh"] = np.nan
    for _, idx in est.groupby("measure", sort=False).groups.items():
        p = est.loc[idx, "p_value"]
        ok = p.notna()
        if ok.any():
            est.loc[p.index[ok], "p_holm"] = _holm(p[ok].to_numpy(float))
            est.loc[p.index[ok], "p_bh"] = multipletests(p[ok].to_numpy(float), method="fdr_bh")[1]
    cols = [c for c in est.columns if c not in ("design", "trust")] + ["design", "trust"]
    return est[cols]


def _flag_disagreement(est: pd.DataFrame) -> None:
    """Flag a between-patient durability HR outside the within-patient interval: the
    difference is between-patient confounding that the covariates did not remove."""
    for adjunct, g in est.groupby("adjunct", sort=False):
        w = g[g["measure"] == "durability_hr_within"]
        if w.empty or not np.isfinite(w["estimate"].iloc[0]):
            continue
        lo, hi, wv = w["ci_lower"].iloc[0], w["ci_upper"].iloc[0], w["estimate"].iloc[0]
        for m in ("durability_hr_crude", "durability_hr_adjusted"):
            r = g[g["measure"] == m]
            if r.empty or not np.isfinite(r["estimate"].iloc[0]):
                continue
            v = r["estimate"].iloc[0]
            if v < lo or v > hi:
                i = r.index[0]
                msg = (f"outside the within-patient interval ({wv:.2f}, {lo:.2f}-{hi:.2f}): "
                       "between-patient confounding not removed by the covariates")
                est.loc[i, "trust"] = msg if est.loc[i, "trust"] == "ok" else est.loc[i, "trust"] + "; " + msg


def _wide(rows: pd.DataFrame, est: pd.DataFrame) -> pd.DataFrame:
    base_cols = ["adjunct", "label", "kind", "n_exposed", "n_reference", "n_coexposed_excluded", "response_pct_exposed", "response_pct_reference",
                 "remission_pct_exposed", "remission_pct_reference", "relapse_n_exposed", "relapse_n_reference",
                 "relapse_median_exposed", "relapse_median_reference", "durability_patients_exposed",
                 "durability_patients_reference", "durability_intervals_exposed", "durability_intervals_reference",
                 "durability_median_exposed", "durability_median_reference", "within_n_patients"]
    table = rows.reindex(columns=base_cols) if len(rows) else pd.DataFrame(columns=base_cols)
    for c in base_cols:
        if c.startswith(("n_", "relapse_n", "durability_patients", "durability_intervals", "within_n")):
            table[c] = pd.array(table[c], dtype="Int64")
    parts = {}
    for m in MEASURES:
        sub = est[est["measure"] == m].set_index("adjunct")
        for src, suffix in (("estimate", ""), ("ci_lower", "_lower"), ("ci_upper", "_upper"), ("p_value", "_p"),
                            ("p_holm", "_p_holm"), ("p_bh", "_p_bh"), ("trust", "_trust")):
            parts[m + suffix] = table["adjunct"].map(sub[src]) if len(sub) else pd.Series(np.nan, index=table.index)
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(parts).reset_index(drop=True)], axis=1)
