"""Shared data preparation for the adjunct comparisons: the derived tables, baseline scores
of secondary instruments (GAD-7), adjunct columns, reference groups and numeric designs.

Internal to :mod:`analysis.adjuncts`; :func:`baseline_scores` is public.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..outcomes import CATEGORIES, definitions_of
from ..outcomes.definitions import SAME_DAY_RULES
from ..outcomes.timeline import instrument_scores

__all__ = ["DEFAULT_COVARIATES", "REFERENCES", "baseline_scores", "baseline_column"]

#: Default adjustment set: the measured patient-level confounders of adjunct use and of
#: outcome (docs/adjuncts.md section 2). ``baseline_gad7`` is the observed anxiety that
#: drives benzodiazepine use; it comes from the dataset's assessments (``dataset=``).
DEFAULT_COVARIATES = ("age", "sex", "diagnosis", "prior_treatment_failures", "comorbid_ptsd", "baseline_score",
                      "baseline_gad7", "site")

REFERENCES = ("none", "unexposed")

#: default covariates read from the dataset's assessments (the defaults leave out, with a
#: note, any covariate the data do not have)
_OPTIONAL_DEFAULTS = {"baseline_gad7"}


def baseline_column(instrument: str) -> str:
    """Column name of an instrument's baseline score: ``"GAD-7"`` -> ``"baseline_gad7"``."""
    return "baseline_" + re.sub(r"[^0-9a-z]+", "", str(instrument).lower())


def baseline_scores(dataset, outcomes, instruments: Sequence[str] = ("GAD-7",), *, window_days: float | None = None,
                    same_day: str | None = None) -> pd.DataFrame:
    """Baseline scores of further instruments (GAD-7, PCL-5, ...) for every patient of ``courses``.

    The baseline of an instrument is found exactly as the outcome instrument's
    (``docs/outcomes.md``): the last score on a day in [first session day - window, first
    session day], same-day scores combined first. Use it to add the observed anxiety
    (GAD-7), which confounds benzodiazepine use, to the adjustment set.

    Parameters
    ----------
    dataset : analysis.Dataset
        The dataset the outcomes were derived from (its ``assessments`` table).
    outcomes : analysis.Outcomes or DataFrame
        The derived outcomes (their ``courses`` give each patient's first session day) or
        a courses table with ``patient_id`` and ``first_session_day``.
    instruments : sequence of str, default ("GAD-7",)
    window_days, same_day : optional
        Default: the outcomes' own definitions (``outcomes.definitions.baseline_window_days``
        and ``.same_day``); for a courses table, the package defaults
        (:class:`analysis.outcomes.Definitions`: 14 days, "mean").

    Returns
    -------
    pandas.DataFrame
        ``patient_id`` and one column per instrument, ``baseline_<name>`` (e.g.
        ``baseline_gad7``), missing where the patient has no score in the window.

    Examples
    --------
    >>> import analysis
    >>> from analysis.adjuncts import baseline_scores
    >>> ds = analysis.load_dataset("data/sample")
    >>> out = analysis.derive_outcomes(ds)
    >>> gad = baseline_scores(ds, out)
    >>> list(gad.columns), len(gad) == len(out.courses)
    (['patient_id', 'baseline_gad7'], True)
    """
    courses = outcomes.courses if hasattr(outcomes, "courses") else outcomes
    definitions = definitions_of(outcomes) if hasattr(outcomes, "courses") else definitions_of(None)
    window = float(definitions.baseline_window_days if window_days is None else window_days)
    how = str(definitions.same_day if same_day is None else same_day)
    if how not in SAME_DAY_RULES:
        raise ValueError(f"same_day must be one of {', '.join(map(repr, SAME_DAY_RULES))}; got {how!r}")
    for col in ("patient_id", "first_session_day"):
        if col not in courses.columns:
            raise KeyError(f"courses: column {col!r} not found (needed to place the baseline window)")
    assessments = getattr(dataset, "assessments", None)
    if assessments is None:
        raise TypeError("dataset must be an analysis.Dataset (with an assessments table)")
    out = pd.DataFrame({"patient_id": courses["patient_id"].to_numpy()})
    first = pd.Series(courses["first_session_day"].to_numpy(dtype=float), index=courses["patient_id"].to_numpy())
    known = set(assessments["instrument"].astype(str).unique())
    for instrument in instruments:
        col = baseline_column(instrument)
        if instrument not in known:
            raise ValueError(
                f"assessments: instrument {instrument!r} not recorded; instruments are: {', '.join(sorted(known))}"
            )
        rows = instrument_scores(assessments, instrument, how)
        day0 = rows["patient_id"].map(first)
        ok = (rows["day"] >= day0 - window) & (rows["day"] <= day0)
        rows = rows.loc[ok].sort_values(["patient_id", "day"], kind="stable")
        last = rows.groupby("patient_id", sort=False)["score"].last()
        out[col] = out["patient_id"].map(last).astype(float)
    return out


