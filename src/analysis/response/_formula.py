"""Formulas to checked design matrices: the one place where a DataFrame becomes numbers.

Every model in :mod:`analysis.response` calls :func:`model_frame`, which

* finds the data columns the formula uses (names, and ``Q("...")`` names) and reports a
  missing column by name;
* counts missing values per column: an error that says how many rows and which column,
  unless ``dropna=True``, when the rows are dropped and counted (``ModelFrame.n_dropped``);
* converts pandas' nullable dtypes (``boolean``, ``Int64``, ``Float64``, ``string``),
  which patsy cannot read, to plain numpy ones;
* evaluates the left-hand side itself (a column, or an expression such as
  ``improvement_pct >= 50``) and builds the right-hand side with patsy, keeping the
  ``design_info`` so that predictions for new covariate profiles use the same coding.

Factor levels follow R's order: a pandas Categorical's category order, otherwise sorted
values (patsy's rule), so the first level is the reference level as in R.
"""

from __future__ import annotations

import io
import keyword
import tokenize
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from patsy import EvalEnvironment, ModelDesc

from ..problems import DataValidationError, ValidationReport

__all__ = ["ModelFrame", "model_frame", "design_for", "clean_frame", "used_columns", "capture_env"]

_ROWS_SHOWN = 5


def capture_env(depth: int = 1) -> EvalEnvironment:
    """The caller's namespace (``depth`` frames up) for names such as ``np`` in formulas."""
    return EvalEnvironment.capture(depth + 1)


def _names_in(code: str) -> set[str]:
    """Identifier and string tokens of one factor's code (``Q("a b")`` gives ``a b``)."""
    names: set[str] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                names.add(tok.string)
            elif tok.type == tokenize.STRING:
                try:
                    names.add(str(eval(tok.string, {}, {})))  # noqa: S307 - a literal string token
                except Exception:  # pragma: no cover - odd literals
                    pass
    except (tokenize.TokenError, IndentationError):  # pragma: no cover
        pass
    return names


def _factor_codes(termlist) -> list[str]:
    return [f.code for term in termlist for f in term.factors]


def used_columns(codes: list[str], columns: pd.Index) -> list[str]:
    """Data columns named in the given factor codes, in their order of first appearance."""
    present = {c for c in columns if isinstance(c, str)}
    out: list[str] = []
    for code in codes:
        found = [n for n in _names_in(code) if n in present and n not in out]
        found.sort(key=lambda n: code.find(n))
        out.extend(found)
    return out


def clean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain numpy dtypes for patsy: nullable booleans to bool (or object with missing
    values), nullable numbers to float64, pandas strings to object."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        dt = s.dtype
        if isinstance(dt, pd.BooleanDtype):
            out[col] = s.astype(bool) if not s.isna().any() else s.astype(object).where(s.notna(), np.nan)
        elif isinstance(dt, pd.CategoricalDtype):
            out[col] = s
        elif pd.api.types.is_extension_array_dtype(dt) and pd.api.types.is_numeric_dtype(dt):
            out[col] = s.astype("float64")
        elif pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
            out[col] = s.astype(object).where(s.notna(), np.nan)
        else:
            out[col] = s
    return pd.DataFrame(out, index=frame.index)


@dataclass
class ModelFrame:
    """Checked model data: the outcome, the design matrix and how they were made.

    Attributes
    ----------
    y : pandas.Series
        The evaluated left-hand side (None for a one-sided formula).
    X : pandas.DataFrame
        The design matrix (patsy coding; an ``Intercept`` column unless removed with ``- 1``).
    design_info : patsy.DesignInfo
        How to build ``X`` for new data (:func:`design_for`).
    data : pandas.DataFrame
        The rows used, the columns the formula uses, with clean dtypes.
    columns : list of str
        Data columns used by the right-hand side.
    n_input, n_dropped : int
        Rows passed in, and rows dropped for missing values (``dropna=True`` only).
    dropped_by_column : dict
        Per column, the number of rows with a missing value there.
    """

    y: pd.Series | None
    X: pd.DataFrame
    design_info: patsy.DesignInfo
    data: pd.DataFrame
    columns: list[str]
    lhs: str | None
    formula: str
    env: EvalEnvironment
    n_input: int
    n_dropped: int
    dropped_by_column: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


def _eval_lhs(code: str, frame: pd.DataFrame, env: EvalEnvironment) -> pd.Series:
    if code in frame.columns:
        return frame[code]
    builtins = {k: getattr(patsy.builtins, k) for k in patsy.builtins.__all__}
    value = env.with_outer_namespace(builtins).eval(code, inner_namespace=frame)
    if np.ndim(value) == 0:
        raise ValueError(f"the left-hand side {code!r} evaluates to a single value, not one per row")
    return pd.Series(np.asarray(value) if not isinstance(value, pd.Series) else value.to_numpy(), index=frame.index, name=code)


