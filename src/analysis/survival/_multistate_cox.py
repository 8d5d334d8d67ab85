"""Transition-specific Cox models of a multi-state model: one :func:`cox` per observed
transition a -> b, on the rows spent in state a (entry at their start, an event when they
end by moving to b, censored otherwise), the subject as cluster (robust variance).

This is R's multi-state ``coxph(Surv(tstart, tstop, state) ~ x, id=id, istate=)`` with a
separate coefficient per transition (its default): the partial likelihood factorises over
the transitions' strata, so the coefficients, the model-based and the robust (by id)
standard errors of each transition are those of its own Cox model. (survival 3.5-3 uses
Breslow's ties for a multi-state model whenever ``ties=`` is passed explicitly, even
``ties="efron"``; Efron's is its default only when ``ties`` is left out.)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .._kernel import capture_env, coefficient_plot, get_ax
from ._cox import CoxResult, fit_cox
from ._cox_engine import EPS, ITER_MAX, TOLER_CHOL
from ._multistate_data import DEFAULT_INITIAL_STATE, prepare_multistate

__all__ = ["TransitionCoxResult", "transition_cox"]

_EVENT = "__transition_event__"
_START = "__transition_start__"
_STOP = "__transition_stop__"
_ID = "__transition_id__"
_W = "__transition_weight__"


class TransitionCoxResult(Mapping):
    """One Cox model per transition: a mapping (from_state, to_state) -> CoxResult.

    Attributes
    ----------
    summary : pandas.DataFrame
        The models' summaries stacked, indexed by (``from_state``, ``to_state``, ``term``).
    transitions : list of tuple
        The transitions fitted, in state order (the keys).
    states : list
        The states of the model.
    """

    def __init__(self, fits: dict, states: list):
        self._fits = fits
        self.transitions = list(fits)
        self.states = states

    def __getitem__(self, key) -> CoxResult:
        return self._fits[tuple(key)]

    def __iter__(self):
        return iter(self._fits)

    def __len__(self) -> int:
        return len(self._fits)

    @property
    def summary(self) -> pd.DataFrame:
        parts = [pd.DataFrame(f.summary).assign(from_state=a, to_state=b) for (a, b), f in self._fits.items()]
        out = pd.concat(parts).reset_index().set_index(["from_state", "to_state", "term"])
        return out

    def plot(self, ax=None):
        """Transition-specific hazard ratios with their intervals, one row per transition
        and term."""
        ax = get_ax(ax)
        s = self.summary.copy()
        s.index = [f"{a} -> {b}: {t}" for a, b, t in s.index]
        return coefficient_plot(ax, s, xlabel="transition hazard ratio")

    def __repr__(self) -> str:
        return f"TransitionCoxResult(transitions={self.transitions!r})\n{self.summary.round(4).to_string()}"


def transition_cox(
    formula: str,
    data: pd.DataFrame,
    *,
    id: str,
    start: str,
    stop: str,
    to: str,
    from_state: str | None = None,
    censor=0,
    initial_state: Hashable = DEFAULT_INITIAL_STATE,
    transitions: Sequence[tuple] | None = None,
    weights: str | None = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    dropna: bool = False,
    max_iter: int = ITER_MAX,
    tol: float = EPS,
    table: str = "data",
) -> TransitionCoxResult:
    """Transition-specific Cox models of a multi-state model (R's multi-state ``coxph``).

    Parameters
    ----------
    formula : str
        Right-hand side, as :func:`cox` (``"age + C(arm)"``); the same for every transition.
    data, id, start, stop, to, from_state, censor, initial_state, weights
        The multi-state rows, as :func:`state_occupation` (checked the same way).
    transitions : sequence of (from_state, to_state), optional
        The transitions to fit (default: every transition observed).
    ties : {"efron", "breslow"}, default "efron"
    conf_level, dropna, max_iter, tol, table
        As :func:`cox`. Missing covariate values follow the missing-value rule per
        transition model.

    Returns
    -------
    TransitionCoxResult
        ``fit[(a, b)]`` is the :class:`CoxResult` of a -> b (robust variance by ``id``).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import transition_cox
    >>> df = pd.DataFrame({
    ...     "id": [1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9, 9, 10],
    ...     "start": [0, 4, 0, 0, 6, 0, 0, 3, 0, 0, 5, 0, 0, 2, 0],
    ...     "stop": [4, 12, 5, 6, 15, 10, 3, 9, 8, 5, 11, 7, 2, 13, 9],
    ...     "to": ["response", "relapse", "stopped", "response", 0, 0, "response", "relapse", "response",
    ...            "response", 0, "stopped", "response", "relapse", 0],
    ...     "x": [1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1]})
    >>> fit = transition_cox("x", df, id="id", start="start", stop="stop", to="to", initial_state="induction")
    >>> fit.transitions
    [('induction', 'response'), ('induction', 'stopped'), ('response', 'relapse')]
    >>> fit[("induction", "response")].summary.loc["x", ["ratio", "se"]].round(4).tolist()
    [0.6003, 0.7627]
    """
    md = prepare_multistate(data, id=id, start=start, stop=stop, to=to, from_state=from_state, censor=censor,
                            initial_state=initial_state, weights=weights, dropna=dropna, table=table)
    observed = md.transitions()
    observed = observed[observed.to_state.notna()]
    pairs = [(a, b) for a, b in zip(observed.from_state, observed.to_state)]
    if transitions is not None:
        wanted = [tuple(t) for t in transitions]
        unknown = [t for t in wanted if t not in pairs]
        if unknown:
            raise ValueError(f"transitions {unknown!r} are not observed in table {table!r}; observed: {pairs!r}")
        pairs = wanted
    env = capture_env(1)
    base = data.iloc[md.rows].reset_index(drop=True)
    base[_START] = md.start
    base[_STOP] = md.stop
    base[_ID] = np.asarray(md.subject)
    if weights is not None:
        base[_W] = md.w
    fits = {}
    for a, b in pairs:
        ia, ib = md.states.index(a), md.states.index(b)
        in_a = md.state == ia
        sub = base.loc[in_a].copy()
        sub[_EVENT] = (md.to[in_a] == ib).astype(np.int64)
        fits[(a, b)] = fit_cox(formula, sub, duration=_STOP, event=_EVENT, entry=_START, strata=None, cluster=_ID,
                               weights=_W if weights is not None else None, ties=ties, robust=True,
                               conf_level=conf_level, dropna=dropna, max_iter=max_iter, tol=tol,
                               toler_chol=TOLER_CHOL, table=f"{table} ({a} -> {b})", env=env)
    return TransitionCoxResult(fits, list(md.states))
