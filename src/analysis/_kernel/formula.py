"""Formulas to checked design matrices: the one place where a DataFrame becomes numbers.

Every model of the package (Cox, AFT, the response models, the propensity model) calls
:func:`model_frame`, which

* parses a two-sided (``"responder ~ age + C(site)"``) or one-sided (``"age + C(site)"``,
  ``"~ age"``) formula in patsy syntax, as the model requires;
* finds the data columns the formula uses (plain names and ``Q("odd name")``), and reports
  every name that is neither a column nor a function the formula may call, and every
  column named like a Python keyword (``lambda``, ``class``) with how to quote it;
* applies the one missing-value rule: a missing value in any column used (the formula's and
  the roles in ``extra``: duration, weights, cluster, ...) is an error naming the column,
  the number of rows and the first rows, unless ``dropna=True``, when those rows are
  dropped and counted (``n_dropped``, ``dropped_by_column``);
* converts pandas' nullable dtypes (``boolean``, ``Int64``, ``Float64``, ``string``), which
  patsy cannot read, to plain numpy ones;
* evaluates the left-hand side itself (a column, or an expression such as
  ``improvement_pct >= 50``) and builds the right-hand side with patsy, keeping the
  ``design_info`` so that predictions for new covariate profiles use the same coding
  (:func:`design_for`);
* refuses model columns that are not finite numbers (``log(0)``), naming rows and column.

Factor levels follow R's order: a pandas Categorical's category order, otherwise sorted
values (patsy's rule), so the first level is the reference level as in R. An unordered
Categorical of text whose categories are in sorted order (a loaded dataset's ``sex``,
``route``, ``phase`` and ``instrument``) is read as its text: its levels are the values
present, sorted, so a category no row has (``route`` ``"oral"`` in a cohort without oral
sessions) is not a level, as for text. Models without an
intercept parameter (Cox) ask for ``intercept=False``: the matrix is coded as with an
intercept (full-rank treatment contrasts) and the ``Intercept`` column is then dropped, as
R's ``coxph`` does.
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import sys
import tokenize
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from patsy import INTERCEPT, EvalEnvironment, ModelDesc

from ..problems import DataValidationError, ValidationReport
from .checks import is_sorted_text_categories
from .results import RENAMED_ARGUMENTS_CODE

__all__ = [
    "FORMULA_NAMES",
    "INTERCEPT_NAME",
    "ModelFrame",
    "capture_env",
    "clean_frame",
    "design_for",
    "formula_variables",
    "missing_value_rule",
    "model_frame",
]

#: the name of the intercept term in every summary (patsy's)
INTERCEPT_NAME = "Intercept"

#: functions a formula may call besides patsy's own (C, I, Q, center, standardize, ...)
FORMULA_NAMES = {"np": np, "log": np.log, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
_PATSY_NAMES = {
    "C", "I", "Q", "center", "standardize", "scale", "bs", "cr", "cc", "te", "Treatment", "Sum",
    "Helmert", "Poly", "Diff", "ContrastMatrix", "True", "False", "None",
}
_ROWS_SHOWN = 5


def capture_env(depth: int = 1) -> EvalEnvironment:
    """The caller's namespace (``depth`` frames up) for names such as ``np`` in formulas.

    Frames of the wrappers that :func:`~analysis._kernel.results.renamed_arguments` puts
    around a model function are not counted, so ``capture_env(1)`` inside a decorated
    model is still the namespace of the model's caller.
    """
    frame = sys._getframe(1)  # the function that asks
    skipped = 0
    try:
        for _ in range(depth):
            frame = frame.f_back
            while frame is not None and frame.f_code is RENAMED_ARGUMENTS_CODE:
                frame = frame.f_back
                skipped += 1
    finally:
        del frame
    return EvalEnvironment.capture(depth + 1 + skipped)


def _columns_list(columns) -> str:
    return ", ".join(map(str, list(columns)[:30]))


# ----------------------------------------------------------------------------------------
# which columns a formula uses
# ----------------------------------------------------------------------------------------
def _factor_names(code: str) -> list[str]:
    """Names a patsy factor's code refers to, function names and attribute bases left out
    (``np.log(dose)`` gives ``dose``; ``Q("a b")`` gives ``a b``)."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return []
    skip: set[int] = set()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            skip.add(id(node.func))
            if isinstance(node.func, ast.Name) and node.func.id == "Q" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.append(arg.value)
        elif isinstance(node, ast.Attribute):
            skip.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in skip and node.id not in names:
            names.append(node.id)
    return names


def _codes(termlist) -> list[str]:
    return [f.code for term in termlist for f in term.factors]


