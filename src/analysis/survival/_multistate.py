"""State-occupation probabilities of a multi-state model (Aalen-Johansen), their
infinitesimal-jackknife standard errors and the restricted mean time in each state.

Agrees with R's ``survfit(Surv(tstart, tstop, state) ~ group, id=, istate=, weights=)``
(survival 3.5): the estimate p(t) = p0 prod_{s <= t} (I + dA(s)), dA(s) the matrix of
transition hazards (weighted transitions out of a state over the weighted number in it),
p0 the distribution of states among those at risk at the first transition; the standard
error is survfit's infinitesimal jackknife, var p_j(t) = sum_i (w_i U_ij(t))^2 with
U_i = dp/dw_i (including the influence on p0); limits from ``survfit_confint`` on p itself.
The restricted mean time in state j up to tau is the integral of p_j from 0 to tau
(``summary(fit, rmean=tau)``), its standard error the same jackknife applied to the
integral of U_ij. See ``docs/competing-risks.md``, section "Multi-state models".

The jackknife runs one step per transition time, each vectorised over subjects and states
(U <- U (I + dA) + the subjects' own terms), as the recursion of R's ``survfitci``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, get_ax, z_value
from ._common import group_indices
from ._competing import cif_confint
from ._confint import CONF_TYPES
from ._multistate_data import DEFAULT_INITIAL_STATE, MultiStateData, prepare_multistate
from ._plotting import step_curve

__all__ = ["StateOccupationResult", "state_occupation"]


@dataclass
class StateCurves:
    """Aalen-Johansen state probabilities of one group at its transition times."""

    time: np.ndarray  # (M,) transition times
    p0: np.ndarray  # (S,) initial distribution
    sp0: np.ndarray  # (S,) its standard error
    p: np.ndarray  # (M, S)
    se: np.ndarray  # (M, S)
    at_risk: np.ndarray  # (M, S) rows in each state at each time (unweighted, survfit's n.risk)
    events: np.ndarray  # (M, S) transitions into each state at each time (unweighted)
    start: np.ndarray  # rows of the group, for counts at other times
    stop: np.ndarray
    state: np.ndarray
    to: np.ndarray
    last_time: float
    n_subjects: int
    rmean: np.ndarray | None = None  # (S,) integral of p up to the horizon
    rmean_se: np.ndarray | None = None


def aalen_johansen_states(start, stop, state, to, subject, w, S: int, *, horizon: float | None = None) -> StateCurves:
    """The Aalen-Johansen state probabilities of one group and their jackknife standard
    errors (and, with ``horizon``, the integral of p and of its influence up to it)."""
    subj_ids, subj = np.unique(subject, return_inverse=True)
    n = subj_ids.size
    wsub = np.zeros(n)
    wsub[subj] = w  # constant within a subject (checked)
    moving = to >= 0
    times = np.unique(stop[moving])
    M = times.size
    t0 = times[0] if M else float(stop.max())
    # p0: states of the rows at risk at the first transition time
    at0 = (start < t0) & (stop >= t0)
    W0 = w[at0].sum()
    p0 = np.bincount(state[at0], weights=w[at0], minlength=S) / W0
    U = np.zeros((n, S))
    if np.all(p0 < 1):
        U[subj[at0]] = (np.eye(S)[state[at0]] - p0) / W0
    w2 = wsub * wsub
    sp0 = np.sqrt(np.sum(U * U, axis=0))  # survfit's sp0 is unweighted
    # each row is at risk at the transition times lo..hi-1
    lo = np.searchsorted(times, start, side="right")
    hi = np.searchsorted(times, stop, side="right")
    own = np.where(moving, hi - 1, -1)  # index of the row's own transition time
    enter_order = np.argsort(lo, kind="stable")
    enter_bounds = np.searchsorted(lo[enter_order], np.arange(M + 1), side="left")
    leave_key = hi - 1  # the last transition time at which the row is at risk
    leave_order = np.argsort(leave_key, kind="stable")
    leave_bounds = np.searchsorted(leave_key[leave_order], np.arange(M + 1), side="left")
    move_order = np.argsort(np.where(moving, own, M), kind="stable")
    move_bounds = np.searchsorted(np.where(moving, own, M)[move_order], np.arange(M + 1), side="left")

    active = np.zeros(n, dtype=bool)
    cur = np.zeros(n, dtype=np.int64)  # state of the subject's at-risk row
    ws = np.zeros(S)
    ns = np.zeros(S, dtype=np.int64)
    p = p0.copy()
    P = np.zeros((M, S))
    SE = np.zeros((M, S))
    NR = np.zeros((M, S), dtype=np.int64)
    NE = np.zeros((M, S), dtype=np.int64)
    integrate = horizon is not None
    rm = np.zeros(S)
    rmU = np.zeros((n, S))
    last_t = 0.0
    eye = np.eye(S)
    for m in range(M):
        t = times[m]
        if integrate and last_t < horizon:
            width = min(t, horizon) - last_t
            rm += width * p
            rmU += width * U
        # rows whose interval now covers t join; rows that ended before t have left
        joining = enter_order[enter_bounds[m]:enter_bounds[m + 1]]
        joining = joining[hi[joining] > m]  # rows at risk at no transition time never join
        active[subj[joining]] = True
        cur[subj[joining]] = state[joining]
        np.add.at(ws, state[joining], w[joining])
        np.add.at(ns, state[joining], 1)
        movers = move_order[move_bounds[m]:move_bounds[m + 1]]
        dN = np.zeros((S, S))
        np.add.at(dN, (state[movers], to[movers]), w[movers])
        H = eye.copy()
        occupied = ws > 0
        H[occupied] += dN[occupied] / ws[occupied, None]
        H[np.arange(S), np.arange(S)] = 1.0 - (H.sum(axis=1) - np.diag(H))
        # U <- U H, then each at-risk subject's own term p_a / ws_a (e_next - H_a.)
        U = U @ H
        act = np.flatnonzero(active)
        a = cur[act]
        nxt = a.copy()
        mv_subj = subj[movers]
        pos = np.searchsorted(act, mv_subj)
        nxt[pos] = to[movers]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(ws > 0, p / ws, 0.0)
        U[act] += c[a, None] * (eye[nxt] - H[a])
        p = p @ H
        P[m] = p
        SE[m] = np.sqrt(w2 @ (U * U))
        NR[m] = ns
        np.add.at(NE[m], to[movers], 1)
        last_t = t
        # rows whose interval ends before the next transition time leave the risk set
        leaving = leave_order[leave_bounds[m]:leave_bounds[m + 1]]
        leaving = leaving[lo[leaving] <= m]
        np.subtract.at(ws, state[leaving], w[leaving])
        np.subtract.at(ns, state[leaving], 1)
        active[subj[leaving]] = False
        ws[ns == 0] = 0.0  # no rounding residue in an empty state
    rmean = rmean_se = None
    if integrate:
        if last_t < horizon:
            rm += (horizon - last_t) * p
            rmU += (horizon - last_t) * U
        rmean = rm
        rmean_se = np.sqrt(w2 @ (rmU * rmU))
    return StateCurves(times, p0, sp0, P, SE, NR, NE, start, stop, state, to, float(stop.max()), n, rmean, rmean_se)


class StateOccupationResult:
    """Aalen-Johansen state-occupation probabilities, one curve per group and state.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group, state and transition time of the group: ``group, state, time,
        at_risk, events, estimate, se, ci_lower, ci_upper``. ``estimate`` is p_j(t), the
        probability of being in state j at t; the states' estimates add up to 1 at every
        time. ``at_risk`` is the number of rows in the state just before t and ``events``
        the number of transitions into it at t (unweighted, as survfit's ``n.risk`` and
        ``n.event``); ``se`` the infinitesimal-jackknife standard error, the limits those
        of ``conf_type`` on p.
    p0 : pandas.DataFrame
        ``group, state, estimate, se``: the initial distribution (states of the subjects at
        risk at the first transition) and its standard error (survfit's ``p0``, ``sp0``).
    transitions : pandas.DataFrame
        ``from_state, to_state, n``: the transitions observed (``to_state`` None: censored).
    states, levels : list
        The states in order (initial states, then the states entered) and the groups.
    conf_type, conf_level, n_dropped
        The settings used; rows dropped for missing values (``dropna=True``).
    """

    def __init__(self, md: MultiStateData, curves: list[StateCurves], *, conf_type: str, conf_level: float,
                 group_column: str | None):
        self._md = md
        self._curves = curves
        self.states = list(md.states)
        self.levels = list(md.group.levels)
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.group_column = group_column
        self.n_dropped = md.n_dropped
        self.transitions = md.transitions()
        z = z_value(conf_level)
        self._ci = [cif_confint(c.p, c.se, conf_type, z) for c in curves]
        self._ci0 = [cif_confint(c.p0, c.sp0, conf_type, z) for c in curves]
        self.table = self._make_table()
        self.p0 = pd.DataFrame([{"group": g, "state": s, "estimate": c.p0[j], "se": c.sp0[j]}
                                for g, c in zip(self.levels, curves) for j, s in enumerate(self.states)])

    @staticmethod
    def _labels(values: list, counts: list[int]) -> pd.Series:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        rep = np.repeat(arr, counts).tolist()
        return pd.Series(rep, dtype=pd.Series(rep).dtype if rep else object)

    def _frame(self, parts: list[dict]) -> pd.DataFrame:
        counts = [p["time"].size for p in parts]
        cols = {"group": self._labels([p["group"] for p in parts], counts),
                "state": self._labels([p["state"] for p in parts], counts)}
        for name in ("time", "at_risk", "events", "estimate", "se", "ci_lower", "ci_upper"):
            cols[name] = np.concatenate([p[name] for p in parts]) if parts else np.zeros(0)
        out = pd.DataFrame(cols)
        for col in ("at_risk", "events"):
            out[col] = out[col].astype(np.int64)
        return out

    def _make_table(self) -> pd.DataFrame:
        parts = []
        for level, cv, (lo, hi) in zip(self.levels, self._curves, self._ci):
            for j, s in enumerate(self.states):
                parts.append({"group": level, "state": s, "time": cv.time, "at_risk": cv.at_risk[:, j],
                              "events": cv.events[:, j], "estimate": cv.p[:, j], "se": cv.se[:, j],
                              "ci_lower": lo[:, j], "ci_upper": hi[:, j]})
        return self._frame(parts)

    def at(self, times: Sequence[float] | float, *, extend: bool = False) -> pd.DataFrame:
        """The state probabilities at given times (step functions: the value in force), as
        R's ``summary(survfit, times=)``.

        Parameters
        ----------
        times : float or sequence of float
            Sorted ascending in the output.
        extend : bool, default False
            Beyond a group's last follow-up time the curves are unknown: NaN unless
            ``extend=True``, which carries the last values forward.

        Returns
        -------
        pandas.DataFrame
            ``group, state, time, at_risk, events, estimate, se, ci_lower, ci_upper``:
            ``at_risk`` the rows in the state at the time, ``events`` the transitions into
            it since the previous time asked for (since 0 for the first); before the first
            transition the estimate is the initial distribution p0.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import state_occupation
        >>> df = pd.DataFrame({"id": [1, 1, 2, 3, 3, 4], "start": [0, 5, 0, 0, 3, 0],
        ...                    "stop": [5, 9, 7, 3, 8, 10],
        ...                    "to": ["response", "relapse", "censored", "response", "censored", "censored"]})
        >>> ms = state_occupation(df, id="id", start="start", stop="stop", to="to", censor="censored",
        ...                       initial_state="induction")
        >>> ms.at([4, 9])[["state", "time", "estimate"]]
               state  time  estimate
        0  induction   4.0      0.75
        1  induction   9.0      0.50
        2    relapse   4.0      0.00
        3    relapse   9.0      0.50
        4   response   4.0      0.25
        5   response   9.0      0.00
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        S = len(self.states)
        parts = []
        for level, cv, (lo, hi), (lo0, hi0) in zip(self.levels, self._curves, self._ci, self._ci0):
            i = np.searchsorted(cv.time, req, side="right") - 1
            before = i < 0
            j = np.maximum(i, 0)
            beyond = (req > cv.last_time) & (not extend)
            risk = (cv.start[None, :] < req[:, None]) & (cv.stop[None, :] >= req[:, None])
            at_risk = np.stack([(risk & (cv.state[None, :] == s)).sum(axis=1) for s in range(S)], axis=1)
            moved = cv.to >= 0
            cum = np.stack([((cv.stop[None, :] <= req[:, None]) & moved[None, :] & (cv.to[None, :] == s)).sum(axis=1)
                            for s in range(S)], axis=1)
            events = np.diff(np.vstack([np.zeros((1, S), dtype=np.int64), cum]), axis=0)
            for k, s in enumerate(self.states):
                def val(a, a0):
                    if a.shape[0] == 0:
                        v = np.full(req.size, a0[k])
                    else:
                        v = np.where(before, a0[k], a[j, k])
                    return np.where(beyond, np.nan, v)

                parts.append({"group": level, "state": s, "time": req, "at_risk": at_risk[:, k],
                              "events": events[:, k], "estimate": val(cv.p, cv.p0), "se": val(cv.se, cv.sp0),
                              "ci_lower": val(lo, lo0), "ci_upper": val(hi, hi0)})
        return self._frame(parts)

    def rmean(self, horizon: float) -> pd.DataFrame:
        """Restricted mean time in each state up to ``horizon``: the integral of p_j from 0
        to the horizon (R's ``summary(survfit, rmean=horizon)$table[, "rmean"]``), with the
        infinitesimal-jackknife standard error of the integral and a normal interval.

        The states' restricted means add up to the horizon. Beyond a group's last follow-up
        time the curves are carried forward, as R does.

        Parameters
        ----------
        horizon : float
            Upper limit of the integral (> 0), e.g. 90 days after the start of induction.

        Returns
        -------
        pandas.DataFrame
            ``group, state, horizon, rmean, se, ci_lower, ci_upper``.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import state_occupation
        >>> df = pd.DataFrame({"id": [1, 1, 2, 3, 3, 4], "start": [0, 5, 0, 0, 3, 0],
        ...                    "stop": [5, 9, 7, 3, 8, 10],
        ...                    "to": ["response", "relapse", "censored", "response", "censored", "censored"]})
        >>> ms = state_occupation(df, id="id", start="start", stop="stop", to="to", censor="censored",
        ...                       initial_state="induction")
        >>> ms.rmean(10)[["state", "rmean"]]
               state  rmean
        0  induction    7.0
        1    relapse    0.5
        2   response    2.5
        """
        horizon = float(horizon)
        if not np.isfinite(horizon) or horizon <= 0:
            raise ValueError(f"horizon must be a finite number > 0; got {horizon!r}")
        z = z_value(self.conf_level)
        rows = []
        md = self._md
        for g, idx in enumerate(group_indices(md.group.codes, md.group.n_levels)):
            cv = aalen_johansen_states(md.start[idx], md.stop[idx], md.state[idx], md.to[idx], md.subject[idx],
                                       md.w[idx], len(self.states), horizon=horizon)
            for j, s in enumerate(self.states):
                rows.append({"group": self.levels[g], "state": s, "horizon": horizon, "rmean": cv.rmean[j],
                             "se": cv.rmean_se[j], "ci_lower": cv.rmean[j] - z * cv.rmean_se[j],
                             "ci_upper": cv.rmean[j] + z * cv.rmean_se[j]})
        return pd.DataFrame(rows)

    def _check_states(self, states) -> list:
        wanted = list(self.states) if states is None else list(states)
        unknown = [s for s in wanted if s not in self.states]
        if unknown:
            raise ValueError(f"states {unknown!r} are not among the states {self.states!r}")
        return wanted

    def plot(self, ax=None, *, states: Sequence | None = None, ci: bool = True):
        """Step curves of the state probabilities (states told apart by colour, groups by
        line style) with their pointwise bands.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
        states : sequence, optional
            The states to draw (default all).
        ci : bool, default True
            Shade the pointwise confidence bands.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        wanted = self._check_states(states)
        styles = ["-", "--", ":", "-."]
        show = ci and self.conf_type != "none"
        for gi, (level, cv, (lo, hi)) in enumerate(zip(self.levels, self._curves, self._ci)):
            for j, s in enumerate(self.states):
                if s not in wanted:
                    continue
                label = str(s) if self.group_column is None else f"{self.group_column}={level}, {s}"
                line = step_curve(ax, cv.time, cv.p[:, j], start=cv.p0[j], lower=lo[:, j] if show else None,
                                  upper=hi[:, j] if show else None, label=label,
                                  color=f"C{self.states.index(s) % 10}")
                line.set_linestyle(styles[gi % len(styles)])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("probability in state")
        ax.legend(loc="best", frameon=False)
        return ax

    def plot_stacked(self, ax=None, *, group: Hashable | None = None, states: Sequence | None = None):
        """Stacked state-occupation plot of one group: at each time the probabilities of
        the states piled up to 1 (the first state at the bottom).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        group : optional
            The group to draw; needed when there are several.
        states : sequence, optional
            The order of the bands, bottom to top (default: the states in order); every
            state must appear once, so that the bands fill the unit interval.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        if group is None:
            if len(self.levels) > 1:
                raise ValueError(f"plot_stacked draws one group; pass group= one of {self.levels!r}")
            gi = 0
        else:
            if group not in self.levels:
                raise ValueError(f"group {group!r} is not among the groups {self.levels!r}")
            gi = self.levels.index(group)
        order = self._check_states(states)
        if sorted(map(str, order)) != sorted(map(str, self.states)) or len(order) != len(self.states):
            raise ValueError(f"states must list every state once (the bands add up to 1); got {order!r}, states are "
                             f"{self.states!r}")
        cv = self._curves[gi]
        x = np.concatenate([[0.0], cv.time, [cv.last_time]])
        ys = []
        for s in order:
            j = self.states.index(s)
            col = cv.p[:, j]
            ys.append(np.concatenate([[cv.p0[j]], col, [col[-1] if col.size else cv.p0[j]]]))
        ax.stackplot(x, np.vstack(ys), labels=[str(s) for s in order], step="post",
                     colors=[f"C{self.states.index(s) % 10}" for s in order], alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_xlim(0, cv.last_time)
        ax.set_xlabel("time")
        ax.set_ylabel("probability in state")
        title = None if self.group_column is None else f"{self.group_column}={self.levels[gi]}"
        if title:
            ax.set_title(title)
        ax.legend(loc="upper right", frameon=False, fontsize="small")
        return ax

    def __repr__(self) -> str:
        return (f"StateOccupationResult({len(self.levels)} group(s), states={self.states!r}, "
                f"conf_type={self.conf_type!r}, conf_level={self.conf_level})\n{self.transitions.to_string(index=False)}")


def state_occupation(
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
    conf_type: str = "log-log",
    conf_level: float = 0.95,
    dropna: bool = False,
    table: str = "data",
) -> StateOccupationResult:
    """State-occupation probabilities of a multi-state model (Aalen-Johansen).

    Agrees with R's ``survfit(Surv(start, stop, to) ~ group, id=id, istate=from_state,
    weights=)`` (survival 3.5): the estimates, ``n.risk``, ``n.event``, the
    infinitesimal-jackknife ``std.err`` and, for the same ``conf.type``, the limits; and
    ``summary(fit, rmean=)`` for :meth:`StateOccupationResult.rmean`.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per interval of a subject (counting-process data). The intervals of a
        subject must follow each other without gap or overlap.
    id : str
        The subject of each row.
    start, stop : str
        The interval (start, stop] in which the subject is in one state (times >= 0,
        start < stop).
    to : str
        What ended the interval: the state entered at ``stop``, or ``censor``. States are
        ordered as R orders them (a Categorical's categories, otherwise sorted values).
    from_state : str, optional
        The state during the interval (the transitions layout, or R's ``istate``). Without
        it, each subject starts in ``initial_state`` and is then in the last state entered
        (survival's layout). With it, each row must follow from the previous row of the
        subject (checked; an error names the row).
    censor : default 0
        The ``to`` value meaning the interval ended without a transition.
    initial_state : default "(s0)"
        The starting state without ``from_state`` (R's label).
    group : str, optional
        One curve per level (constant within a subject).
    weights : str, optional
        Case weights (> 0, constant within a subject).
    conf_type : {"log-log", "log", "plain", "logit", "arcsin", "none"}, default "log-log"
        Transform of the pointwise interval, applied to p itself as survfit does (R's
        default is "log"); as :func:`cumulative_incidence`.
    conf_level : float, default 0.95
    dropna : bool, default False
        The missing-value rule: a missing value is an error naming the column and rows,
        unless ``dropna=True`` (rows dropped and counted in ``n_dropped``).
    table : str, default "data"
        Name of the table in error messages.

    Returns
    -------
    StateOccupationResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import state_occupation
    >>> df = pd.DataFrame({"id": [1, 1, 2, 3, 3, 4, 5, 5, 5],
    ...                    "start": [0, 4, 0, 0, 6, 0, 0, 3, 9], "stop": [4, 12, 5, 6, 15, 10, 3, 9, 14],
    ...                    "to": ["response", "relapse", "stopped", "response", 0, 0, "response", "relapse", 0]})
    >>> ms = state_occupation(df, id="id", start="start", stop="stop", to="to", initial_state="induction")
    >>> ms.states
    ['induction', 'relapse', 'response', 'stopped']
    >>> ms.at([10])[["state", "estimate", "se"]].round(3)
           state  estimate     se
    0  induction       0.2  0.179
    1    relapse       0.2  0.179
    2   response       0.4  0.219
    3    stopped       0.2  0.179
    """
    check_choice("conf_type", conf_type, CONF_TYPES)
    conf_level = check_conf_level(conf_level)
    md = prepare_multistate(data, id=id, start=start, stop=stop, to=to, from_state=from_state, censor=censor,
                            initial_state=initial_state, group=group, weights=weights, dropna=dropna, table=table)
    S = len(md.states)
    w = md.w
    curves = []
    for idx in group_indices(md.group.codes, md.group.n_levels):
        if not (md.to[idx] >= 0).any():
            raise ValueError(f"{table}: group {md.group.levels[len(curves)]!r} of column {group!r} has no transition "
                             "(every interval is censored)")
        curves.append(aalen_johansen_states(md.start[idx], md.stop[idx], md.state[idx], md.to[idx], md.subject[idx],
                                            w[idx], S))
    return StateOccupationResult(md, curves, conf_type=conf_type, conf_level=conf_level, group_column=group)
