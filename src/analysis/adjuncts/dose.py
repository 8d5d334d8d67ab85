"""Benzodiazepine dose and response: the dose in diazepam equivalents as a continuous and a
banded covariate, and adjusted models of response (logistic) and of the response category
(proportional odds) by band, per 10 mg, and per 10 mg above the Andrashko threshold
(``docs/adjuncts.md`` section 5).

Andrashko et al. (2020) found worse outcomes of ketamine at days 3 and 7 in patients taking
more than about 8 mg diazepam-equivalent a day; lower doses did not clearly blunt the
response. Hence the default bands (none, up to 8 mg, 8-20 mg, above 20 mg) and the
"excess above 8 mg" term, which is 0 up to the threshold and rises linearly above it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._kernel import check_conf_level, with_aliases
from ..response import logistic, ordinal, wilson_interval
from ._frames import drop_constant, numeric_design, outcome_tables

__all__ = ["BenzodiazepineDose", "benzodiazepine_dose", "dose_bands"]

MEASURES = ("response", "remission", "category")
#: columns of ``BenzodiazepineDose.table``: the results convention (docs/api.md) per model term
TABLE_COLUMNS = ["measure", "model", "term", "coef", "se", "statistic", "p_value", "ci_lower", "ci_upper", "ratio",
                 "ratio_lower", "ratio_upper", "n_obs"]
#: names of the previous release, for one release (``ci_lower``/``ci_upper`` were the odds
#: ratio's limits then; they are the coefficient's now, as in every summary)
TABLE_ALIASES = {"odds_ratio": "ratio", "n": "n_obs"}


def _fmt(x: float) -> str:
    return f"{x:g}"


def dose_bands(dze_mg: pd.Series, bands: Sequence[float] = (0, 8, 20, math.inf)) -> pd.Series:
    """Band of each diazepam-equivalent dose: ``"none"`` for 0, then right-closed bands
    ``(a, b]`` from consecutive ``bands`` edges (the last ``"> a mg"`` when b is inf).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.adjuncts import dose_bands
    >>> dose_bands(pd.Series([0, 5, 8, 10, 40])).astype(str).tolist()
    ['none', '(0, 8] mg', '(0, 8] mg', '(8, 20] mg', '> 20 mg']
    """
    edges = [float(b) for b in bands]
    if len(edges) < 2 or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bands must start at 0 and increase, e.g. (0, 8, 20, inf); got {tuple(bands)}")
    labels = ["none"]
    for a, b in zip(edges, edges[1:]):
        labels.append(f"> {_fmt(a)} mg" if math.isinf(b) else f"({_fmt(a)}, {_fmt(b)}] mg")
    x = pd.to_numeric(dze_mg, errors="coerce").to_numpy(dtype=float)
    if np.nanmin(x, initial=0.0) < 0:
        raise ValueError("benzodiazepine doses must be >= 0 mg")
    codes = np.full(len(x), -1)
    codes[x == 0] = 0
    for i, (a, b) in enumerate(zip(edges, edges[1:]), start=1):
        codes[(x > a) & (x <= b)] = i
    if not math.isinf(edges[-1]) and np.any(x > edges[-1]):
        raise ValueError(f"doses above the last band edge ({edges[-1]:g} mg): end the bands with inf")
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels, ordered=True), index=dze_mg.index,
                     name="dze_band")


@dataclass
class BenzodiazepineDose:
    """Result of :func:`benzodiazepine_dose`.

    Attributes
    ----------
    rates : pandas.DataFrame
        Per band: patients, responders, response % with Wilson interval, remitters,
        remission %, mean and range of the dose.
    table : pandas.DataFrame
        One row per model and term: ``measure`` (response: logistic; remission: logistic;
        category: proportional odds), ``model`` ("bands", "per 10 mg", "per 10 mg above
        threshold", "linear + excess"), ``term``, then the summary columns of the results
        convention (``docs/api.md``): ``coef`` (log-odds), ``se``, ``statistic``,
        ``p_value``, ``ci_lower``, ``ci_upper`` (of ``coef``), the odds ratio ``ratio``,
        ``ratio_lower``, ``ratio_upper``, and ``n_obs``. ``odds_ratio`` and ``n`` still
        work for one release (DeprecationWarning); ``ci_lower``/``ci_upper`` were the odds
        ratio's limits in the previous release and are now the coefficient's (the odds
        ratio's are ``ratio_lower``/``ratio_upper``).
    data : pandas.DataFrame
        Analysis rows (aggregate use only): dose, band, continuous terms, outcomes.
    notes : list of str
    """

    rates: pd.DataFrame
    table: pd.DataFrame
    data: pd.DataFrame
    covariates: list
    threshold_mg: float
    per_mg: float
    notes: list

    def plot(self, ax=None):
        """Two panels: response % by band (Wilson CIs), and the adjusted odds ratios of
        response by band against no benzodiazepine (log scale). Returns the axes."""
        from .comparison import _log_ratio_axis

        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(8.0, 3.2), layout="constrained")
            axes = fig.subplots(1, 2)
        else:
            axes = np.ravel(ax)
        r = self.rates
        x = np.arange(len(r))
        axes[0].bar(x, r["response_pct"], color="#1f5f9e")
        axes[0].errorbar(x, r["response_pct"], yerr=[r["response_pct"] - r["response_lower"],
                                                     r["response_upper"] - r["response_pct"]],
                         fmt="none", color="black", capsize=3)
        axes[0].set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(r["band"], r["n"])], fontsize=7)
        axes[0].set_ylabel("response % (95% CI)")
        axes[0].set_title("crude response by diazepam-equivalent dose", fontsize=9)
        if len(axes) > 1:
            t = self.table[(self.table["model"] == "bands") & (self.table["measure"] == "response")]
            y = np.arange(len(t))[::-1]
            axes[1].errorbar(t["ratio"], y, xerr=[t["ratio"] - t["ratio_lower"], t["ratio_upper"] - t["ratio"]],
                             fmt="s", color="#1f5f9e", capsize=3)
            axes[1].axvline(1.0, color="grey", linestyle="--", linewidth=0.8)
            if len(t):
                _log_ratio_axis(axes[1])
            axes[1].set_yticks(y, t["term"].tolist(), fontsize=7)
            axes[1].set_xlabel("adjusted odds ratio of response vs none")
            axes[1].set_title(f"adjusted (threshold {self.threshold_mg:g} mg)", fontsize=9)
        return axes


def benzodiazepine_dose(
    outcomes,
    *,
    bands: Sequence[float] = (0, 8, 20, math.inf),
    covariates: Sequence[str] | None = None,
    dataset=None,
    measures: Sequence[str] = ("response", "category"),
    threshold_mg: float = 8.0,
    per_mg: float = 10.0,
    conf_level: float = 0.95,
    exclude_other_adjuncts: Sequence[str] = (),
) -> BenzodiazepineDose:
    """Dose-response of benzodiazepines on the induction outcome.

    The dose is the course's ``benzo_dze_mg``: the largest total diazepam-equivalent dose
    over the induction sessions (0 without a benzodiazepine; Ashton 2002 equivalences,
    ``analysis.drugs``). Patients whose dose is unknown are left out (counted in notes).

    Parameters
    ----------
    outcomes : analysis.Outcomes
    bands : sequence of float, default (0, 8, 20, inf)
        Band edges in mg; bands are "none" (0 mg) and right-closed (a, b].
    covariates : sequence of str, optional
        Adjustment set; default as :func:`compare_adjuncts` (with ``baseline_gad7`` from
        ``dataset``: anxiety drives both benzodiazepine use and dose).
    dataset : analysis.Dataset, optional
    measures : sequence of {"response", "remission", "category"}, default ("response", "category")
        Logistic models for response and remission, proportional odds for the category.
    threshold_mg : float, default 8.0
        Andrashko 2020's threshold for the "per 10 mg above threshold" term.
    per_mg : float, default 10.0
        Unit of the continuous terms (odds ratio per ``per_mg`` mg).
    conf_level : float, default 0.95
    exclude_other_adjuncts : sequence of str, default ()
        Exposure columns whose patients are left out (e.g. ``["drug_lamotrigine"]``).

    Returns
    -------
    BenzodiazepineDose

    Examples
    --------
    >>> import analysis
    >>> from analysis.adjuncts import benzodiazepine_dose
    >>> ds = analysis.load_dataset("data/sample")
    >>> res = benzodiazepine_dose(analysis.derive_outcomes(ds), dataset=ds)
    >>> res.rates[["band", "n", "responders"]]
             band    n  responders
    0        none  397         240
    1   (0, 8] mg   20          14
    2  (8, 20] mg   65          27
    3     > 20 mg   12           3
    >>> t = res.table.set_index(["measure", "model", "term"])
    >>> t.loc[("response", "per 10 mg above 8 mg", "per 10 mg above 8 mg"), ["ratio", "ratio_lower", "ratio_upper"]].round(2).tolist()
    [0.6, 0.41, 0.88]
    """
    conf_level = check_conf_level(conf_level)
    bad = [m for m in measures if m not in MEASURES]
    if bad:
        raise ValueError(f"measures must be among {', '.join(MEASURES)}; got {', '.join(map(repr, bad))}")
    tables, covariates = outcome_tables(outcomes, covariates, dataset, default_covariates=covariates is None)
    notes = list(tables.notes)
    covariates = [c for c in covariates if c not in ("benzo_dze_mg", "class_benzodiazepine")]
    c = tables.courses
    if "benzo_dze_mg" not in c.columns:
        raise KeyError("courses: column 'benzo_dze_mg' not found (derive the outcomes with analysis.derive_outcomes)")
    c = c[c["category"].notna()]
    for col in exclude_other_adjuncts:
        if col not in c.columns:
            raise KeyError(f"courses: exposure column {col!r} not found")
        n = int(c[col].astype(bool).sum())
        if n:
            notes.append(f"{n} patients on {col} left out")
        c = c[~c[col].astype(bool)]
    unknown = c["benzo_dze_mg"].isna()
    if unknown.any():
        notes.append(f"{int(unknown.sum())} patients with an unknown benzodiazepine dose left out")
    miss = c[covariates].isna().any(axis=1) & ~unknown
    if miss.any():
        notes.append(f"{int(miss.sum())} patients left out for missing covariates")
    c = c[~unknown & ~c[covariates].isna().any(axis=1)]
    dze = c["benzo_dze_mg"].astype(float)
    band = dose_bands(dze, bands)
    design = numeric_design(c, covariates)
    notes += design.notes
    frame = design.frame.reset_index(drop=True)
    cols, const = drop_constant(frame, [x for cs in design.columns.values() for x in cs])
    if const:
        notes.append(f"constant, not adjusted for: {', '.join(const)}")
    frame["dze_mg"] = dze.to_numpy()
    frame["dze_per_unit"] = dze.to_numpy() / per_mg
    frame["dze_excess"] = np.maximum(dze.to_numpy() - threshold_mg, 0.0) / per_mg
    frame["dze_band"] = band.to_numpy()
    frame["category"] = c["category"].reset_index(drop=True)
    frame["y_response"] = (c["category"].astype(object) == "responder").to_numpy(dtype=float)
    frame["y_remission"] = c["remission"].astype("Float64").astype(float).to_numpy()

    # rates per band
    rate_rows = []
    for lv in band.cat.categories:
        m = (frame["dze_band"] == lv).to_numpy()
        n = int(m.sum())
        k = int(frame.loc[m, "y_response"].sum())
        kr = int(frame.loc[m, "y_remission"].sum())
        lo, hi = wilson_interval(k, n, conf_level)
        d = frame.loc[m, "dze_mg"]
        rate_rows.append({"band": lv, "n": n, "responders": k, "response_pct": 100 * k / n if n else np.nan,
                          "response_lower": 100 * lo, "response_upper": 100 * hi, "remitters": kr,
                          "remission_pct": 100 * kr / n if n else np.nan,
                          "dze_mean": d.mean() if n else np.nan, "dze_min": d.min() if n else np.nan,
                          "dze_max": d.max() if n else np.nan})
    rates = pd.DataFrame(rate_rows)

    # band indicators against "none" (bands with patients only)
    band_cols = {}
    for i, lv in enumerate(band.cat.categories[1:], start=1):
        m = (frame["dze_band"] == lv).to_numpy()
        if m.sum() == 0:
            notes.append(f"no patients in band {lv}: not modelled")
            continue
        name = f"dze_band_{i}"
        frame[name] = m.astype(float)
        band_cols[name] = lv
    unit = f"per {per_mg:g} mg"
    models = {
        "bands": (list(band_cols), {k: v for k, v in band_cols.items()}),
        unit: (["dze_per_unit"], {"dze_per_unit": unit}),
        f"{unit} above {threshold_mg:g} mg": (["dze_excess"], {"dze_excess": f"{unit} above {threshold_mg:g} mg"}),
        "linear + excess": (["dze_per_unit", "dze_excess"],
                            {"dze_per_unit": unit, "dze_excess": f"change of slope above {threshold_mg:g} mg ({unit})"}),
    }
    rows = []
    for measure in measures:
        lhs = {"response": "y_response", "remission": "y_remission", "category": "category"}[measure]
        for model, (terms, labels) in models.items():
            if not terms or any(frame[t].nunique() < 2 for t in terms):
                notes.append(f"{measure}, {model}: no variation in dose, not fitted")
                continue
            formula = f"{lhs} ~ " + " + ".join([*terms, *cols])
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fit = (ordinal(formula, frame, conf_level=conf_level) if measure == "category"
                           else logistic(formula, frame, conf_level=conf_level))
            except (ValueError, np.linalg.LinAlgError) as exc:
                notes.append(f"{measure}, {model}: not estimated ({exc})")
                continue
            if not fit.converged:
                notes.append(f"{measure}, {model}: the fit did not converge; its estimates are unreliable")
            summary = fit.summary
            for t in terms:
                coef, se, lo, hi, p = (float(summary.loc[t, c]) for c in ("coef", "se", "ci_lower", "ci_upper", "p_value"))
                row = {"measure": measure, "model": model, "term": labels[t], "coef": coef, "se": se,
                       "statistic": coef / se if se > 0 else np.nan, "p_value": p, "ci_lower": lo, "ci_upper": hi,
                       "ratio": math.exp(coef), "ratio_lower": math.exp(lo), "ratio_upper": math.exp(hi),
                       "n_obs": fit.n_obs}
                if measure != "category" and t in band_cols:
                    m = frame[t].to_numpy() == 1
                    k = frame.loc[m, lhs].sum()
                    if k == 0 or k == m.sum():
                        notes.append(f"{measure}, band {band_cols[t]}: {'no' if k == 0 else 'only'} events among "
                                     f"{int(m.sum())} patients, odds ratio not estimable (separation)")
                        for key in TABLE_COLUMNS[3:-1]:
                            row[key] = np.nan
                rows.append(row)
    table = with_aliases(pd.DataFrame(rows, columns=TABLE_COLUMNS), TABLE_ALIASES)
    data = frame[["dze_mg", "dze_band", "dze_per_unit", "dze_excess", "category", "y_response", "y_remission"]]
    return BenzodiazepineDose(rates, table, data, list(covariates), threshold_mg, per_mg, notes)
