"""The report's mixed model for repeated measures (issue 13): change from baseline by week of
induction in patients on an adjunct against patients on none, unsuppressed (the section in
:mod:`~analysis.report.cohort` decides what is shown).

The covariance is unstructured when that fit converges (the trial convention, which assumes
nothing about the visits); otherwise the structure with the lowest AIC among a short list of
simpler ones that converge (all fitted by REML to the same rows, so their AICs compare).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["AdjunctMMRM", "FALLBACK_COVARIANCES", "COVARIANCE_NAMES", "adjunct_visit_scores", "fit_adjunct_mmrm",
           "ADJUNCT_PREFERENCE"]

#: structures tried, in this order, when the unstructured fit does not converge
FALLBACK_COVARIANCES = ("toeph", "ar1h", "csh", "ar1", "cs")

#: how the report names each structure
COVARIANCE_NAMES = {"us": "unstructured", "toeph": "heterogeneous Toeplitz", "ar1h": "heterogeneous AR(1)",
                    "csh": "heterogeneous compound symmetry", "ar1": "AR(1)", "cs": "compound symmetry"}

#: adjuncts the section compares, in order of preference (the first with enough patients)
ADJUNCT_PREFERENCE = ("class_benzodiazepine", "class_mtor_inhibitor", "drug_rapamycin", "class_lamotrigine")


@dataclass(frozen=True)
class AdjunctMMRM:
    """The fitted MMRM and what the section says about it.

    ``fit`` is the :class:`~analysis.response.mmrm` result; ``difference`` the contrast
    (adjunct minus none) at ``end_visit``; ``covariance`` the structure used and ``tried``
    each structure fitted with its AIC and whether it converged.
    """

    adjunct: str
    fit: object
    data: pd.DataFrame
    visits: list[str]
    end_visit: str
    difference: pd.Series
    covariance: str
    tried: pd.DataFrame
    n_exposed: int
    n_reference: int


def adjunct_visit_scores(scores: pd.DataFrame, courses: pd.DataFrame, adjunct: str, weeks: list[int]) -> pd.DataFrame:
    """One row per patient and week of induction: the last score of the week, its change from
    baseline, the baseline, and the group (``adjunct`` or ``none``: on no listed adjunct).

    ``scores`` is :func:`analysis.report.analyses.score_weeks` of the analysis population;
    ``courses`` the courses with the adjunct flags (``drug_*``, ``class_*``)."""
    flags = [c for c in courses.columns if c.startswith(("drug_", "class_"))]
    c = courses.set_index("patient_id")
    on = c[adjunct].fillna(False).astype(bool)
    none = ~c[flags].fillna(False).astype(bool).any(axis=1)
    group = pd.Series(np.where(on, "on it", np.where(none, "none", "")), index=c.index)
    s = scores[scores["week"].isin(weeks)].sort_values(["patient_id", "week", "day"])
    s = s.groupby(["patient_id", "week"], as_index=False).last()
    s["group"] = s["patient_id"].map(group)
    s = s[s["group"] != ""].copy()
    s["baseline"] = s["patient_id"].map(c["baseline_score"]).astype(float)
    s["change"] = s["score"].astype(float) - s["baseline"]
    labels = [f"week {w}" for w in weeks]
    s["visit"] = pd.Categorical([f"week {int(w)}" for w in s["week"]], categories=labels, ordered=True)
    s["group"] = pd.Categorical(s["group"], categories=["none", "on it"])
    return s[["patient_id", "visit", "group", "baseline", "change"]].reset_index(drop=True)


def fit_adjunct_mmrm(scores: pd.DataFrame, courses: pd.DataFrame, *, k: int, conf_level: float,
                     adjunct: str | None = None) -> AdjunctMMRM | str:
    """Fit ``change ~ group * visit + baseline`` over the weeks of induction, or say why not.

    The weeks are 1 to the week by which three quarters of the patients had their endpoint
    (at least 2). Returns the :class:`AdjunctMMRM`, or a sentence (``str``) giving the reason
    when no adjunct has k patients with scores in each group, or no structure converges.
    """
    from ..response import mmrm

    end = max(2, int(np.floor(np.nanquantile(courses["endpoint_day"] - courses["first_session_day"], 0.75) / 7)))
    weeks = list(range(1, end + 1))
    candidates = [adjunct] if adjunct else [a for a in ADJUNCT_PREFERENCE if a in courses.columns]
    for name in candidates:
        data = adjunct_visit_scores(scores, courses, name, weeks)
        per_group = data.groupby("group", observed=False)["patient_id"].nunique()
        if (per_group >= k).all() and data["visit"].nunique() == len(weeks):
            break
    else:
        return (f"no adjunct had {k} or more patients with weekly scores during induction, and patients on no "
                "adjunct as many")
    tried, fits = [], {}
    for structure in ("us", *FALLBACK_COVARIANCES):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = mmrm("change ~ group * visit + baseline", data, subject="patient_id", visit="visit",
                           covariance=structure, reml=True, df="satterthwaite", conf_level=conf_level)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as error:
                tried.append({"covariance": structure, "aic": np.nan, "converged": False,
                              "problem": f"{type(error).__name__}: {error}"})
                continue
        converged = bool(fit.converged) and not any("converge" in str(w.message).lower() for w in caught)
        tried.append({"covariance": structure, "aic": float(fit.aic), "converged": converged, "problem": ""})
        fits[structure] = fit
        if structure == "us" and converged:
            break
    table = pd.DataFrame(tried)
    ok = table[table["converged"]]
    if ok.empty:
        return "no covariance structure converged (" + "; ".join(
            f"{r.covariance}: {r.problem or 'did not converge'}" for r in table.itertuples()) + ")"
    chosen = "us" if "us" in set(ok["covariance"]) else str(ok.loc[ok["aic"].idxmin(), "covariance"])
    fit = fits[chosen]
    contrast = fit.contrast("group", by="visit")
    end_visit = f"week {weeks[-1]}"
    difference = contrast[contrast["visit"].astype(str) == end_visit].iloc[0]
    per_group = data.groupby("group", observed=False)["patient_id"].nunique()
    return AdjunctMMRM(adjunct=name, fit=fit, data=data, visits=[f"week {w}" for w in weeks], end_visit=end_visit,
                       difference=difference, covariance=chosen, tried=table, n_exposed=int(per_group["on it"]),
                       n_reference=int(per_group["none"]))
