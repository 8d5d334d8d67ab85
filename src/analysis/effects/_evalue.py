"""E-values: how strong unmeasured confounding would have to be to explain an association away.

VanderWeele & Ding (2017, Ann Intern Med 167:268): for a risk ratio RR >= 1 the E-value is

    E = RR + sqrt(RR (RR - 1)),

the minimum strength of association, on the risk-ratio scale, that an unmeasured confounder
would need with both the exposure and the outcome, above the measured covariates, to move
the estimate to the null. A protective RR < 1 is inverted first (1/RR). For the interval the
E-value is computed at the limit closest to the null, and is 1 when the interval includes
the null.

Other measures are first put on the RR scale (the paper's Table 2 and its supplement):

* OR and HR with a rare outcome (< 15% at the end of follow-up): used as the RR;
* OR with a common outcome: RR ≈ sqrt(OR) (VanderWeele 2017's square-root transformation);
* HR with a common outcome: RR ≈ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR));
* a risk difference RD = p1 - p0 with the unexposed risk p0: the RR the risks imply,
  (p0 + RD) / p0 (the RD's null, 0, is RR 1), and for each limit (p0 + limit) / p0 with p0
  held fixed (risks clipped to [0, 1]): an approximation that ignores the sampling error of
  p0 (Ding & VanderWeele 2016, Epidemiology 27:368, give the bounds for a risk difference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .._kernel import check_choice
from ._common import as_number

__all__ = ["EValueResult", "e_value", "e_value_rr"]

MEASURES = ("RR", "OR", "HR", "RD")


def e_value_rr(rr: float) -> float:
    """The E-value of a risk ratio (inverted first when below 1); inf for RR 0 or inf.

    Examples
    --------
    >>> round(e_value_rr(3.9), 2), round(e_value_rr(1 / 3.9), 2), e_value_rr(1.0)
    (7.26, 7.26, 1.0)
    """
    if rr <= 0 or math.isinf(rr):
        return math.inf
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


@dataclass(frozen=True)
class EValueResult:
    """E-values of an estimate and of its interval.

    Attributes
    ----------
    measure : str
        ``"RR"``, ``"OR"``, ``"HR"`` or ``"RD"``.
    estimate, ci_lower, ci_upper : float
        As given (NaN for limits not given).
    rr, rr_lower, rr_upper : float
        The same on the risk-ratio scale (after the conversion for the measure).
    e_value : float
        E-value of the point estimate (1 when it is at the null).
    e_value_ci : float
        E-value of the limit closest to the null: 1 when the interval includes the null,
        NaN when no limit on that side was given.
    rare : bool or None
        The rare-outcome assumption used for OR and HR.
    conversion : str
        How the estimate was put on the RR scale.
    """

    measure: str
    estimate: float
    ci_lower: float
    ci_upper: float
    rr: float
    rr_lower: float
    rr_upper: float
    e_value: float
    e_value_ci: float
    rare: bool | None
    conversion: str

    @property
    def summary(self) -> pd.DataFrame:
        """R's ``EValue`` layout: rows ``estimate`` (as given), ``RR`` (on the risk-ratio
        scale) and ``E-value``; columns ``point, lower, upper``; the interval's E-value sits
        under the limit it was computed for."""
        protective = self.rr < 1
        ev_lower = math.nan if protective else self.e_value_ci
        ev_upper = self.e_value_ci if protective else math.nan
        if self.rr == 1:
            ev_lower = ev_upper = math.nan
        return pd.DataFrame(
            {"point": [self.estimate, self.rr, self.e_value], "lower": [self.ci_lower, self.rr_lower, ev_lower],
             "upper": [self.ci_upper, self.rr_upper, ev_upper]},
            index=pd.Index(["estimate", "RR", "E-value"], name="row"),
        )

    def __str__(self) -> str:
        ci = "" if math.isnan(self.e_value_ci) else f", E-value for the CI limit {self.e_value_ci:.2f}"
        return f"E-value {self.e_value:.2f}{ci} ({self.measure}, {self.conversion})"


def _to_rr(value: float, measure: str, rare: bool | None, p0: float | None) -> float:
    if math.isnan(value):
        return math.nan
    if measure == "RR" or (measure in ("OR", "HR") and rare):
        return value
    if measure == "OR":
        return math.sqrt(value)
    if measure == "HR":
        if value == 0:
            return 0.0
        return (1 - 0.5 ** math.sqrt(value)) / (1 - 0.5 ** math.sqrt(1 / value))
    # RD: the RR implied by the risks, p0 held fixed; risks cannot leave [0, 1]
    p1 = min(max(p0 + value, 0.0), 1.0)
    return p1 / p0


def e_value(estimate: float, ci_lower: float | None = None, ci_upper: float | None = None, *,
            measure: str = "RR", rare: bool | None = None, risk_control: float | None = None) -> EValueResult:
    """E-values for an observed association and its confidence interval (VanderWeele & Ding 2017).

    Parameters
    ----------
    estimate : float
        The association: a ratio (RR, OR, HR: > 0) or a risk difference p1 - p0 (RD).
    ci_lower, ci_upper : float, optional
        Its confidence limits; either may be given alone (only the one closer to the null
        matters).
    measure : {"RR", "OR", "HR", "RD"}, default "RR"
    rare : bool, optional
        Required for OR and HR: whether the outcome is rare (under 15% at the end of
        follow-up, VanderWeele & Ding 2017), when the OR or HR approximates the RR; otherwise
        the square-root conversions are used. Ignored for RR and RD.
    risk_control : float, optional
        Required for RD: the risk p0 of the unexposed (control) group, strictly between 0
        and 1.

    Returns
    -------
    EValueResult

    Examples
    --------
    The paper's example, breastfeeding and infant death (RR 3.9, 95% CI 1.8 to 8.7):

    >>> from analysis.effects import e_value
    >>> res = e_value(3.9, 1.8, 8.7)
    >>> round(res.e_value, 2), round(res.e_value_ci, 2)
    (7.26, 3.0)

    A protective hazard ratio with a common outcome (relapse in most placebo patients):

    >>> res = e_value(0.49, 0.29, 0.84, measure="HR", rare=False)
    >>> round(res.rr, 3), round(res.e_value, 2), round(res.e_value_ci, 2)
    (0.612, 2.65, 1.51)
    """
    check_choice("measure", measure, MEASURES)
    if measure in ("OR", "HR"):
        if rare is None:
            raise ValueError(f"rare must be True or False for measure={measure!r}: is the outcome rare "
                             "(under 15% at the end of follow-up)?")
        if not isinstance(rare, bool):
            raise TypeError(f"rare must be True or False, got {rare!r}")
    p0 = None
    if measure == "RD":
        if risk_control is None:
            raise ValueError("measure='RD' needs risk_control=, the risk of the unexposed (control) group")
        p0 = as_number("risk_control", risk_control, low=0, high=1, low_open=True, high_open=True)
        est = as_number("estimate", estimate, low=-1, high=1)
        if not 0 <= p0 + est <= 1:
            raise ValueError(f"risk_control + estimate must be a risk between 0 and 1, got {p0 + est!r}")
        bounds = dict(low=-1, high=1)
    else:
        est = as_number("estimate", estimate, low=0, low_open=True, allow_inf=False)
        bounds = dict(low=0, allow_inf=True)
    lo = math.nan if ci_lower is None else as_number("ci_lower", ci_lower, **bounds)
    hi = math.nan if ci_upper is None else as_number("ci_upper", ci_upper, **bounds)
    if (not math.isnan(lo) and lo > est) or (not math.isnan(hi) and hi < est):
        raise ValueError(f"expected ci_lower <= estimate <= ci_upper, got {ci_lower!r}, {estimate!r}, {ci_upper!r}")
    rr, rr_lo, rr_hi = (_to_rr(v, measure, rare, p0) for v in (est, lo, hi))
    if rr == 1:
        ev_ci = 1.0
    elif rr > 1:
        ev_ci = math.nan if math.isnan(rr_lo) else (1.0 if rr_lo <= 1 else e_value_rr(rr_lo))
    else:
        ev_ci = math.nan if math.isnan(rr_hi) else (1.0 if rr_hi >= 1 else e_value_rr(rr_hi))
    conversion = {
        "RR": "risk ratio",
        "OR": "rare outcome: OR as RR" if rare else "common outcome: RR = sqrt(OR)",
        "HR": "rare outcome: HR as RR" if rare else "common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))",
        "RD": "RR = (risk_control + RD) / risk_control",
    }[measure]
    return EValueResult(measure=measure, estimate=est, ci_lower=lo, ci_upper=hi, rr=rr, rr_lower=rr_lo,
                        rr_upper=rr_hi, e_value=e_value_rr(rr), e_value_ci=ev_ci,
                        rare=rare if measure in ("OR", "HR") else None, conversion=conversion)
