"""Kaplan-Meier and Nelson-Aalen estimates of one group, vectorised.

For each distinct exit time t_j of the group (events or censorings) with weighted
at-risk n_j and events d_j, hazard h_j = d_j / n_j:

* Kaplan-Meier S(t) = prod_{t_j <= t} (1 - h_j)
* Nelson-Aalen H(t) = sum_{t_j <= t} h_j
* Greenwood: var(log S(t)) = sum d_j / (n_j (n_j - d_j)) (infinite once n_j = d_j)
* Aalen: var(H(t)) = sum d_j / n_j^2
* robust (infinitesimal jackknife, each row its own cluster): var = sum_i (w_i U_i(t))^2
  with U_i the derivative of the estimate with respect to the weight of row i; this is
  what R's survfit uses by default when some case weight is not a whole number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import RiskTable, group_indices, risk_table


@dataclass
class GroupEstimate:
    """Per-time estimates of one group (arrays aligned with ``rt.time``)."""

    rt: RiskTable
    surv: np.ndarray
    se_log: np.ndarray  # standard error of log S (R's fit$std.err when logse)
    se_surv: np.ndarray  # standard error of S (R's summary std.err)
    cumhaz: np.ndarray
    se_cumhaz: np.ndarray
    n: int  # rows used
    robust: bool


def _ij_variance(
    rt: RiskTable,
    time: np.ndarray,
    event: np.ndarray,
    w: np.ndarray,
    entry: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
) -> np.ndarray:
    """sum_i w_i^2 U_i(t_j)^2 at every row j, with U_i(t) = sum_{t_k <= t} (dN_ik b_k - Y_ik a_k).

    Vectorised: rows with exit <= t contribute a constant c_i^2; rows still at risk
    contribute (A(E_i) - A(t))^2, summed through prefix sums over entry and exit order.
    """
    m = rt.time.size
    with np.errstate(invalid="ignore", over="ignore"):
        A = np.cumsum(a)
        j = rt.row_of
        if entry is None:
            AE = np.zeros(time.size)
        else:
            k = np.searchsorted(rt.time, entry, side="right") - 1
            AE = np.where(k >= 0, A[np.maximum(k, 0)], 0.0)
        c = np.where(event, b[j], 0.0) - A[j] + AE
        w2 = w * w
        done = np.cumsum(np.bincount(j, weights=w2 * c * c, minlength=m))
        # sums over rows with exit <= t_j of w2, w2*AE, w2*AE^2
        x0 = np.cumsum(np.bincount(j, weights=w2, minlength=m))
        if entry is None:
            s0 = w2.sum() - x0
            part = A * A * s0
        else:
            x1 = np.cumsum(np.bincount(j, weights=w2 * AE, minlength=m))
            x2 = np.cumsum(np.bincount(j, weights=w2 * AE * AE, minlength=m))
            order = np.argsort(entry, kind="stable")
            ent = entry[order]
            pre = lambda v: np.concatenate([[0.0], np.cumsum(v[order])])  # noqa: E731
            p0, p1, p2 = pre(w2), pre(w2 * AE), pre(w2 * AE * AE)
            q = np.searchsorted(ent, rt.time, side="left")  # rows with entry < t_j
            s0, s1, s2 = p0[q] - x0, p1[q] - x1, p2[q] - x2
            part = s2 - 2 * A * s1 + A * A * s0
        return done + np.maximum(part, 0.0)


def estimate_group(
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None,
    entry: np.ndarray | None,
    *,
    robust: bool,
) -> GroupEstimate:
    """Kaplan-Meier and Nelson-Aalen with their standard errors for one group."""
    rt = risk_table(time, event, weights, entry)
    n, d = rt.at_risk, rt.events
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(d > 0, d / n, 0.0)
        surv = np.cumprod(1.0 - h)
        surv[surv < 0] = 0.0
        cumhaz = np.cumsum(h)
        left = n - d
        if not robust:
            gw = np.where(d > 0, np.where(left > 0, d / (n * left), np.inf), 0.0)
            se_log = np.sqrt(np.cumsum(gw))
            se_surv = se_log * surv  # Inf * 0 = NaN where S = 0, as in R's summary
            se_cumhaz = np.sqrt(np.cumsum(np.where(d > 0, d / (n * n), 0.0)))
        else:
            w = np.ones(time.size) if weights is None else weights
            a_km = np.where(d > 0, np.where(left > 0, d / (n * left), np.inf), 0.0)
            b_km = np.where(left > 0, 1.0 / left, np.inf)
            v_km = _ij_variance(rt, time, event, w, entry, a_km, b_km)
            se_surv = surv * np.sqrt(v_km)
            se_surv = np.where(surv == 0, 0.0, se_surv)
            se_log = np.where(se_surv == 0, 0.0, se_surv / surv)
            a_na = np.where(d > 0, d / (n * n), 0.0)
            b_na = 1.0 / n
            se_cumhaz = np.sqrt(_ij_variance(rt, time, event, w, entry, a_na, b_na))
    return GroupEstimate(rt, surv, se_log, se_surv, cumhaz, se_cumhaz, int(time.size), robust)


def estimate_groups(sd, *, robust: bool) -> list[GroupEstimate]:
    """One :class:`GroupEstimate` per level of ``sd.group`` (a :class:`SurvivalData`)."""
    out = []
    for idx in group_indices(sd.group.codes, sd.group.n_levels):
        out.append(
            estimate_group(
                sd.time[idx],
                sd.event[idx],
                None if sd.weights is None else sd.weights[idx],
                None if sd.entry is None else sd.entry[idx],
                robust=robust,
            )
        )
    return out