def model_frame(
    formula: str,
    data: pd.DataFrame,
    *,
    env: EvalEnvironment,
    dropna: bool = False,
    extra: dict[str, str | None] | None = None,
    table: str = "data",
    two_sided: bool = True,
) -> ModelFrame:
    """Parse ``formula`` on ``data`` and return a :class:`ModelFrame`.

    ``extra`` maps roles ("weights", "groups", "time") to further columns that must exist
    and be complete; they take part in the missing-value check and are kept in ``data``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string such as 'responder ~ age + C(site)', got {formula!r}")
    desc = ModelDesc.from_formula(formula)
    if two_sided and not desc.lhs_termlist:
        raise ValueError(f"formula {formula!r} has no outcome: write it as 'outcome ~ predictors'")
    lhs_codes = _factor_codes(desc.lhs_termlist)
    if len(desc.lhs_termlist) > 1 or (lhs_codes and len(lhs_codes) != 1):
        raise ValueError(f"formula {formula!r}: the left-hand side must be one column or expression")
    lhs = lhs_codes[0] if lhs_codes else None
    rhs_codes = _factor_codes(desc.rhs_termlist)

    report = ValidationReport(table)
    roles = dict(extra or {})
    for role, col in roles.items():
        if col is not None and col not in data.columns:
            report.add_table_problem(
                table, f"{role} column not found; columns are: {', '.join(map(str, data.columns[:30]))}", column=str(col)
            )
    rhs_cols = used_columns(rhs_codes, data.columns)
    lhs_cols = used_columns([lhs], data.columns) if lhs else []
    if lhs is not None and not lhs_cols:
        report.add_table_problem(
            table, f"the outcome {lhs!r} names no column of the table; columns are: {', '.join(map(str, data.columns[:30]))}",
            column=lhs,
        )
    # names in the formula that are neither columns nor known functions: let patsy say
    if not report.ok:
        raise DataValidationError(report)

    cols = list(dict.fromkeys(lhs_cols + rhs_cols + [c for c in roles.values() if c is not None]))
    frame = data.loc[:, cols]
    n_input = len(frame)
    missing_any = np.zeros(n_input, dtype=bool)
    dropped_by_column: dict[str, int] = {}
    for col in cols:
        miss = frame[col].isna().to_numpy()
        k = int(miss.sum())
        if k:
            dropped_by_column[col] = k
            missing_any |= miss
            if not dropna:
                rows = np.flatnonzero(miss)[:_ROWS_SHOWN] + 1
                more = ", ..." if k > _ROWS_SHOWN else ""
                report.add_table_problem(
                    table,
                    f"{k} row(s) have a missing value (row {', '.join(map(str, rows))}{more}); pass dropna=True "
                    "to drop them (the result then records how many rows were dropped)",
                    column=col,
                )
    if not report.ok:
        raise DataValidationError(report)
    n_dropped = int(missing_any.sum())
    if n_dropped:
        frame = frame.loc[~missing_any]
    if len(frame) == 0:
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")
    frame = clean_frame(frame)

    y = _eval_lhs(lhs, frame, env) if lhs is not None else None
    try:
        X = patsy.dmatrix(ModelDesc([], desc.rhs_termlist), frame, eval_env=env, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r}: {exc}") from None
    if X.shape[0] != len(frame):  # pragma: no cover - patsy raises on NA instead
        raise ValueError("the design matrix lost rows")
    return ModelFrame(
        y=y, X=X, design_info=X.design_info, data=frame, columns=rhs_cols, lhs=lhs, formula=formula, env=env,
        n_input=n_input, n_dropped=n_dropped, dropped_by_column=dropped_by_column if n_dropped else {},
    )


def design_for(mf: ModelFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """The design matrix of ``profiles`` (new covariate values), coded as in the fit.

    Every column the right-hand side uses must be present and complete; categorical
    values must be levels seen in the fit.
    """
    if not isinstance(profiles, pd.DataFrame):
        raise TypeError(f"profiles must be a pandas DataFrame, got {type(profiles).__name__}")
    report = ValidationReport("profiles")
    for col in mf.columns:
        if col not in profiles.columns:
            report.add_table_problem("profiles", "column used by the model is missing from the profiles", column=col)
        elif profiles[col].isna().any():
            report.add_table_problem("profiles", f"{int(profiles[col].isna().sum())} missing value(s)", column=col)
    if not report.ok:
        raise DataValidationError(report)
    frame = clean_frame(profiles.loc[:, mf.columns]) if mf.columns else pd.DataFrame(index=profiles.index)
    try:
        (X,) = patsy.build_design_matrices([mf.design_info], frame, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ValueError(f"profiles: {exc}") from None
    if X.shape[0] != len(profiles):
        # an intercept-only model gives a single row: repeat it
        X = pd.DataFrame(np.repeat(X.to_numpy(), len(profiles), axis=0), columns=X.columns, index=profiles.index)
    X.index = profiles.index
    return X