def formula_variables(codes: list[str], columns, *, env: EvalEnvironment | None = None) -> tuple[list[str], list[str]]:
    """(data columns used, names that are neither a column nor a known function) of the
    given factor codes, each in order of first appearance.

    Examples
    --------
    >>> formula_variables(["np.log(dose)", "C(site)", "age", "sex"], ["dose", "site", "age"])
    (['dose', 'site', 'age'], ['sex'])
    """
    present = {c for c in columns if isinstance(c, str)}
    used: list[str] = []
    unknown: list[str] = []
    for code in codes:
        for name in _factor_names(code):
            if name in present:
                if name not in used:
                    used.append(name)
            elif name in FORMULA_NAMES or name in _PATSY_NAMES or name in unknown:
                continue
            elif env is not None and _in_env(env, name):
                continue
            else:
                unknown.append(name)
    return used, unknown


def _in_env(env: EvalEnvironment, name: str) -> bool:
    try:
        env.namespace[name]
    except KeyError:
        return False
    return True


def _keyword_columns(formula: str, columns) -> list[str]:
    """Columns named like a Python keyword and written bare in the formula (patsy would
    fail with a SyntaxError that names no column)."""
    present = {c for c in columns if isinstance(c, str)}
    found: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(formula).readline):
            if (tok.type == tokenize.NAME and keyword.iskeyword(tok.string) and tok.string not in ("True", "False", "None")
                    and tok.string not in found):
                found.append(tok.string)
    except (tokenize.TokenError, IndentationError):
        return []
    return [k for k in found if k in present] + [k for k in found if k not in present]