# ----------------------------------------------------------------------------------------
@dataclass
class Tables:
    """The three analysis tables, with patient-level columns completed and notes kept."""

    courses: pd.DataFrame
    relapse: pd.DataFrame | None
    durability: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def _table(outcomes, name):
    if isinstance(outcomes, dict):
        return outcomes.get(name)
    return getattr(outcomes, name, None)


def outcome_tables(outcomes, covariates: Sequence[str] | None, dataset=None, *, default_covariates: bool = False,
                   extra_patient_columns: Sequence[str] = ()) -> tuple[Tables, list[str]]:
    """Copy the derived tables, add baseline scores of other instruments, carry the
    patient-level covariates to ``relapse`` and ``durability``; return the tables and the
    covariates that will be used (a default that cannot be found is left out with a note;
    an explicit one that cannot be found is an error)."""
    courses = _table(outcomes, "courses")
    if not isinstance(courses, pd.DataFrame):
        raise TypeError("outcomes must be an analysis.Outcomes (or have a 'courses' DataFrame)")
    courses = courses.copy()
    notes: list[str] = []
    if "category" in courses and not isinstance(courses["category"].dtype, pd.CategoricalDtype):
        courses["category"] = pd.Categorical(courses["category"].astype(object).where(courses["category"].notna()),
                                             categories=list(CATEGORIES.categories), ordered=True)
    covariates = list(DEFAULT_COVARIATES if covariates is None else covariates)
    wanted_baselines = [c for c in covariates if c.startswith("baseline_") and c != "baseline_score" and c not in courses]
    if wanted_baselines:
        if dataset is not None:
            names = {baseline_column(i): i for i in dataset.assessments["instrument"].astype(str).unique()}
            found = [names[c] for c in wanted_baselines if c in names]
            if found:
                extra = baseline_scores(dataset, outcomes if hasattr(outcomes, "courses") else courses, found)
                courses = courses.merge(extra, on="patient_id", how="left", validate="one_to_one")
    missing = [c for c in covariates if c not in courses.columns]
    if missing:
        if not default_covariates:
            hint = " (pass dataset= so baseline scores of other instruments can be read from its assessments)" \
                if any(c.startswith("baseline_") for c in missing) else ""
            raise KeyError(f"courses: covariate column(s) {', '.join(map(repr, missing))} not found{hint}; "
                           f"columns are: {', '.join(map(str, courses.columns))}")
        for c in missing:
            if c in _OPTIONAL_DEFAULTS and dataset is None:
                notes.append(f"{c} not adjusted for: it is not a column of courses and no dataset= was given to read it "
                             "from the assessments (baseline anxiety confounds benzodiazepine use)")
            else:
                notes.append(f"{c} not adjusted for: the data have no such column (a default covariate)")
        covariates = [c for c in covariates if c not in missing]
    patient_cols = [c for c in dict.fromkeys([*covariates, *extra_patient_columns]) if c in courses.columns]
    out = []
    for name in ("relapse", "durability"):
        tab = _table(outcomes, name)
        if tab is None:
            out.append(None)
            continue
        tab = tab.copy()
        add = [c for c in patient_cols if c not in tab.columns]
        if add:
            tab = tab.merge(courses[["patient_id", *add]], on="patient_id", how="left")
        out.append(tab)
    return Tables(courses, out[0], out[1], notes), covariates


def adjunct_columns(table: pd.DataFrame) -> list[str]:
    """The ``drug_*`` and ``class_*`` exposure columns of a derived table."""
    return [c for c in table.columns if c.startswith(("drug_", "class_"))]


def flag(values: pd.Series) -> np.ndarray:
    """A 0/1 exposure column as a boolean array (missing = not exposed is an error)."""
    s = values
    if s.isna().any():
        raise ValueError(f"exposure column {s.name!r} has {int(s.isna().sum())} missing value(s)")
    return s.astype(bool).to_numpy()


