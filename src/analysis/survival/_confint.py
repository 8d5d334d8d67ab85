"""Pointwise confidence intervals for a survival curve, transform by transform.

The formulas are those of R's ``survival:::survfit_confint`` (survival 3.x), written in
terms of ``se_log``, the standard error of log S(t) (equivalently of the cumulative
hazard -log S(t)), which is what ``survfit`` stores as ``std.err``:

===========  ==============================================================================
conf_type    limits (z = normal quantile, s = se_log, p = S(t))
===========  ==============================================================================
"plain"      p -+ z s p, clipped to [0, 1]
"log"        p exp(-+ z s), upper clipped to 1; undefined (NaN) where p = 0
"log-log"    exp(-exp(log(-log p) -+ z s / log p)); NaN where p = 0 or p = 1
"logit"      logit^-1(logit p -+ z s / (1 - p))
"arcsin"     sin^2(asin(sqrt p) -+ z s sqrt(p / (1 - p)) / 2), clipped to [0, pi/2]
===========  ==============================================================================
"""

from __future__ import annotations

import numpy as np

CONF_TYPES = ("log-log", "log", "plain", "logit", "arcsin", "none")


def survival_confint(p: np.ndarray, se_log: np.ndarray, conf_type: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits for survival ``p`` with standard error ``se_log`` of log p."""
    p = np.asarray(p, dtype=float)
    se = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            se2 = se * p * z
            return np.maximum(p - se2, 0.0), np.minimum(p + se2, 1.0)
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * se
            return np.exp(np.log(xx) - se2), np.minimum(np.exp(np.log(xx) + se2), 1.0)
        if conf_type == "log-log":
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * se / np.log(xx)
            ll = np.log(-np.log(xx))
            return np.exp(-np.exp(ll - se2)), np.exp(-np.exp(ll + se2))
        if conf_type == "logit":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * se * (1 + xx / (1 - xx))
            lg = np.log(p / (1 - p))
            return 1 - 1 / (1 + np.exp(lg - se2)), 1 - 1 / (1 + np.exp(lg + se2))
        if conf_type == "arcsin":
            xx = np.where(p == 0, np.nan, p)
            se2 = 0.5 * z * se * np.sqrt(xx / (1 - xx))
            a = np.arcsin(np.sqrt(xx))
            return np.sin(np.maximum(0.0, a - se2)) ** 2, np.sin(np.minimum(np.pi / 2, a + se2)) ** 2
        if conf_type == "none":
            nan = np.full(p.shape, np.nan)
            return nan, nan.copy()
    raise ValueError(f"conf_type must be one of {', '.join(map(repr, CONF_TYPES))}; got {conf_type!r}")


def cumhaz_confint(h: np.ndarray, se: np.ndarray, conf_type: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Limits for a cumulative hazard ``h`` with standard error ``se``.

    "log": h exp(-+ z se / h) (NaN where h = 0); "plain": h -+ z se, lower clipped at 0.
    These are -log of R's survfit(stype=2) limits with conf.type "log-log" and "log".
    """
    h = np.asarray(h, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log":
            hh = np.where(h == 0, np.nan, h)
            f = np.exp(z * se / hh)
            return hh / f, hh * f
        if conf_type == "plain":
            return np.maximum(h - z * se, 0.0), h + z * se
        if conf_type == "none":
            nan = np.full(h.shape, np.nan)
            return nan, nan.copy()
    raise ValueError(f"conf_type must be one of 'log', 'plain', 'none'; got {conf_type!r}")
