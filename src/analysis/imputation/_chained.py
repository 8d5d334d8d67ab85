"""Multiple imputation by chained equations (``impute``).

The algorithm is van Buuren's fully conditional specification (van Buuren and
Groothuis-Oudshoorn 2011; R's ``mice``): every incomplete variable is filled first with
random draws of its observed values, then, for ``max_iter`` sweeps, each in turn is
imputed from all the other variables (their current values) by its method. The m
imputations are independent chains, each with its own random stream spawned from ``seed``,
so the result is reproducible and does not depend on how many processes compute it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._kernel.checks import check_choice, get_ax, is_sorted_text_categories
from ._draws import draw_logreg, draw_norm, draw_pmm

__all__ = ["Imputed", "impute"]

METHODS = ("pmm", "norm", "logreg")


@dataclass(eq=False, repr=False)
class Imputed:
    """m completed copies of a dataset and how they were made.

    Attributes
    ----------
    datasets : list of pandas.DataFrame
        The completed datasets, each with the columns and index of the input.
    methods : dict
        Method used for each imputed column.
    n_missing : pandas.Series
        Missing values per imputed column in the input.
    seed, max_iter : int
        The random seed and the number of sweeps.
    chain_mean : pandas.DataFrame
        Mean of the imputed values of each column (columns) at each sweep of each chain
        (index ``imputation, iteration``): chains that mix overlap after a few sweeps.
    """

    datasets: list[pd.DataFrame]
    methods: dict[str, str]
    n_missing: pd.Series
    seed: int
    max_iter: int
    chain_mean: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def m(self) -> int:
        """Number of imputations."""
        return len(self.datasets)

    def fit(self, model: Callable[[pd.DataFrame], Any]) -> list[Any]:
        """``model`` applied to every completed dataset (pass the list to :func:`pool`).

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.imputation import impute, pool
        >>> from analysis.response import logistic
        >>> d = pd.DataFrame({"y": [0, 1, 0, 1, 1, 0, 1, 1, 0, 1], "x": [1, 2, None, 4, 5, 6, None, 8, 3, 7]})
        >>> imp = impute(d, m=3, seed=1)
        >>> pool(imp.fit(lambda data: logistic("y ~ x", data))).m
        3
        """
        return [model(data) for data in self.datasets]

    def plot(self, column: str, ax=None):
        """Mean of the imputed values of ``column`` by sweep, one line per chain."""
        ax = get_ax(ax)
        if column not in self.chain_mean.columns:
            raise KeyError(f"Imputed.plot: {column!r} was not imputed; imputed columns: {list(self.chain_mean.columns)}")
        for i, chain in self.chain_mean[column].groupby(level="imputation"):
            ax.plot(chain.index.get_level_values("iteration"), chain.to_numpy(), marker="o", linewidth=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"mean of imputed {column}")
        return ax

    def __repr__(self) -> str:
        parts = ", ".join(f"{c}: {self.methods[c]} ({int(n)} missing)" for c, n in self.n_missing.items())
        return f"Imputed(m={self.m}, max_iter={self.max_iter}, seed={self.seed}; {parts})"


def _is_binary(values: pd.Series) -> bool:
    """Two-valued: booleans, two-level categories, two distinct strings, numbers all 0 or 1.

    Text held as categories in sorted order (a loaded dataset's ``sex``, ...:
    :func:`~analysis._kernel.checks.is_sorted_text_categories`) counts as the text: two
    distinct values, whatever its other categories."""
    present = values.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype) and not is_sorted_text_categories(values.dtype):
        return len(values.cat.categories) == 2
    if pd.api.types.is_bool_dtype(values.dtype):
        return True
    if pd.api.types.is_numeric_dtype(values.dtype):
        return present.nunique() == 2 and set(present.unique()) <= {0, 1}
    return present.nunique() <= 2


def _encode_binary(values: pd.Series) -> tuple[np.ndarray, Callable[[np.ndarray], pd.Series]]:
    """0/1 codes of a two-valued column and the function that writes codes back (text held
    as sorted categories coded as the text is, and written back in its dtype)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and not is_sorted_text_categories(values.dtype):
        levels = list(values.cat.categories)
    elif pd.api.types.is_bool_dtype(values.dtype) or set(values.dropna().unique()) <= {True, False}:
        levels = [False, True]
    else:
        levels = sorted(values.dropna().unique(), key=str)
        if len(levels) == 1:
            raise ValueError(f"impute: column {values.name!r} has a single observed value {levels[0]!r}; "
                             "nothing to impute it from")
    codes = np.full(len(values), np.nan)
    present = values.notna().to_numpy()
    codes[present] = [levels.index(v) for v in values[present]]

    def back(z: np.ndarray) -> pd.Series:
        out = pd.Series([levels[int(v)] for v in z], index=values.index, name=values.name)
        if isinstance(values.dtype, pd.CategoricalDtype):
            return out.astype(values.dtype)
        if pd.api.types.is_bool_dtype(values.dtype) or levels == [False, True]:
            return out.astype(values.dtype if pd.api.types.is_bool_dtype(values.dtype) else "boolean")
        return out

    return codes, back


