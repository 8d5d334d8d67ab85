"""Checked multi-state data: counting-process rows of subjects moving between states.

Two layouts are read, both one row per interval of a subject:

* **transitions**: ``id, from_state, to, start, stop``: the state during the interval
  (``from_state``) and what ended it (``to``: the state entered at ``stop``, or the
  ``censor`` value);
* **survival's** ``Surv(tstart, tstop, event)`` with ``id=`` (and optionally ``istate=``):
  no ``from_state``; each subject starts in ``initial_state`` and is then in the last state
  entered, as R's ``survcheck`` derives it.

A subject's intervals must follow each other without overlap or gap, and a given
``from_state`` must be the state the previous rows lead to: R's ``survfit`` refuses the same
data (its ``survcheck`` flags overlap, gap, jump and teleport). Every problem is reported
at once, naming the table, row, column and value.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._kernel.formula import missing_value_rule
from ..problems import DataValidationError
from ._common import Grouping, require_columns, survival_values
from ._competing import status_codes

__all__ = ["MultiStateData", "prepare_multistate", "state_order"]

#: R's label of the initial state when no istate is given
DEFAULT_INITIAL_STATE = "(s0)"


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def state_order(values: pd.Series) -> list:
    """Distinct non-missing values in R's factor order: a Categorical's (used) categories,
    otherwise sorted (by text when the values do not sort together)."""
    present = values.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        seen = set(present.tolist())
        return [_plain(c) for c in values.cat.categories if c in seen]
    uniq = list(pd.unique(present))
    try:
        uniq = sorted(uniq)
    except TypeError:
        uniq = sorted(uniq, key=str)
    return [_plain(u) for u in uniq]


@dataclass
class MultiStateData:
    """Multi-state rows as numpy arrays (one element per row used, sorted by subject and
    start), with the state of each interval derived and checked.

    ``state`` and ``to`` index ``states``; ``to`` is -1 for a censored interval.
    ``rows`` are the positions of the rows in the input table.
    """

    start: np.ndarray
    stop: np.ndarray
    state: np.ndarray
    to: np.ndarray
    subject: np.ndarray  # 0..n_subjects-1
    subject_ids: list
    weights: np.ndarray | None
    states: list
    group: Grouping
    rows: np.ndarray
    n_input: int
    n_dropped: int

    @property
    def w(self) -> np.ndarray:
        return np.ones(self.start.size) if self.weights is None else self.weights

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    def transitions(self) -> pd.DataFrame:
        """Observed transitions and censorings: ``from_state, to_state, n`` (``to_state``
        None for censored intervals), in state order."""
        S = len(self.states)
        key = self.state * (S + 1) + np.where(self.to < 0, S, self.to)
        counts = np.bincount(key, minlength=S * (S + 1)).reshape(S, S + 1)
        rows = [(self.states[a], self.states[b] if b < S else None, int(counts[a, b]))
                for a in range(S) for b in range(S + 1) if counts[a, b] > 0]
        return pd.DataFrame(rows, columns=["from_state", "to_state", "n"])


def prepare_multistate(
    data: pd.DataFrame,
    *,
    id: str,
    start: str,
    stop: str,
    to: str,
    from_state: str | None = None,
    censor=0,
    initial_state: Hashable = DEFAULT_INITIAL_STATE,
    group: str | None = None,
    weights: str | None = None,
    dropna: bool = False,
    table: str = "data",
) -> MultiStateData:
    """Check multi-state rows and derive the state of every interval, every problem at once.

    Times as every survival function (finite, >= 0, ``start < stop``), weights > 0 and the
    same on every row of a subject, the one missing-value rule over the columns used.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    roles = {"id": id, "start": start, "stop": stop, "to": to, "from_state": from_state, "group": group,
             "weights": weights}
    report = require_columns(data, roles, table)
    frame = data.reset_index(drop=True)
    n_input = len(frame)
    vals = survival_values(report, table, frame, duration=stop, entry=start, weights=weights)
    missing_any, _ = missing_value_rule(
        report, table, frame, {col: role for role, col in roles.items() if col is not None}, dropna=dropna)
    if not report.ok:
        raise DataValidationError(report)
    keep = np.flatnonzero(~missing_any)
    if keep.size == 0:
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {int(missing_any.sum())} dropped "
                         "for missing values)")
    sub = frame.iloc[keep]
    to_codes, to_states = status_codes(sub[to], censor, to, table=table)
    if from_state is not None:
        initial = [s for s in state_order(sub[from_state]) if s not in to_states]
    else:
        initial = [] if initial_state in to_states else [initial_state]
    states = initial + list(to_states)
    index = {s: i for i, s in enumerate(states)}
    to_idx = np.where(to_codes > 0, np.array([index[s] for s in to_states] + [-1])[to_codes - 1], -1)

    ids = Grouping.from_series(sub[id], id)
    t0 = vals.entry[keep]
    t1 = vals.time[keep]
    order = np.lexsort((t1, t0, ids.codes))
    subj = ids.codes[order]
    a, b, dest = t0[order], t1[order], to_idx[order]
    rows = keep[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = subj[1:] != subj[:-1]

    def flag(mask: np.ndarray, column: str, values, message: str) -> None:
        pos = np.flatnonzero(mask)
        if pos.size:
            report.add_rows(table, column, rows[pos], np.asarray(values)[pos], message)

    prev_stop = np.concatenate([[np.nan], b[:-1]])
    flag(~first & (a < prev_stop), start, a, "interval overlaps the previous interval of the same id (start before "
         "its stop); a subject is in one state at a time")
    flag(~first & (a > prev_stop), start, a, "gap after the previous interval of the same id (start after its "
         "stop); split follow-up must be contiguous, as R's survcheck requires")
    # the state of each interval: the initial (or given) state, then the last state entered
    if from_state is not None:
        given = np.array([index[v] for v in sub[from_state].iloc[order].tolist()], dtype=np.int64)
        base = np.where(first, given, -1)
    else:
        base = np.where(first, index[initial_state], -1)
    entered = np.where(dest >= 0, dest, -1)
    # last state entered before each row within the subject, else the first row's state
    marker = np.where(first, base, np.concatenate([[-1], entered[:-1]]))
    pos = np.where(marker >= 0, np.arange(marker.size), 0)
    pos = np.maximum.accumulate(pos)
    state = marker[pos]
    if from_state is not None:
        shown = sub[from_state].iloc[order].to_numpy(dtype=object)
        derived = np.array([states[s] for s in state], dtype=object)
        flag(~first & (given != state), from_state, shown,
             f"state does not follow from the previous row of the same id (expected the last state entered, "
             f"or its own state after a censored row); e.g. row {rows[np.argmax(~first & (given != state))] + 1} "
             f"expected {derived[np.argmax(~first & (given != state))]!r}")
    same = dest == state
    flag(same, to, sub[to].iloc[order].to_numpy(dtype=object),
         "transition to the state the subject is already in (not a transition); censor the interval instead")
    w = None
    if weights is not None:
        w = vals.weights[keep][order]
        lo = np.minimum.reduceat(w, np.flatnonzero(first))
        hi = np.maximum.reduceat(w, np.flatnonzero(first))
        varying = (hi > lo)[subj]
        flag(varying & first, weights, w, "weights must be the same on every row of an id (survfit's variance uses "
             "one weight per subject)")
    if not report.ok:
        raise DataValidationError(report)
    grouping = (Grouping.from_series(sub[group].iloc[order], group) if group is not None
                else Grouping.single(order.size))
    if group is not None:
        firsts = np.flatnonzero(first)
        g_first = grouping.codes[firsts][subj]
        moved = np.flatnonzero(grouping.codes != g_first)
        if moved.size:
            report.add_rows(table, group, rows[moved], sub[group].iloc[order].to_numpy(dtype=object)[moved],
                            "group must be the same on every row of an id (one curve per subject)")
            raise DataValidationError(report)
    return MultiStateData(
        start=a, stop=b, state=state.astype(np.int64), to=dest.astype(np.int64), subject=subj.astype(np.int64),
        subject_ids=ids.levels, weights=w, states=states, group=grouping, rows=rows, n_input=n_input,
        n_dropped=int(missing_any.sum()),
    )