def groups(table: pd.DataFrame, adjunct: str, candidates: Sequence[str], related: set[str],
           reference: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Exposed rows, reference rows and the number of exposed rows left out.

    ``"unexposed"``: exposed = on ``adjunct``; reference = everyone else.
    ``"none"``: exposed = on ``adjunct`` and on no *other* candidate adjunct (its own class
    or drugs do not count as other); reference = on none of the candidates. Patients on
    the adjunct together with another adjunct are left out (counted), so the contrast is
    "this adjunct alone vs no adjunct" and co-medication cannot bias it."""
    e = flag(table[adjunct])
    if reference == "unexposed":
        return e, ~e, 0
    cols = [c for c in candidates if c in table.columns]
    anyexp = table[cols].fillna(False).astype(bool).to_numpy().any(axis=1) if cols else e
    others = [c for c in cols if c not in related]
    other = table[others].fillna(False).astype(bool).to_numpy().any(axis=1) if others else np.zeros(len(e), bool)
    return e & ~other, ~anyexp & ~e, int((e & other).sum())


# ----------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^0-9A-Za-z_]+")


def _safe(name: str) -> str:
    s = _SAFE.sub("_", str(name)).strip("_") or "x"
    return s if not s[0].isdigit() else "x_" + s


@dataclass
class Design:
    """Numeric model columns for a list of covariates (dummy-coded categoricals)."""

    frame: pd.DataFrame            # numeric columns, one per model term
    columns: dict[str, list[str]]  # covariate -> its model columns
    kinds: dict[str, str]          # covariate -> "continuous" | "binary" | "categorical"
    notes: list[str]


def covariate_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "binary"
    if pd.api.types.is_numeric_dtype(values.dtype):
        vals = pd.unique(values.dropna())
        return "binary" if len(vals) <= 2 and set(np.asarray(vals, dtype=float).tolist()) <= {0.0, 1.0} else "continuous"
    return "categorical"


def numeric_design(table: pd.DataFrame, covariates: Sequence[str], *, min_level: int = 11) -> Design:
    """Model columns for ``covariates``: numbers as they are, flags as 0/1, text and
    categories as indicator columns against the first level (R's treatment contrasts,
    sorted levels). Levels with fewer than ``min_level`` rows are pooled into the most
    frequent level (noted), so a handful of patients in a rare level cannot make a model
    fail by separation. Missing values stay missing (the caller drops and counts them)."""
    cols: dict[str, np.ndarray] = {}
    mapping: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    notes: list[str] = []
    used = set()
    for cov in covariates:
        s = table[cov]
        kind = covariate_kind(s)
        kinds[cov] = kind
        base = _safe(cov)
        if kind != "categorical":
            arr = pd.to_numeric(s.astype("Float64") if pd.api.types.is_bool_dtype(s.dtype) else s, errors="coerce")
            cols[base] = np.asarray(arr, dtype=float)
            mapping[cov] = [base]
            used.add(base)
            continue
        text = s.astype(object).where(s.notna())
        counts = text.value_counts(dropna=True)
        levels = sorted(counts.index.tolist(), key=str)
        rare = [lv for lv in levels if counts[lv] < min_level]
        if rare and len(levels) - len(rare) >= 1:
            top = counts.index[0]
            text = text.where(~text.isin(rare), top)
            notes.append(f"{cov}: level(s) {', '.join(map(repr, rare))} with fewer than {min_level} rows pooled with {top!r}")
            levels = [lv for lv in levels if lv not in rare]
        names = []
        for lv in levels[1:]:
            name = f"{base}_{_safe(lv)}"
            while name in used:
                name += "_"
            used.add(name)
            col = (text == lv).astype(float).to_numpy().copy()
            col[text.isna().to_numpy()] = np.nan
            cols[name] = col
            names.append(name)
        mapping[cov] = names
    return Design(pd.DataFrame(cols, index=table.index), mapping, kinds, notes)


def drop_constant(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split model columns into those that vary in ``frame`` and those that are constant."""
    keep, dropped = [], []
    for c in columns:
        v = frame[c].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        if v.size and v.max() > v.min():
            keep.append(c)
        else:
            dropped.append(c)
    return keep, dropped


def related_adjuncts(adjunct: str, candidates: Sequence[str], tables: Sequence[pd.DataFrame]) -> set[str]:
    """The adjunct, its class (for a drug) or its drugs (for a class).

    A drug belongs to a class by :data:`analysis.drugs.DRUG_CLASSES`; a drug not in that map
    belongs to a class column when every row exposed to the drug is exposed to the class
    in every table (the loader took the class from the medications table)."""
    from ..drugs import DRUG_CLASSES
    from ..outcomes import exposure_column

    def class_of(drug_col: str) -> str | None:
        known = {exposure_column("drug", k): exposure_column("class", v) for k, v in DRUG_CLASSES.items()}
        if drug_col in known:
            return known[drug_col]
        for c in candidates:
            if c.startswith("class_") and all(
                    (drug_col not in t or c not in t) or not (t[drug_col].astype(bool) & ~t[c].astype(bool)).any()
                    for t in tables) and any(drug_col in t and t[drug_col].astype(bool).any() for t in tables):
                return c
        return None

    related = {adjunct}
    if adjunct.startswith("drug_"):
        c = class_of(adjunct)
        if c is not None:
            related.add(c)
    elif adjunct.startswith("class_"):
        related |= {d for d in candidates if d.startswith("drug_") and class_of(d) == adjunct}
    return related
