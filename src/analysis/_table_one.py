"""Table 1: baseline characteristics by group, with standardised mean differences.

Numbers are mean (SD), or median [IQR] for columns listed as non-normal; categories and
flags are n (%). The standardised mean difference (SMD) of two groups is

* continuous: (m1 - m2) / sqrt((s1² + s2²) / 2);
* binary: (p1 - p2) / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2);
* categorical with more levels: the multivariate SMD of Yang & Dalton (2012),
  sqrt((p1 - p2)' S⁻¹ (p1 - p2)) over the levels but the first;

(Austin 2009, Stat Med 28:3083). With more than two groups the largest pairwise SMD is
shown. With weights, means, SDs and proportions are weighted; the denominator is by default
the **unweighted** pooled SD (``smd_denominator="unweighted"``, as the R package cobalt
does), so that a change in the SMD after weighting reflects a change in the means only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["TableOne", "table_one", "smd"]


def _wmean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    ok = ~np.isnan(x)
    x, w = x[ok], w[ok]
    if w.sum() <= 0:
        return np.nan, np.nan
    m = np.average(x, weights=w)
    # unbiased for frequency-like weights: sum w (x - m)^2 / (sum w - sum w^2 / sum w) ... reduces to var(ddof=1) when w == 1
    denom = w.sum() - (w**2).sum() / w.sum()
    v = float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else np.nan
    return float(m), v


def smd(x: np.ndarray, group: np.ndarray, a, b, weights: np.ndarray | None = None, *,
        kind: str = "continuous", denominator: str = "unweighted") -> float:
    """Standardised mean difference of ``x`` between groups ``a`` and ``b`` (see module docs).

    For ``kind="categorical"``, ``x`` is a 2-D array of level indicators (one column per level).

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.adjuncts import smd
    >>> x = np.array([1., 2, 3, 4, 5, 6]); g = np.array([0, 0, 0, 1, 1, 1])
    >>> round(smd(x, g, 1, 0), 4)
    3.0
    """
    w = np.ones(len(group)) if weights is None else np.asarray(weights, dtype=float)
    ia, ib = group == a, group == b
    if kind == "categorical":
        p_a = np.array([_wmean_var(x[ia, j], w[ia])[0] for j in range(x.shape[1])])[1:]
        p_b = np.array([_wmean_var(x[ib, j], w[ib])[0] for j in range(x.shape[1])])[1:]
        if denominator == "unweighted":
            q_a = x[ia].mean(axis=0)[1:]
            q_b = x[ib].mean(axis=0)[1:]
        else:
            q_a, q_b = p_a, p_b
        cov = lambda p: np.diag(p) - np.outer(p, p)  # noqa: E731
        s = (cov(q_a) + cov(q_b)) / 2
        d = p_a - p_b
        try:
            return float(np.sqrt(d @ np.linalg.pinv(s) @ d))
        except np.linalg.LinAlgError:
            return np.nan
    m_a, v_a = _wmean_var(x[ia], w[ia])
    m_b, v_b = _wmean_var(x[ib], w[ib])
    if kind == "binary":
        if denominator == "unweighted":
            pa, pb = np.nanmean(x[ia]), np.nanmean(x[ib])
        else:
            pa, pb = m_a, m_b
        denom = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
    else:
        if denominator == "unweighted":
            v_a, v_b = np.nanvar(x[ia], ddof=1), np.nanvar(x[ib], ddof=1)
        denom = np.sqrt((v_a + v_b) / 2)
    return float((m_a - m_b) / denom) if denom > 0 else np.nan


@dataclass
class TableOne:
    """Table 1 as a DataFrame (``table``), the counts behind its n (%) cells (``counts``: one
    row per characteristic and level, with ``shown`` False for counts that are not printed
    but follow by subtraction, such as the "no" of a flag), and exports to Markdown and LaTeX."""

    table: pd.DataFrame
    counts: pd.DataFrame
    group_sizes: pd.Series
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The table as a GitHub-flavoured Markdown table."""
        cols = list(self.table.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, row in self.table.iterrows():
            lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """The table as a LaTeX tabular (booktabs)."""
        def esc(v):
            text = "" if pd.isna(v) else str(v)
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                         ("<", r"$<$"), (">", r"$>$")):
                text = text.replace(a, b)
            return text

        cols = list(self.table.columns)
        out = [r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule", " & ".join(map(esc, cols)) + r" \\",
               r"\midrule"]
        out += [" & ".join(esc(v) for v in row) + r" \\" for row in self.table.itertuples(index=False)]
        out += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(out) + "\n"


