"""Reference-based multiple imputation for repeated measures (``reference_based``).

After an intercurrent event (ICE: stopping treatment, starting rescue medication) a trial may
ask what happens *had the patient continued*, or what happens *given that they stopped*, as
in ICH E9(R1)'s treatment-policy and hypothetical strategies. Reference-based imputation
answers the second kind with explicit assumptions about the post-ICE course (Carpenter,
Roger and Kenward 2013):

* ``"mar"``: the patient's own arm throughout (missing at random; a hypothetical strategy,
  "as if they had stayed on treatment").
* ``"jump_to_reference"`` (J2R): after the ICE the mean is the reference arm's, the benefit
  is lost at once (conservative; commonly used for treatment-policy-like estimands when
  patients who stop receive no active treatment).
* ``"copy_reference"`` (CR): the whole profile, before and after the ICE, is treated as the
  reference arm's, so the pre-ICE values pull the imputation through their correlation.
* ``"copy_increment"`` (CIR): the increment gained up to the ICE is kept, and from then on
  the mean changes as the reference arm's does (benefit kept, no further gain).

The procedure follows rbmi's approximate Bayesian method (Wolbers et al. 2022): for each
imputation, patients are resampled with replacement within arm, an MMRM (``mmrm``, by
default unstructured covariance, REML) is fitted to their pre-ICE data, and each patient's
missing and post-ICE values are drawn from the multivariate normal conditional on their own
observed pre-ICE values, with the mean the strategy prescribes and the common covariance.
A ``delta`` shifts the imputed post-ICE values (tipping-point analyses). Pool the analysis
model's estimates over the completed datasets with :func:`pool` or :func:`pool_estimates`;
Rubin's variance is known to be conservative for reference-based strategies (coverage above
nominal; Cro, Carpenter and Kenward 2019), which the documentation states.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._kernel.checks import check_choice
from .._kernel.formula import design_for, formula_variables
from .._kernel.results import ConvergenceWarning
from ._chained import Imputed

__all__ = ["STRATEGIES", "ReferenceImputed", "reference_based", "strategy_mean"]

STRATEGIES = ("mar", "jump_to_reference", "copy_reference", "copy_increment")
_ALIASES = {"j2r": "jump_to_reference", "cr": "copy_reference", "cir": "copy_increment"}


@dataclass(eq=False, repr=False)
class ReferenceImputed(Imputed):
    """Completed long datasets from :func:`reference_based`.

    Besides :class:`Imputed`'s attributes: ``strategy``, ``reference`` (the reference arm),
    ``ice`` (one row per patient: ``first_ice_visit``, the first visit affected by the ICE,
    NaN when none, and ``source`` "given" or "last observed visit"), ``delta`` and
    ``n_refits`` (bootstrap samples drawn again because the MMRM did not converge on them).
    """

    strategy: str = "mar"
    reference: object = None
    ice: pd.DataFrame = field(default_factory=pd.DataFrame)
    delta: object = 0.0
    n_refits: int = 0

    def __repr__(self) -> str:
        return (f"ReferenceImputed(m={self.m}, strategy={self.strategy!r}, reference={self.reference!r}, "
                f"{int(self.n_missing.sum())} values imputed, delta={self.delta!r}, refits={self.n_refits})")


def strategy_mean(mu_own: np.ndarray, mu_ref: np.ndarray, first_ice: int | None, strategy: str) -> np.ndarray:
    """The mean profile over visits that ``strategy`` gives a patient whose ICE affects visit
    index ``first_ice`` onwards (``None``: no ICE).

    Parameters
    ----------
    mu_own, mu_ref : array
        The patient's marginal means at every visit under their own arm and under the
        reference arm (the MMRM's fixed effects at their covariates).
    first_ice : int or None
        Index of the first visit affected by the ICE.
    strategy : str
        One of ``STRATEGIES``.

    Examples
    --------
    >>> import numpy as np
    >>> own, ref = np.array([-2.0, -5.0, -8.0, -10.0]), np.array([-1.0, -2.0, -3.0, -4.0])
    >>> strategy_mean(own, ref, 2, "jump_to_reference").tolist()
    [-2.0, -5.0, -3.0, -4.0]
    >>> strategy_mean(own, ref, 2, "copy_increment").tolist()
    [-2.0, -5.0, -6.0, -7.0]
    >>> strategy_mean(own, ref, 2, "copy_reference").tolist()
    [-1.0, -2.0, -3.0, -4.0]
    """
    mu_own = np.asarray(mu_own, dtype=float)
    mu_ref = np.asarray(mu_ref, dtype=float)
    if strategy == "mar" or first_ice is None:
        return mu_own.copy()
    if strategy == "copy_reference":
        return mu_ref.copy()
    out = mu_own.copy()
    if strategy == "jump_to_reference" or first_ice == 0:  # CIR with no pre-ICE visit is J2R
        out[first_ice:] = mu_ref[first_ice:]
    else:  # copy increments in reference: the difference reached before the ICE is kept
        last = first_ice - 1
        out[first_ice:] = mu_own[last] + (mu_ref[first_ice:] - mu_ref[last])
    return out


def _conditional_draw(mean: np.ndarray, sigma: np.ndarray, y: np.ndarray, known: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """Draw the unknown entries of a multivariate normal given the known ones."""
    unknown = ~known
    if not known.any():
        return rng.multivariate_normal(mean, sigma, method="cholesky")
    s_oo = sigma[np.ix_(known, known)]
    s_mo = sigma[np.ix_(unknown, known)]
    s_mm = sigma[np.ix_(unknown, unknown)]
    gain = np.linalg.solve(s_oo, s_mo.T).T
    cond_mean = mean[unknown] + gain @ (y[known] - mean[known])
    cond_cov = s_mm - gain @ s_mo.T
    cond_cov = (cond_cov + cond_cov.T) / 2.0
    return cond_mean + np.linalg.cholesky(cond_cov + 1e-12 * np.eye(len(cond_mean))) @ rng.standard_normal(len(cond_mean))


def _delta_for(delta, visits: list) -> np.ndarray:
    if isinstance(delta, Mapping):
        unknown = set(delta) - set(visits)
        if unknown:
            raise KeyError(f"reference_based: delta names visits not in the data: {sorted(unknown, key=str)}")
        return np.array([float(delta.get(v, 0.0)) for v in visits])
    return np.full(len(visits), float(delta))


def reference_based(data: pd.DataFrame, formula: str, *, subject: str, visit: str, arm: str, reference,
                    strategy: str = "jump_to_reference", ice: str | None = None, m: int = 20, seed: int = 0,
                    covariance: str = "us", delta: float | Mapping = 0.0, delta_arms=None,
                    max_refits: int = 20) -> ReferenceImputed:
    """Impute missing and post-ICE outcomes m times under a reference-based strategy.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format: one row per patient and scheduled visit (missed visits may be absent
        rows or rows with a missing outcome). Every column of ``formula`` other than the
        outcome and ``visit`` must be constant within a patient (baseline covariates).
    formula : str
        The imputation model's fixed effects, e.g. ``"change ~ arm * C(visit) + baseline"``;
        it must involve ``arm`` and ``visit`` (arm by visit means).
    subject, visit, arm : str
        Columns of the patient, the visit (its order: a Categorical's categories, otherwise
        sorted values) and the randomised arm.
    reference :
        The reference (control) arm's value.
    strategy : {"jump_to_reference", "copy_reference", "copy_increment", "mar"}
        Post-ICE assumption (``"j2r"``, ``"cr"``, ``"cir"`` are accepted too).
    ice : str, optional
        Column holding each patient's first visit affected by the ICE (NaN: none). Outcomes
        observed at or after it are set aside and imputed (as rbmi does for non-MAR
        strategies). Default: a patient whose last scheduled visits are missing has the ICE
        at the first of them (monotone dropout); earlier, intermittent gaps are imputed
        under MAR.
    m : int
        Imputations (default 20).
    seed : int
        Seed of the bootstrap and the draws (default 0).
    covariance : str
        MMRM covariance structure of the imputation model (default ``"us"``).
    delta : float or dict, default 0
        Added to every imputed post-ICE value of the arms in ``delta_arms`` (a dict gives a
        value per visit): the shift of a tipping-point analysis.
    delta_arms : list, optional
        Arms whose post-ICE imputations are shifted (default: every arm but the reference).
    max_refits : int
        Bootstrap samples drawn again, in all, when the MMRM does not converge on one.

    Returns
    -------
    ReferenceImputed
        ``datasets`` are complete long tables (every patient at every visit), with the
        outcome filled where it was missing or post-ICE.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.imputation import reference_based, pool_estimates
    >>> from analysis.response import mmrm
    >>> rng = np.random.default_rng(5)
    >>> rows = []
    >>> for i in range(120):
    ...     arm, base = ("TRT" if i % 2 else "PBO"), rng.normal(30, 4)
    ...     effect = np.array([-1.0, -2.0, -3.0]) if arm == "TRT" else np.zeros(3)
    ...     y = np.array([-4.0, -6.0, -7.0]) + effect + rng.multivariate_normal(np.zeros(3), 9 * (0.5 + 0.5 * np.eye(3)))
    ...     last = 3 if rng.uniform() < 0.7 else int(rng.integers(1, 3))
    ...     rows += [(f"P{i}", arm, v + 1, base, y[v] if v < last else np.nan) for v in range(3)]
    >>> trial = pd.DataFrame(rows, columns=["id", "arm", "visit", "baseline", "change"])
    >>> imp = reference_based(trial, "change ~ arm * C(visit) + baseline", subject="id", visit="visit",
    ...                       arm="arm", reference="PBO", strategy="j2r", m=5, seed=1)
    >>> fits = imp.fit(lambda d: mmrm("change ~ arm * C(visit) + baseline", d, subject="id", visit="visit"))
    >>> at3 = [f.contrast("arm", by="visit").set_index("visit").loc[3] for f in fits]
    >>> res = pool_estimates([c["estimate"] for c in at3], [c["se"] ** 2 for c in at3])
    >>> bool(res["ci_lower"] < res["estimate"] < res["ci_upper"]), imp.strategy
    (True, 'jump_to_reference')
    """
    from ..response import mmrm

    strategy = _ALIASES.get(str(strategy).lower(), str(strategy).lower())
    check_choice("reference_based: strategy", strategy, STRATEGIES)
    for name, column in (("subject", subject), ("visit", visit), ("arm", arm)):
        if column not in data.columns:
            raise KeyError(f"reference_based: {name} column {column!r} is not in the data")
    if "~" not in formula:
        raise ValueError(f"reference_based: formula {formula!r} needs an outcome: 'outcome ~ terms'")
    outcome, rhs = (part.strip() for part in formula.split("~", 1))
    variables, unknown_names = formula_variables([rhs], data.columns)
    if unknown_names:
        raise KeyError(f"reference_based: formula names {unknown_names} that are not columns of the data")
    if outcome not in data.columns:
        raise KeyError(f"reference_based: the outcome {outcome!r} of the formula is not a column of the data")
    if arm not in variables or visit not in variables:
        raise ValueError(f"reference_based: the formula {formula!r} must involve the arm {arm!r} and the visit {visit!r}")
    if reference not in set(data[arm].dropna()):
        raise ValueError(f"reference_based: reference arm {reference!r} not among the arms {sorted(set(data[arm].dropna()), key=str)}")
    covariates = [v for v in variables if v not in (outcome, visit)]

    if isinstance(data[visit].dtype, pd.CategoricalDtype):
        visits = list(data[visit].cat.categories)
    else:
        visits = sorted(data[visit].dropna().unique())
    position = {v: i for i, v in enumerate(visits)}
    patients = list(dict.fromkeys(data[subject]))
    # patient-level covariates: one value per patient
    per_patient = data.groupby(subject, sort=False)[covariates].nunique(dropna=False)
    varying = per_patient.columns[(per_patient > 1).any()].tolist()
    if varying:
        example = per_patient.index[(per_patient[varying[0]] > 1).to_numpy()][0]
        raise ValueError(f"reference_based: {varying} vary within patient {example!r}; the model's covariates "
                         "must be baseline values, constant over visits")
    baseline = data.groupby(subject, sort=False)[covariates].first().loc[patients]
    if baseline.isna().any().any():
        bad = baseline.columns[baseline.isna().any()].tolist()
        raise ValueError(f"reference_based: baseline covariates {bad} are missing for some patients; impute them first")

    # the complete grid: every patient at every visit
    grid = pd.MultiIndex.from_product([patients, visits], names=[subject, visit])
    rows = data.set_index([subject, visit])
    if rows.index.duplicated().any():
        dup = rows.index[rows.index.duplicated()][0]
        raise ValueError(f"reference_based: patient {dup[0]!r} has more than one row at visit {dup[1]!r}")
    y = rows[outcome].reindex(grid).to_numpy(dtype=float).reshape(len(patients), len(visits))

    # the first visit affected by the ICE, per patient
    if ice is not None:
        given = data.groupby(subject, sort=False)[ice].first().loc[patients]
        unknown = set(given.dropna()) - set(visits)
        if unknown:
            raise ValueError(f"reference_based: column {ice!r} holds visits not in the data: {sorted(unknown, key=str)}")
        first_ice = [None if pd.isna(v) else position[v] for v in given]
        source = "given"
    else:
        first_ice = []
        for row in y:
            seen = np.flatnonzero(~np.isnan(row))
            last = seen[-1] if len(seen) else -1
            first_ice.append(None if last == len(visits) - 1 else int(last + 1))
        source = "last observed visit"
    ice_table = pd.DataFrame({"first_ice_visit": [np.nan if k is None else visits[k] for k in first_ice],
                              "source": source}, index=pd.Index(patients, name=subject))
    post = np.zeros_like(y, dtype=bool)
    for i, k in enumerate(first_ice):
        if k is not None:
            post[i, k:] = True
    usable = ~np.isnan(y) & ~post            # what the imputation model sees and conditions on
    to_fill = ~usable
    if not to_fill.any():
        raise ValueError("reference_based: nothing to impute (every outcome observed, no ICE)")

    arms = baseline[arm].to_numpy()
    shift_arms = set(delta_arms) if delta_arms is not None else set(np.unique(arms)) - {reference}
    delta_by_visit = _delta_for(delta, visits)

    long = pd.DataFrame(index=grid).reset_index()
    long = long.merge(baseline.reset_index(), on=subject, how="left")
    if isinstance(data[visit].dtype, pd.CategoricalDtype):
        long[visit] = pd.Categorical(long[visit], categories=visits, ordered=data[visit].cat.ordered)
    else:
        long[visit] = long[visit].astype(data[visit].dtype)

    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    datasets, refits = [], 0
    by_arm = {a: np.flatnonzero(arms == a) for a in np.unique(arms)}
    for _ in range(int(m)):
        while True:  # a bootstrap sample within arm, refitted if the MMRM does not converge
            chosen = np.concatenate([rng.choice(idx, size=len(idx), replace=True) for idx in by_arm.values()])
            rows_taken = (chosen[:, None] * len(visits) + np.arange(len(visits))).reshape(-1)
            keep = usable[chosen].reshape(-1)
            sample = long.iloc[rows_taken[keep]].copy()
            sample[outcome] = y[chosen].reshape(-1)[keep]
            # resampled patients are distinct patients of the bootstrap sample
            sample[subject] = np.repeat([f"b{j}" for j in range(len(chosen))], len(visits))[keep]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # handled below: the sample is drawn again
                fit = mmrm(formula, sample, subject=subject, visit=visit, covariance=covariance, reml=True,
                           df="asymptotic")
            if fit.converged:
                break
            refits += 1
            if refits > max_refits:
                raise RuntimeError(f"reference_based: the MMRM did not converge on {refits} bootstrap samples "
                                   f"(more than max_refits={max_refits}); simplify the covariance structure")
        beta = fit.params.to_numpy()
        sigma = fit.covariance.loc[visits, visits].to_numpy()
        own = (design_for(fit._mf, long).to_numpy() @ beta).reshape(len(patients), len(visits))
        as_ref = long.copy()
        as_ref[arm] = pd.Series([reference] * len(long), dtype=data[arm].dtype, index=long.index) \
            if isinstance(data[arm].dtype, pd.CategoricalDtype) else reference
        ref = (design_for(fit._mf, as_ref).to_numpy() @ beta).reshape(len(patients), len(visits))
        filled = y.copy()
        for i in np.flatnonzero(to_fill.any(axis=1)):
            mean = strategy_mean(own[i], ref[i], first_ice[i], strategy)
            draws = _conditional_draw(mean, sigma, y[i], usable[i], rng)
            filled[i, to_fill[i]] = draws
            if arms[i] in shift_arms:
                filled[i, post[i]] += delta_by_visit[post[i]]
        completed = long.copy()
        completed[outcome] = filled.reshape(-1)
        datasets.append(completed)
    n_missing = pd.Series({outcome: int(to_fill.sum())})
    return ReferenceImputed(datasets=datasets, methods={outcome: strategy}, n_missing=n_missing, seed=int(seed),
                            max_iter=0, strategy=strategy, reference=reference, ice=ice_table, delta=delta,
                            n_refits=refits)

