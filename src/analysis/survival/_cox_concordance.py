"""Harrell's concordance of a Cox model, as R's ``fit$concordance``, vectorised.

For every event i (time t, stratum s) and every row j of the same stratum still at risk
after t (``entry_j < t`` and ``stop_j > t``, or censored at t), the pair counts with
weight ``w_i w_j`` as concordant when ``lp_i > lp_j`` (the one who failed first had the
higher risk), discordant when ``lp_i < lp_j`` and tied on x when equal. Pairs of events
at the same time and stratum are tied on y (``tied_xy`` when their lp are equal too).
``concordance = (concordant + tied_x / 2) / (concordant + discordant + tied_x)``.

The counts need, for each event, the weight of a "suffix" set (later exit, earlier entry)
with a smaller linear predictor: a two-dimensional dominance count, done here offline
with a Fenwick-style decomposition of prefixes into power-of-two blocks, one sort per
level (O(n log^2 n), no loop over rows).
"""

from __future__ import annotations

import numpy as np

__all__ = ["concordance_counts"]


def _prefix_less(sorted_rank: np.ndarray, w: np.ndarray, n_ranks: int, P: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each query q: sum of ``w[k]`` over positions ``k < P[q]`` with ``sorted_rank[k] < v[q]``."""
    n = sorted_rank.size
    out = np.zeros(P.size)
    if n == 0 or P.size == 0:
        return out
    R = np.int64(n_ranks + 1)
    pos = np.arange(n, dtype=np.int64)
    level = 0
    while (1 << level) <= n:
        bit = (P >> level) & 1
        q = np.flatnonzero(bit)
        if q.size:
            block = pos >> level
            key = block * R + sorted_rank
            order = np.argsort(key, kind="stable")
            skey = key[order]
            cw = np.concatenate([[0.0], np.cumsum(w[order])])
            b = (P[q] >> level) - 1
            hi = np.searchsorted(skey, b * R + v[q], side="left")
            out[q] += cw[hi] - cw[b << level]
        level += 1
    return out


def _suffix_less(keys: np.ndarray, rank: np.ndarray, w: np.ndarray, n_ranks: int,
                 K: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each query: sum of w over points with ``keys >= K`` and ``rank < v``."""
    order = np.argsort(keys, kind="stable")
    skeys = keys[order]
    srank = rank[order]
    sw = w[order]
    P = np.searchsorted(skeys, K, side="left")
    # total with rank < v, minus the prefix before P
    by_rank = np.concatenate([[0.0], np.cumsum(np.bincount(rank, w, minlength=n_ranks))])
    total = by_rank[np.minimum(v, n_ranks)]
    return total - _prefix_less(srank, sw, n_ranks, P.astype(np.int64), v.astype(np.int64))


def concordance_counts(
    stop: np.ndarray,
    event: np.ndarray,
    entry: np.ndarray | None,
    strata: np.ndarray | None,
    w: np.ndarray,
    lp: np.ndarray,
) -> dict[str, float]:
    """Weighted concordant, discordant, tied_x, tied_y, tied_xy counts and the concordance."""
    n = stop.size
    s = np.zeros(n, dtype=np.int64) if strata is None else strata.astype(np.int64)
    ut = np.unique(np.concatenate([stop, entry]) if entry is not None else stop)
    base = np.int64(2 * ut.size + 2)
    trank = np.searchsorted(ut, stop).astype(np.int64)
    # exit key: deaths at t get 2*rank(t), censorings 2*rank(t)+1 (still comparable at t)
    exit_key = s * base + 2 * trank + (~event).astype(np.int64)
    ulp, lp_rank = np.unique(lp, return_inverse=True)
    lp_rank = lp_rank.reshape(-1).astype(np.int64)
    R = ulp.size
    ev = np.flatnonzero(event)
    es, et, er = s[ev], trank[ev], lp_rank[ev]
    Kin = es * base + 2 * et + 1  # comparable: exit key >= this (within stratum)
    Kout = (es + 1) * base  # next stratum starts here
    full = np.full(ev.size, R, dtype=np.int64)
    vs = np.concatenate([er, er + 1, full])

    def within(keys: np.ndarray, k_in: np.ndarray, k_out: np.ndarray) -> np.ndarray:
        # one pass for all queries: (rank < v) inside the stratum's suffix set
        K = np.concatenate([np.tile(k_in, 3), np.tile(k_out, 3)])
        got = _suffix_less(keys, lp_rank, w, R, K, np.concatenate([vs, vs]))
        half = 3 * ev.size
        return (got[:half] - got[half:]).reshape(3, ev.size)

    less, leq, allc = within(exit_key, Kin, Kout)
    if entry is not None:
        # not yet entered at t: entry >= t (same stratum); these rows exit after t
        erank = np.searchsorted(ut, entry).astype(np.int64)
        entry_key = s * base + 2 * erank
        e_less, e_leq, e_all = within(entry_key, es * base + 2 * et, Kout)
        less, leq, allc = less - e_less, leq - e_leq, allc - e_all
    we = w[ev]
    concordant = float(np.dot(we, less))
    tied_x = float(np.dot(we, leq - less))
    discordant = float(np.dot(we, allc - leq))
    # tied on y: unordered pairs of events in the same stratum at the same time
    gkey = es * base + et
    _, g = np.unique(gkey, return_inverse=True)
    g = g.reshape(-1)
    sw = np.bincount(g, we)
    sw2 = np.bincount(g, we * we)
    tied_y_all = float(np.sum((sw * sw - sw2) / 2.0))
    _, cell = np.unique(gkey * np.int64(R + 1) + er, return_inverse=True)
    cell = cell.reshape(-1)
    cw = np.bincount(cell, we)
    cw2 = np.bincount(cell, we * we)
    tied_xy = float(np.sum((cw * cw - cw2) / 2.0))
    denom = concordant + discordant + tied_x
    value = (concordant + tied_x / 2.0) / denom if denom > 0 else float("nan")
    return {
        "concordant": concordant,
        "discordant": discordant,
        "tied_x": tied_x,
        "tied_y": tied_y_all - tied_xy,
        "tied_xy": tied_xy,
        "concordance": value,
    }