# ----------------------------------------------------------------------------------------
# dtypes patsy can read
# ----------------------------------------------------------------------------------------
def clean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain numpy dtypes for patsy: nullable booleans to bool (or object with missing
    values), nullable numbers to float64, pandas strings to object, and unordered
    categoricals of text in sorted order (:func:`is_sorted_text_categories`: a loaded
    dataset's category columns) to object as their text; other categoricals stay as they are.

    Examples
    --------
    >>> clean_frame(pd.DataFrame({"a": pd.array([1, 2], dtype="Int64")})).dtypes["a"]
    dtype('float64')
    >>> route = pd.Categorical(["iv", "im"], categories=["im", "iv", "oral"])
    >>> clean_frame(pd.DataFrame({"route": route}))["route"].tolist()
    ['iv', 'im']
    """
    out = {}
    for col in frame.columns:
        s = frame[col]
        dt = s.dtype
        if isinstance(dt, pd.BooleanDtype):
            out[col] = s.astype(bool) if not s.isna().any() else s.astype(object).where(s.notna(), np.nan)
        elif isinstance(dt, pd.CategoricalDtype):
            out[col] = s.astype(object).where(s.notna(), np.nan) if is_sorted_text_categories(dt) else s
        elif pd.api.types.is_extension_array_dtype(dt) and pd.api.types.is_numeric_dtype(dt):
            out[col] = s.astype("float64")
        elif pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
            out[col] = s.astype(object).where(s.notna(), np.nan)
        else:
            out[col] = s
    return pd.DataFrame(out, index=frame.index)


# ----------------------------------------------------------------------------------------
# the one missing-value rule
# ----------------------------------------------------------------------------------------
def missing_value_rule(report: ValidationReport, table: str, frame: pd.DataFrame, columns: dict, *,
                       dropna: bool) -> tuple[np.ndarray, dict[str, int]]:
    """Apply the package's missing-value rule to ``columns`` of ``frame``.

    ``columns`` maps each column to its role for the message (``"duration"``) or None. A
    column with missing values is an error in ``report`` naming it, how many rows and the
    first of them, unless ``dropna``; returns the rows with any missing value and, per
    column, how many.

    Examples
    --------
    >>> r = ValidationReport("t")
    >>> miss, counts = missing_value_rule(r, "t", pd.DataFrame({"a": [1, None]}), {"a": None}, dropna=False)
    >>> counts, r.n_errors
    ({'a': 1}, 1)
    """
    missing_any = np.zeros(len(frame), dtype=bool)
    dropped_by_column: dict[str, int] = {}
    for col, role in columns.items():
        miss = frame[col].isna().to_numpy()
        k = int(miss.sum())
        if not k:
            continue
        dropped_by_column[str(col)] = k
        missing_any |= miss
        if not dropna:
            shown = np.flatnonzero(miss)[:_ROWS_SHOWN] + 1
            more = ", ..." if k > _ROWS_SHOWN else ""
            what = f"a missing {role} value" if role else "a missing value"
            report.add_table_problem(
                table,
                f"{k} row(s) have {what} (row {', '.join(map(str, shown))}{more}); pass dropna=True "
                "to drop them (the result then records how many rows were dropped)",
                column=str(col),
            )
    return missing_any, dropped_by_column


# ----------------------------------------------------------------------------------------
# the model frame
# ----------------------------------------------------------------------------------------
@dataclass
class ModelFrame:
    """Checked model data: the outcome, the design matrix and how they were made.

    Attributes
    ----------
    y : pandas.Series or None
        The evaluated left-hand side (None for a one-sided formula).
    X : pandas.DataFrame
        The design matrix (patsy coding and names; an ``Intercept`` column unless the
        formula removes it with ``- 1`` or the model asked for ``intercept=False``).
    design_info : patsy.DesignInfo
        How to build ``X`` for new data (:func:`design_for`).
    data : pandas.DataFrame
        The rows used, with the columns the formula and the roles use, in clean dtypes.
    columns : list of str
        Data columns the right-hand side uses.
    rows : numpy.ndarray
        Positions (0-based) in the input table of the rows used.
    n_input, n_dropped : int
        Rows passed in, and rows dropped for missing values (``dropna=True`` only).
    dropped_by_column : dict
        Per column, the number of rows with a missing value there (when rows were dropped).
    terms : dict
        Each formula term (patsy's name) to the positions of its columns in ``X``.
    plain : tuple of str or None
        When every right-hand-side term is a numeric data column named as it is
        (:func:`_plain_terms`): those columns, which are the design (built without patsy
        evaluating every row; the same numbers and ``design_info``).
    """

    y: pd.Series | None
    X: pd.DataFrame
    design_info: patsy.DesignInfo
    data: pd.DataFrame
    columns: list[str]
    rows: np.ndarray
    lhs: str | None
    formula: str
    env: EvalEnvironment
    n_input: int
    n_dropped: int
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    intercept: bool = True
    terms: dict[str, list[int]] = field(default_factory=dict)
    plain: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        """Rows used."""
        return int(self.X.shape[0])


def _split(formula: str, two_sided: bool | None) -> tuple[str | None, str]:
    """(left-hand text or None, right-hand text) with the sidedness the model asks for."""
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'responder ~ age + C(site)', got {type(formula).__name__}")
    text = formula.strip()
    if "~" in text:
        lhs, _, rhs = text.partition("~")
        lhs = lhs.strip() or None
    else:
        lhs, rhs = None, text
    rhs = rhs.strip() or "1"
    if two_sided is True and lhs is None:
        raise ValueError(f"formula {formula!r} has no outcome: write it as 'outcome ~ predictors'")
    if two_sided is False and lhs is not None:
        raise ValueError(
            f"formula {formula!r}: give only the right-hand side (the covariates, e.g. '~ age + C(route)'); "
            "the outcome is given by the model's own arguments (duration=, event=, ...)"
        )
    return lhs, rhs


def _eval_lhs(code: str, frame: pd.DataFrame, env: EvalEnvironment) -> pd.Series:
    if code in frame.columns:
        return frame[code]
    builtins = {k: getattr(patsy.builtins, k) for k in patsy.builtins.__all__}
    value = env.with_outer_namespace({**FORMULA_NAMES, **builtins}).eval(code, inner_namespace=frame)
    if np.ndim(value) == 0:
        raise ValueError(f"the left-hand side {code!r} evaluates to a single value, not one per row")
    return pd.Series(np.asarray(value) if not isinstance(value, pd.Series) else value.to_numpy(), index=frame.index,
                     name=code)


def _term_slices(info: patsy.DesignInfo, drop_intercept: bool) -> dict[str, list[int]]:
    shift = 1 if drop_intercept else 0
    out: dict[str, list[int]] = {}
    for name, sl in info.term_name_slices.items():
        if drop_intercept and name == INTERCEPT_NAME:
            continue
        out[name] = list(range(sl.start - shift, sl.stop - shift))
    return out


def model_frame(
    formula: str,
    data: pd.DataFrame,
    *,
    env: EvalEnvironment | None = None,
    dropna: bool = False,
    extra: dict[str, str | list[str] | None] | None = None,
    table: str = "data",
    two_sided: bool | None = True,
    intercept: bool = True,
) -> ModelFrame:
    """Parse ``formula`` on ``data`` and return a checked :class:`ModelFrame`.

    Parameters
    ----------
    formula : str
        Patsy syntax. With ``two_sided=True`` it must have an outcome (``"y ~ x"``), with
        ``False`` it must not (``"x"`` or ``"~ x"``), with ``None`` either.
    data : pandas.DataFrame
    env : patsy.EvalEnvironment, optional
        Where names such as a user's function are looked up (the model's caller, from
        :func:`capture_env`); ``np``, ``log``, ``exp``, ``sqrt`` and ``abs`` always work.
    dropna : bool, default False
        The missing-value rule: an error naming each column with missing values, or, with
        True, those rows dropped and counted.
    extra : dict, optional
        Roles (``"duration"``, ``"weights"``, ``"cluster"``, ...) to further columns (a name
        or a list of names) that must exist; they take part in the missing-value rule and
        are kept in ``data``.
    table : str, default "data"
        Name of the table in messages.
    two_sided : bool or None, default True
    intercept : bool, default True
        False for models whose baseline absorbs the intercept (Cox): coded as with an
        intercept, then the ``Intercept`` column is dropped.

    Returns
    -------
    ModelFrame

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1, 0, 1, 0], "age": [30, 40, None, 50], "site": list("abab")})
    >>> mf = model_frame("y ~ age + C(site)", df, dropna=True)
    >>> list(mf.X.columns), mf.n, mf.n_dropped
    (['Intercept', 'C(site)[T.b]', 'age'], 3, 1)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    env = env if env is not None else EvalEnvironment([{}])
    env = env.with_outer_namespace(FORMULA_NAMES)
    lhs_text, rhs_text = _split(formula, two_sided)

    report = ValidationReport(table)
    bad_keywords = _keyword_columns(formula, data.columns)
    for name in bad_keywords:
        hint = "a column of the table" if name in data.columns else "not a column of the table"
        report.add_table_problem(
            table, f"formula {formula!r} uses '{name}', a Python keyword ({hint}), which a formula cannot use as a "
            f"bare name: write it as Q(\"{name}\") in the formula", column=name)
    if not report.ok:
        raise DataValidationError(report)
    try:
        desc = _parsed(f"{lhs_text} ~ {rhs_text}" if lhs_text is not None else f"~ {rhs_text}")
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r} could not be parsed: {exc}") from None
    lhs_codes = _codes(desc.lhs_termlist)
    if len(desc.lhs_termlist) > 1 or len(lhs_codes) > 1:
        raise ValueError(f"formula {formula!r}: the left-hand side must be one column or expression")
    lhs = lhs_codes[0] if lhs_codes else None
    rhs_terms = list(desc.rhs_termlist)
    if not intercept:
        rhs_terms = [INTERCEPT, *[t for t in rhs_terms if t != INTERCEPT]]

    roles: dict[str, list[str]] = {}
    for role, cols in (extra or {}).items():
        if cols is None:
            continue
        roles[role] = [cols] if isinstance(cols, str) else list(cols)
    for role, cols in roles.items():
        for col in cols:
            if col not in data.columns:
                report.add_table_problem(table, f"{role} column not found; columns are: {_columns_list(data.columns)}",
                                         column=str(col))
    rhs_cols, unknown = formula_variables(_codes(rhs_terms), data.columns, env=env)
    lhs_cols, lhs_unknown = formula_variables([lhs], data.columns, env=env) if lhs else ([], [])
    for name in dict.fromkeys(lhs_unknown + unknown):
        report.add_table_problem(
            table, f"formula refers to '{name}', which is not a column; columns are: {_columns_list(data.columns)}",
            column=name)
    if lhs is not None and not lhs_cols and not lhs_unknown:
        report.add_table_problem(
            table, f"the outcome {lhs!r} names no column of the table; columns are: {_columns_list(data.columns)}",
            column=lhs)
    if not report.ok:
        raise DataValidationError(report)

    role_cols = [c for cols in roles.values() for c in cols]
    cols = list(dict.fromkeys(lhs_cols + rhs_cols + role_cols))
    frame = data.loc[:, cols]
    n_input = len(frame)
    missing_any, dropped_by_column = missing_value_rule(report, table, frame, {c: None for c in cols}, dropna=dropna)
    if not report.ok:
        raise DataValidationError(report)
    n_dropped = int(missing_any.sum())
    rows = np.flatnonzero(~missing_any)
    if n_dropped:
        frame = frame.iloc[rows]
    if len(frame) == 0:
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")
    frame = clean_frame(frame)

    y = _eval_lhs(lhs, frame, env) if lhs is not None else None
    plain = _plain_terms(rhs_terms, frame)
    try:
        with np.errstate(all="ignore"):  # non-finite results are reported below
            if plain is not None:
                info = _plain_design_info(rhs_terms, frame, env)
                X = _plain_design(info, frame, frame.index)
            else:
                X = patsy.dmatrix(ModelDesc([], rhs_terms), frame, eval_env=env,
                                  NA_action=patsy.NAAction(NA_types=[]), return_type="dataframe")
                info = X.design_info
    except (patsy.PatsyError, SyntaxError) as exc:
        raise ValueError(f"formula {formula!r} could not be evaluated on the data: {exc}") from None
    if not intercept:
        X = X.drop(columns=INTERCEPT_NAME)
    values = X.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r_idx, c_idx = np.nonzero(bad)
        for j in np.unique(c_idx):
            rr = r_idx[c_idx == j]
            report.add_rows(table, str(X.columns[j]), rows[rr], values[rr, j],
                            "model column is not a finite number (check the formula's transforms)")
        raise DataValidationError(report)
    return ModelFrame(
        y=y, X=X, design_info=info, data=frame, columns=rhs_cols, rows=rows, lhs=lhs, formula=formula, env=env,
        n_input=n_input, n_dropped=n_dropped, dropped_by_column=dropped_by_column if n_dropped else {},
        intercept=intercept, terms=_term_slices(info, not intercept), plain=plain,
    )


