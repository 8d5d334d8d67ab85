"""Inverse-probability-weighted comparison of one adjunct: propensity model, weights,
balance before and after weighting, weighted response and remission rates with robust
risk differences, and a weighted Kaplan-Meier and Cox model of relapse after induction
(``docs/adjuncts.md`` section 4).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from patsy import ModelDesc, PatsyError

from .._kernel import ConvergenceWarning, capture_env, check_conf_level, clean_frame, formula_variables
from ..survival import cox, kaplan_meier
from ._frames import REFERENCES, adjunct_columns, groups, outcome_tables, related_adjuncts
from .propensity import Balance, PropensityModel, balance, effective_sample_size, propensity_scores, weighted_risk_difference

__all__ = ["IPWComparison", "ipw_comparison"]

EXPOSED = "exposed"
WEIGHT = "ipw"


@dataclass
class IPWComparison:
    """Result of :func:`ipw_comparison`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per weighted estimate: ``population`` (courses: patients with an endpoint;
        relapse: followed responders), ``measure``, ``estimate``, ``se``, ``ci_lower``,
        ``ci_upper``, ``p_value``.
    rates : pandas.DataFrame
        Weighted response and remission rates per group (n, weighted n, rate, robust SE).
    balance, relapse_balance : Balance
        SMDs before and after weighting (``.table``; ``.plot()`` is the love plot).
    ess : pandas.DataFrame
        Kish effective sample size per population and group, with the group sizes.
    weights : pandas.DataFrame
        Per population the weight distribution (min, quartiles, max) by group.
    propensity, relapse_propensity : PropensityModel
        The fitted propensity models (``.summary``, ``.overlap()``, ``.plot()`` of the
        odds ratios, ``.plot(kind="overlap")`` of the scores).
    km : KaplanMeierResult or None
        Weighted Kaplan-Meier curves of relapse after induction (robust variance).
    cox : CoxResult or None
        Weighted Cox model of relapse after induction, robust (sandwich) SE.
    """

    adjunct: str
    estimand: str
    reference: str
    formula: str
    summary: pd.DataFrame
    rates: pd.DataFrame
    balance: Balance
    ess: pd.DataFrame
    weights: pd.DataFrame
    propensity: PropensityModel
    relapse_propensity: PropensityModel | None
    relapse_balance: Balance | None
    km: object | None
    cox: object | None
    notes: list

    def plot(self, ax=None):
        """Four panels: propensity overlap, love plot, weighted response rates with CIs,
        weighted Kaplan-Meier of relapse after induction. ``ax``: four axes, or None for a
        new figure. Returns the array of axes."""
        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(9.0, 6.5), layout="constrained")
            axes = fig.subplots(2, 2).ravel()
        else:
            axes = np.ravel(ax)
            if len(axes) < 4:
                raise ValueError(f"ipw_comparison.plot needs 4 axes, got {len(axes)}")
        self.propensity.plot(axes[0], kind="overlap")
        axes[0].set_title("propensity overlap (courses)", fontsize=9)
        self.balance.plot(axes[1])
        axes[1].set_title(f"balance, {self.estimand} weights", fontsize=9)
        r = self.rates
        x = np.arange(len(r))
        z = 1.959963984540054
        axes[2].bar(x, 100 * r["rate"], color=["#888888" if g == "reference" else "#1f5f9e" for g in r["group"]])
        axes[2].errorbar(x, 100 * r["rate"], yerr=100 * z * r["se"], fmt="none", color="black", capsize=3)
        axes[2].set_xticks(x, [f"{o}\n{g}" for o, g in zip(r["outcome"], r["group"])], fontsize=7)
        axes[2].set_ylabel("weighted %")
        axes[2].set_title("weighted rates (95% CI)", fontsize=9)
        if self.km is not None:
            self.km.plot(axes[3])
            axes[3].set_title("relapse after induction, weighted KM", fontsize=9)
            axes[3].set_xlabel("days since end of induction")
        else:
            axes[3].set_visible(False)
        return axes

    def __repr__(self) -> str:
        return (f"IPWComparison({self.adjunct!r}, {self.estimand}, reference={self.reference!r})\n"
                f"{self.summary.round(4).to_string()}")


def _formula_columns(rhs: str, columns) -> list[str]:
    """The names the right-hand side refers to (columns of the table and others, such as
    ``baseline_gad7`` still to be read from the dataset), in order of first appearance."""
    try:
        desc = ModelDesc.from_formula("~ " + rhs)
    except PatsyError as exc:
        raise ValueError(f"formula_covariates {rhs!r} could not be parsed: {exc}") from None
    names: list[str] = []
    for code in (f.code for term in desc.rhs_termlist for f in term.factors):
        used, other = formula_variables([code], columns)
        for n in sorted(used + other, key=code.find):
            if n not in names:
                names.append(n)
    return names


def ipw_comparison(
    outcomes,
    adjunct: str,
    formula_covariates: str | Sequence[str],
    *,
    estimand: str = "ATE",
    stabilized: bool = True,
    truncate: tuple[float, float] | None = (1, 99),
    reference: str = "none",
    dataset=None,
    conf_level: float = 0.95,
) -> IPWComparison:
    """Inverse-probability-weighted comparison of one adjunct with its reference group.

    Parameters
    ----------
    outcomes : analysis.Outcomes
    adjunct : str
        Exposure column (``"drug_lamotrigine"``; a bare drug or class name is looked up).
    formula_covariates : str or sequence of str
        Right-hand side of the propensity model (``"age + C(sex) + C(diagnosis) +
        baseline_gad7"``) or a list of columns (joined with ``+``; text columns are
        categorical). ``baseline_<instrument>`` columns are read from ``dataset``.
    estimand : {"ATE", "ATT"}, default "ATE"
    stabilized : bool, default True
    truncate : (low, high) percentiles or None, default (1, 99)
        Weights clipped at these percentiles (Cole & Hernán 2008).
    reference : {"none", "unexposed"}, default "none"
        As :func:`compare_adjuncts`.
    dataset : analysis.Dataset, optional
    conf_level : float, default 0.95

    Returns
    -------
    IPWComparison

    Notes
    -----
    The propensity model is fitted separately in each population: patients with an
    endpoint (response, remission) and followed responders (relapse after induction, with
    exposure at the end-of-induction session), so that each weighted comparison is
    balanced in its own population. Response and remission risk differences are weighted
    least squares with the HC0 sandwich variance, the relapse hazard ratio a weighted Cox
    model with the robust variance (each patient their own cluster); both treat the
    weights as known, which is conservative for ATE weights (Lunceford & Davidian 2004).

    Examples
    --------
    >>> import analysis
    >>> from analysis.adjuncts import ipw_comparison
    >>> ds = analysis.load_dataset("data/sample"); out = analysis.derive_outcomes(ds)
    >>> res = ipw_comparison(out, "drug_lamotrigine", "age + C(diagnosis) + prior_treatment_failures + baseline_gad7",
    ...                      dataset=ds)
    >>> res.summary["measure"].tolist()[:3]
    ['response risk difference', 'response risk ratio', 'remission risk difference']
    >>> bool(res.balance.balanced)
    True
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))}; got {reference!r}")
    estimand = str(estimand).upper()
    if estimand not in ("ATE", "ATT"):
        raise ValueError(f"estimand must be 'ATE' or 'ATT', got {estimand!r}")
    if isinstance(formula_covariates, str):
        rhs = formula_covariates.split("~", 1)[-1].strip()
    else:
        rhs = " + ".join(formula_covariates)
    if not rhs:
        raise ValueError("formula_covariates is empty: name the confounders of the propensity model")
    conf_level = check_conf_level(conf_level)
    env = capture_env()  # names of the caller's namespace in formula_covariates
    courses0 = outcomes.courses if hasattr(outcomes, "courses") else outcomes["courses"]
    names = _formula_columns(rhs, courses0.columns)
    cov_cols = [n for n in names if n in courses0.columns or n.startswith("baseline_")]
    tables, cov_cols = outcome_tables(outcomes, cov_cols, dataset)
    notes = list(tables.notes)
    candidates = []
    for tab in (tables.courses, tables.relapse, tables.durability):
        if tab is not None:
            candidates += [c for c in adjunct_columns(tab) if c not in candidates]
    if adjunct not in candidates:
        for pre in ("drug_", "class_"):
            if pre + adjunct in candidates:
                adjunct = pre + adjunct
                break
        else:
            raise KeyError(f"adjunct {adjunct!r} is not an exposure column; columns are: {', '.join(candidates)}")
    all_tabs = [t for t in (tables.courses, tables.relapse, tables.durability) if t is not None]
    related = related_adjuncts(adjunct, candidates, all_tabs)
    bad_cov = [c for c in cov_cols if c in related]
    if bad_cov:
        raise ValueError(f"formula_covariates uses {', '.join(bad_cov)}, which is the exposure {adjunct!r} itself")

    def population(tab, name, extra):
        e, ref, n_co = groups(tab, adjunct, candidates, related, reference)
        sub = tab.loc[e | ref]
        frame = clean_frame(sub[list(dict.fromkeys([*cov_cols, *extra]))]).reset_index(drop=True)
        frame[EXPOSED] = e[e | ref].astype(float)
        miss = frame[cov_cols].isna().any(axis=1)
        if miss.any():
            notes.append(f"{name}: {int(miss.sum())} rows left out for missing covariates")
            frame = frame.loc[~miss].reset_index(drop=True)
        if n_co:
            notes.append(f"{name}: {n_co} patients on {adjunct} together with another adjunct left out (reference='none')")
        n1 = int(frame[EXPOSED].sum())
        if n1 == 0 or n1 == len(frame):
            raise ValueError(f"{name}: no {'exposed' if n1 == 0 else 'reference'} patients for {adjunct!r}")
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            ps = propensity_scores(f"{EXPOSED} ~ {rhs}", frame, env=env)
        if any(issubclass(w.category, RuntimeWarning) for w in rec):
            notes.append(f"{name}: numerical warning in the propensity model (a covariate level nearly predicts "
                         "exposure: quasi-separation); check ps.summary and overlap()")
        if not ps.converged or any(issubclass(w.category, ConvergenceWarning) for w in rec):
            notes.append(f"{name}: the propensity model did not converge (separation?); its weights are unreliable: "
                         "check ps.summary and overlap()")
        frame[WEIGHT] = ps.weights(estimand, stabilized=stabilized, truncate=truncate).to_numpy()
        bal = balance(frame, EXPOSED, cov_cols, frame[WEIGHT])
        return frame, ps, bal

    courses = tables.courses
    courses = courses[courses["category"].notna()]
    frame, ps, bal = population(courses, "courses", ["category", "remission"])
    frame["responder"] = (frame["category"].astype(object) == "responder").astype(float)
    frame["remission"] = frame["remission"].astype(float)
    rows, rate_rows = [], []
    for outcome in ("responder", "remission"):
        eff = weighted_risk_difference(frame, outcome, EXPOSED, frame[WEIGHT], conf_level=conf_level)
        name = "response" if outcome == "responder" else "remission"
        for _, r in eff.table.iterrows():
            rate_rows.append({"outcome": name, "group": "exposed" if r["group"] == "exposed" else "reference",
                              "n": r["n"], "weighted_n": r["weighted_n"], "rate": r["rate"], "se": r["se"]})
        for _, r in eff.contrast.iterrows():
            rows.append({"population": "courses", "measure": f"{name} {r['measure']}", "estimate": r["estimate"],
                         "se": r["se"], "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"], "p_value": r["p_value"]})
    w = frame[WEIGHT].to_numpy()
    t = frame[EXPOSED].to_numpy()
    ess_rows = [{"population": "courses", "group": g, "n": int((t == v).sum()),
                 "ess": float(effective_sample_size(w[t == v])["all"])} for g, v in (("exposed", 1), ("reference", 0))]
    wdist = [_weight_summary("courses", w, t)]

    rel_ps = rel_bal = km = fit = None
    if tables.relapse is not None and adjunct in tables.relapse and len(tables.relapse):
        try:
            rframe, rel_ps, rel_bal = population(tables.relapse, "relapse", ["time", "event"])
        except ValueError as exc:
            notes.append(f"relapse after induction not compared: {exc}")
            rframe = None
        if rframe is not None:
            rw, rt = rframe[WEIGHT].to_numpy(), rframe[EXPOSED].to_numpy()
            ess_rows += [{"population": "relapse", "group": g, "n": int((rt == v).sum()),
                          "ess": float(effective_sample_size(rw[rt == v])["all"])} for g, v in (("exposed", 1), ("reference", 0))]
            wdist.append(_weight_summary("relapse", rw, rt))
            rframe["group"] = np.where(rt == 1, "exposed", "reference")
            km = kaplan_meier(rframe, "time", "event", group="group", weights=WEIGHT, conf_level=conf_level)
            fit = cox(EXPOSED, rframe, duration="time", event="event", weights=WEIGHT, robust=True,
                      conf_level=conf_level, table="relapse")
            s = fit.summary.loc[EXPOSED]  # se: the robust one the interval uses (docs/api.md)
            rows.append({"population": "relapse", "measure": "relapse hazard ratio", "estimate": s["ratio"],
                         "se": s["se"], "ci_lower": s["ratio_lower"], "ci_upper": s["ratio_upper"],
                         "p_value": s["p_value"]})
            med = km.median.set_index("group")
            for g in ("exposed", "reference"):
                if g in med.index:
                    rows.append({"population": "relapse", "measure": f"median days to relapse, {g}",
                                 "estimate": med.loc[g, "median"], "se": np.nan, "ci_lower": med.loc[g, "ci_lower"],
                                 "ci_upper": med.loc[g, "ci_upper"], "p_value": np.nan})
    summary = pd.DataFrame(rows, columns=["population", "measure", "estimate", "se", "ci_lower", "ci_upper", "p_value"])
    return IPWComparison(adjunct, estimand, reference, f"{EXPOSED} ~ {rhs}", summary, pd.DataFrame(rate_rows), bal,
                         pd.DataFrame(ess_rows), pd.DataFrame(wdist), ps, rel_ps, rel_bal, km, fit, notes)


def _weight_summary(population: str, w: np.ndarray, t: np.ndarray) -> dict:
    out = {"population": population}
    for g, v in (("exposed", 1), ("reference", 0)):
        x = w[t == v]
        q = np.percentile(x, [0, 25, 50, 75, 100]) if len(x) else [np.nan] * 5
        out.update({f"{g}_min": q[0], f"{g}_q1": q[1], f"{g}_median": q[2], f"{g}_q3": q[3], f"{g}_max": q[4]})
    return out