def _predictor_block(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Complete (never imputed) predictors as numbers: dummies for categories (of the values
    present for text, also text held as sorted categories)."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float).to_numpy()[:, None]
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float).to_numpy()[:, None]
    if is_sorted_text_categories(values.dtype):
        values = values.cat.remove_unused_categories()  # the categories text would get: those present, sorted
    dummies = pd.get_dummies(values.astype("category"), drop_first=True, dtype=float)
    return dummies.to_numpy()


def impute(data: pd.DataFrame, m: int = 5, *, method: str | Mapping[str, str] = "pmm", seed: int = 0,
           max_iter: int = 10, exclude: Sequence[str] = (), donors: int = 5) -> Imputed:
    """Impute the missing values of ``data`` m times by chained equations.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (patient or course); every column not in ``exclude`` is used to
        impute every other.
    m : int
        Number of imputations (default 5; use more, e.g. 20-100, when the fraction of missing
        information is large: van Buuren 2018, section 2.8).
    method : {"pmm", "norm", "logreg"} or dict
        Method for numeric columns (default ``"pmm"``, predictive mean matching, which
        imputes only values that were observed). Two-valued columns (booleans, two-level
        categories, two distinct strings, numbers that are all 0 or 1) use ``"logreg"``
        unless a dict names a method for the column. ``"logreg"`` on a numeric column
        requires 0/1 values.
    seed : int
        Seed of the random streams (default 0).
    max_iter : int
        Sweeps through the incomplete columns (default 10; mice's is 5). With a single
        incomplete column one sweep is done: the sweeps would be independent draws from the
        same conditional distribution.
    exclude : sequence of str
        Columns carried along unchanged and not used as predictors (identifiers, dates, free
        text). They must be complete.
    donors : int
        Candidate donors of predictive mean matching (default 5, as mice).

    Returns
    -------
    Imputed

    Raises
    ------
    ValueError
        A column to impute is neither numeric nor two-valued (categories with more levels
        cannot be imputed here), a column is entirely missing, or an excluded column has
        missing values.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"baseline": rng.normal(20, 4, 200)})
    >>> d["week4"] = d.baseline - 8 + rng.normal(0, 3, 200)
    >>> d.loc[d.baseline > 22, "week4"] = np.where(rng.uniform(size=(d.baseline > 22).sum()) < 0.5, np.nan,
    ...                                             d.loc[d.baseline > 22, "week4"])
    >>> imp = impute(d, m=5, seed=2)
    >>> imp.m, int(imp.n_missing["week4"]) > 0, all(s["week4"].notna().all() for s in imp.datasets)
    (5, True, True)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"impute: data must be a pandas DataFrame, got {type(data).__name__}")
    if int(m) < 1:
        raise ValueError(f"impute: m must be at least 1, got {m}")
    if int(max_iter) < 1:
        raise ValueError(f"impute: max_iter must be at least 1, got {max_iter}")
    missing = [c for c in exclude if c not in data.columns]
    if missing:
        raise KeyError(f"impute: exclude names columns not in the data: {missing}")
    for c in exclude:
        if data[c].isna().any():
            raise ValueError(f"impute: excluded column {c!r} has {int(data[c].isna().sum())} missing values; "
                             "excluded columns are carried along and must be complete")
    used = [c for c in data.columns if c not in set(exclude)]
    n_missing = data[used].isna().sum()
    targets = [c for c in used if n_missing[c] > 0]
    for c in targets:
        if n_missing[c] == len(data):
            raise ValueError(f"impute: column {c!r} is missing in every row; nothing to impute it from")

    methods: dict[str, str] = {}
    for c in targets:
        chosen = method.get(c) if isinstance(method, Mapping) else None
        if _is_binary(data[c]):
            chosen = chosen or "logreg"
        elif pd.api.types.is_numeric_dtype(data[c].dtype):
            chosen = chosen or (method if isinstance(method, str) else "pmm")
        else:
            raise ValueError(f"impute: column {c!r} ({data[c].dtype}, {data[c].nunique()} values) is neither numeric "
                             "nor two-valued; impute it outside, or exclude it")
        methods[c] = check_choice(f"impute: method of {c!r}", chosen, METHODS)
        if methods[c] == "logreg" and not _is_binary(data[c]):
            values = set(data[c].dropna().unique())
            if not values <= {0, 1}:
                raise ValueError(f"impute: method 'logreg' for {c!r} needs 0/1 values, found {sorted(values)[:5]}")
    if isinstance(method, Mapping):
        unknown = set(method) - set(targets)
        if unknown:
            raise KeyError(f"impute: method names columns with nothing to impute: {sorted(unknown)}")

    # numbers of every used column: fixed blocks for complete ones, one column per target
    fixed = [_predictor_block(data, c) for c in used if c not in methods]
    fixed_x = np.hstack([np.ones((len(data), 1))] + fixed) if fixed else np.ones((len(data), 1))
    codes: dict[str, np.ndarray] = {}
    writers: dict[str, Callable[[np.ndarray], pd.Series]] = {}
    for c in targets:
        if _is_binary(data[c]) and not pd.api.types.is_numeric_dtype(data[c].dtype):
            codes[c], writers[c] = _encode_binary(data[c])
        else:
            codes[c] = data[c].astype(float).to_numpy()
    observed = {c: ~np.isnan(codes[c]) for c in targets}

    # with one incomplete column nothing imputed feeds back into its predictors: every sweep is
    # an independent draw from the same conditional distribution, so one sweep is exact
    sweeps = 1 if len(targets) == 1 else int(max_iter)
    streams = np.random.SeedSequence(int(seed)).spawn(int(m))
    datasets: list[pd.DataFrame] = []
    means: list[dict[str, Any]] = []
    for i, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        state = {c: v.copy() for c, v in codes.items()}
        for c in targets:  # start: random draws of the observed values
            obs_values = state[c][observed[c]]
            state[c][~observed[c]] = rng.choice(obs_values, size=int((~observed[c]).sum()), replace=True)
        for it in range(1, sweeps + 1):
            row: dict[str, Any] = {"imputation": i, "iteration": it}
            for c in targets:
                others = [state[o][:, None] for o in targets if o != c]
                x = np.hstack([fixed_x] + others) if others else fixed_x
                y, obs = state[c], observed[c]
                if methods[c] == "pmm":
                    state[c][~obs] = draw_pmm(x, y, obs, rng, donors=donors)
                elif methods[c] == "norm":
                    state[c][~obs] = draw_norm(x, y, obs, rng)
                else:
                    state[c][~obs] = draw_logreg(x, y, obs, rng)
                row[c] = float(np.mean(state[c][~obs]))
            means.append(row)
        completed = data.copy()
        for c in targets:
            if c in writers:
                completed[c] = writers[c](state[c])
            elif methods[c] == "pmm" and pd.api.types.is_integer_dtype(data[c].dtype):
                completed[c] = pd.Series(state[c], index=data.index).astype(data[c].dtype)  # nullable Int64: donors' integers
            else:
                completed[c] = state[c]
        datasets.append(completed)
    chain_mean = pd.DataFrame(means).set_index(["imputation", "iteration"])
    return Imputed(datasets=datasets, methods=methods, n_missing=n_missing[targets], seed=int(seed),
                   max_iter=sweeps, chain_mean=chain_mean)