def _plain_terms(rhs_terms: list, frame: pd.DataFrame) -> tuple[str, ...] | None:
    """The columns, when every term but the intercept is one numeric column of ``frame``
    named as it is (``age``; not ``np.log(age)``, ``C(site)``, ``Q("a b")``, ``a:b`` or a
    boolean, which patsy codes as a category); otherwise None."""
    names = []
    for term in rhs_terms:
        if term == INTERCEPT:
            continue
        if len(term.factors) != 1:
            return None
        code = term.factors[0].code
        if code not in frame.columns:
            return None
        dtype = frame[code].dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "fiu":
            return None
        names.append(code)
    return tuple(names)


@functools.lru_cache(maxsize=1024)
def _parsed(formula: str) -> ModelDesc:
    """patsy's parse of ``formula`` (the same formulas are fitted again and again: a report
    fits about sixty models of a dozen formulas)."""
    return ModelDesc.from_formula(formula)


#: the design information of plain numeric terms, by the terms (it depends on nothing else)
_PLAIN_INFO: dict[tuple, patsy.DesignInfo] = {}


def _plain_design_info(rhs_terms: list, frame: pd.DataFrame, env: EvalEnvironment) -> patsy.DesignInfo:
    """The design information of plain numeric terms (:func:`_plain_terms`): the coding of a
    numeric column does not depend on its values, so patsy works it out on the first row,
    once for each list of terms."""
    key = tuple(rhs_terms)
    info = _PLAIN_INFO.get(key)
    if info is None:
        (info,) = patsy.design_matrix_builders([rhs_terms], lambda: iter([frame.iloc[:1]]), env,
                                               NA_action=patsy.NAAction(NA_types=[]))
        if len(_PLAIN_INFO) < 1024:
            _PLAIN_INFO[key] = info
    return info