def table_one(data: pd.DataFrame, group: str | None, columns: list[str], *, weights: str | None = None,
              nonnormal: list[str] | tuple = (), smd_denominator: str = "unweighted", digits: int = 1) -> TableOne:
    """Baseline characteristics overall and by group, with SMDs (unweighted and, with
    ``weights``, weighted).

    Parameters
    ----------
    data : DataFrame
    group : str or None
        Grouping column (None: overall only).
    columns : list of str
        Characteristics; numeric columns are summarised as numbers, booleans as one n (%)
        row, anything else as n (%) per level.
    weights : str, optional
        Column of weights (e.g. inverse-probability weights); shown counts become weighted sums.
    nonnormal : list of str
        Numeric columns summarised as median [IQR].
    smd_denominator : {"unweighted", "weighted"}
        Which pooled SD the SMD divides by (see module docs).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis import table_one
    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "age": [30, 40, 50, 60], "ptsd": [True, False, True, True]})
    >>> table_one(df, "g", ["age", "ptsd"]).table.columns.tolist()
    ['characteristic', 'level', 'overall', 'a', 'b', 'smd']
    """
    if smd_denominator not in ("unweighted", "weighted"):
        raise ValueError(f"smd_denominator must be 'unweighted' or 'weighted', got {smd_denominator!r}")
    missing = [c for c in columns + ([group] if group else []) + ([weights] if weights else []) if c not in data.columns]
    if missing:
        raise KeyError(f"table_one: column(s) not in the data: {missing}; columns are {list(data.columns)}")
    w = np.ones(len(data)) if weights is None else data[weights].to_numpy(dtype=float)
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"table_one: weights in {weights!r} must be finite and non-negative")
    g = np.full(len(data), "overall", dtype=object) if group is None else data[group].astype(object).to_numpy()
    levels = [] if group is None else [lv for lv in pd.unique(g[pd.notna(g)])]
    try:
        levels = sorted(levels)
    except TypeError:
        pass
    col_names = ["overall"] + [str(lv) for lv in levels]
    masks = [np.ones(len(data), dtype=bool)] + [g == lv for lv in levels]
    rows, count_rows = [], []
    sizes = pd.Series([w[m].sum() for m in masks], index=col_names)
    rows.append({"characteristic": "n", "level": "", **{c: f"{s:.0f}" for c, s in sizes.items()}})
    count_rows.append({"characteristic": "n", "level": "", "shown": True, **sizes.to_dict()})

    def add_smd(row, x, kind):
        if len(levels) < 2:
            return row
        pairs = list(combinations(levels, 2))
        vals = [abs(smd(x, g, a, b, kind=kind)) for a, b in pairs]
        row["smd"] = f"{np.nanmax(vals):.3f}"
        if weights is not None:
            wvals = [abs(smd(x, g, a, b, w, kind=kind, denominator=smd_denominator)) for a, b in pairs]
            row["smd_weighted"] = f"{np.nanmax(wvals):.3f}"
        return row

    for col in columns:
        values = data[col]
        n_missing = int(values.isna().sum())
        if pd.api.types.is_bool_dtype(values) or (values.dropna().isin([True, False]).all() and values.dtype == object):
            x = values.astype(float).to_numpy()
            row = {"characteristic": col, "level": "yes"}
            counts = {}
            for name, m in zip(col_names, masks):
                ok = m & ~np.isnan(x)
                n = float(np.sum(w[ok] * x[ok]))
                total = float(np.sum(w[ok]))
                counts[name] = n
                row[name] = f"{n:.0f} ({100 * n / total:.{digits}f}%)" if total > 0 else "–"
            rows.append(add_smd(row, x, "binary"))
            count_rows.append({"characteristic": col, "level": "yes", "shown": True, **counts})
            # the "no" count is not a row but follows by subtraction: suppression must see it
            no_counts = {name: float(np.sum(w[m & (x == 0)])) for name, m in zip(col_names, masks)}
            count_rows.append({"characteristic": col, "level": "no", "shown": False, **no_counts})
        elif pd.api.types.is_numeric_dtype(values):
            x = values.to_numpy(dtype=float)
            row = {"characteristic": col, "level": "median [IQR]" if col in nonnormal else "mean (SD)"}
            for name, m in zip(col_names, masks):
                xm, wm = x[m], w[m]
                ok = ~np.isnan(xm)
                if not ok.any():
                    row[name] = "–"
                elif col in nonnormal:
                    q = _weighted_quantiles(xm[ok], wm[ok], [0.25, 0.5, 0.75])
                    row[name] = f"{q[1]:.{digits}f} [{q[0]:.{digits}f}, {q[2]:.{digits}f}]"
                else:
                    mean, var = _wmean_var(xm, wm)
                    row[name] = f"{mean:.{digits}f} ({np.sqrt(var):.{digits}f})"
            rows.append(add_smd(row, x, "continuous"))
        else:
            cats = [c for c in pd.unique(values.dropna())]
            try:
                cats = sorted(cats)
            except TypeError:
                pass
            indicator = np.column_stack([(values == c).to_numpy(dtype=float) for c in cats]) if cats else np.zeros((len(data), 0))
            indicator[values.isna().to_numpy()] = np.nan
            first = True
            for j, c in enumerate(cats):
                row = {"characteristic": col if first else "", "level": str(c)}
                counts = {}
                for name, m in zip(col_names, masks):
                    ok = m & ~np.isnan(indicator[:, j])
                    n = float(np.sum(w[ok] * indicator[ok, j]))
                    total = float(np.sum(w[ok]))
                    counts[name] = n
                    row[name] = f"{n:.0f} ({100 * n / total:.{digits}f}%)" if total > 0 else "–"
                if first and len(cats) > 1:
                    kind = "binary" if len(cats) == 2 else "categorical"
                    xs = indicator[:, 1] if len(cats) == 2 else indicator
                    row = add_smd(row, xs if kind == "binary" else np.nan_to_num(xs), kind)
                rows.append(row)
                count_rows.append({"characteristic": col, "level": str(c), "shown": True, **counts})
                first = False
        if n_missing:
            miss = {"characteristic": "", "level": "missing"}
            counts = {}
            for name, m in zip(col_names, masks):
                n = float(np.sum(w[m & values.isna().to_numpy()]))
                counts[name] = n
                miss[name] = f"{n:.0f}"
            rows.append(miss)
            count_rows.append({"characteristic": col, "level": "missing", "shown": True, **counts})
    table = pd.DataFrame(rows)
    order = ["characteristic", "level", *col_names] + [c for c in ("smd", "smd_weighted") if c in table.columns]
    if group is None:
        order = ["characteristic", "level", "overall"]
    table = table.reindex(columns=order)
    counts = pd.DataFrame(count_rows).reindex(columns=["characteristic", "level", "shown", *col_names])
    return TableOne(table=table, counts=counts, group_sizes=sizes)


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, qs) -> np.ndarray:
    """Quantiles with weights (type 7 when all weights are equal)."""
    if np.allclose(w, w[0]):
        return np.quantile(x, qs)
    order = np.argsort(x)
    x, w = x[order], w[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(qs, cum, x)