def _plain_design(info: patsy.DesignInfo, frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The design of plain numeric columns (:func:`_plain_terms`) in ``info``'s column order:
    ones for the intercept, each column as float64, as patsy builds it."""
    columns = []
    for term in info.terms:
        if term == INTERCEPT:
            columns.append(np.ones(len(frame)))
        else:
            columns.append(frame[term.factors[0].code].to_numpy(dtype=float))
    values = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    return pd.DataFrame(values, columns=list(info.column_names), index=index)


def design_for(mf: ModelFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """The design matrix of ``profiles`` (new covariate values), coded as in the fit.

    Every column the right-hand side uses must be present and complete; categorical
    values must be levels seen in the fit.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1, 0, 1, 0], "site": list("abab")})
    >>> mf = model_frame("y ~ C(site)", df)
    >>> design_for(mf, pd.DataFrame({"site": ["b"]})).to_numpy().tolist()
    [[1.0, 1.0]]
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
    if mf.plain is not None and _plain_terms(mf.design_info.terms, frame) is not None:
        X = _plain_design(mf.design_info, frame, profiles.index)
        return X.drop(columns=INTERCEPT_NAME) if not mf.intercept else X
    try:
        (X,) = patsy.build_design_matrices([mf.design_info], frame, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ValueError(f"profiles could not be turned into model columns: {exc}") from None
    if X.shape[0] != len(profiles):
        # an intercept-only model gives a single row: repeat it
        X = pd.DataFrame(np.repeat(X.to_numpy(), len(profiles), axis=0), columns=X.columns, index=profiles.index)
    X.index = profiles.index
    if not mf.intercept:
        X = X.drop(columns=INTERCEPT_NAME)
    return X
