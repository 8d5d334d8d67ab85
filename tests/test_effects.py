"""Clinical-significance figures (analysis.effects) against published worked examples and R.

R references were written by tests/fixtures/r/make_effects.R (eff_*.csv beside it; the
script computes each value by hand from its definition and checks it against a package:
effectsize, metafor). Published numbers carry their source next to them. No test runs R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.effects import (
    PSYCHOMETRICS, cohens_d, e_value, hedges_g, nnt, nnt_at, nnt_from_counts, psychometrics, reliable_change,
    suicide_item, suicide_item_scores, weighted_logrank,
)
from analysis.instruments import Instrument
from analysis.survival import kaplan_meier, logrank

FIXTURES = Path(__file__).resolve().parent / "fixtures"
R_DIR = FIXTURES / "r"
RTOL = 1e-7  # the R references are solved to 1e-14; scipy's and R's noncentral t agree to ~1e-9


def ref(name: str) -> pd.DataFrame:
    return pd.read_csv(R_DIR / f"{name}.csv")


# ========================================================================================
# NNT
# ========================================================================================

def test_altman_1998_interval_through_infinity():
    # Altman 1998, BMJ 317:1309, figures 1-2: ARR 10% (95% CI -5% to 25%), NNT 10; the
    # interval "goes from NNTB 4, through infinity, to NNTH 20" (as Newcombe's reply,
    # BMJ 1999, summarises it)
    res = nnt(0.10, -0.05, 0.25, conf_level=0.95)
    assert res.kind == "NNTB" and res.estimate == pytest.approx(10.0)
    assert res.ci == "NNTB 4.0 to ∞ to NNTH 20.0"
    assert res.ci_lower == pytest.approx(4.0) and res.ci_upper == pytest.approx(-20.0)
    assert res.includes_infinity
    assert str(res) == "NNTB 10.0 (95% CI NNTB 4.0 to ∞ to NNTH 20.0)"
    assert res.summary.loc[0, "ci"] == res.ci and res.summary.loc[0, "method"] == "given"


def test_barrowman_2002_significant_benefit():
    # Barrowman 2002, CMAJ 166:1676: ARR 16.6% (95% CI 0.9% to 32.2%): NNT 1/0.166, about 6,
    # with 95% CI 1/0.322 to 1/0.009, "approximately 3.1-111.1"
    res = nnt(0.166, 0.009, 0.322)
    assert res.estimate == pytest.approx(6.02, abs=0.01) and res.kind == "NNTB"
    assert res.ci == "NNTB 3.1 to 111.1"
    assert (res.ci_lower, res.ci_upper) == pytest.approx((1 / 0.322, 1 / 0.009))
    assert not res.includes_infinity


def test_harm_only_and_zero_difference():
    res = nnt(-0.10, -0.25, -0.05)
    assert res.kind == "NNTH" and res.estimate == pytest.approx(10.0)
    assert res.ci == "NNTH 4.0 to 20.0"
    assert (res.ci_lower, res.ci_upper) == pytest.approx((-20.0, -4.0))  # signed, upwards
    zero = nnt(0.0, -0.04, 0.05)
    assert zero.kind is None and math.isinf(zero.estimate) and math.isinf(zero.signed)
    assert zero.ci == "NNTB 20.0 to ∞ to NNTH 25.0"
    assert str(zero).startswith("∞ (")
    assert nnt(0.0, 0.0, 0.0).ci == "∞"
    assert nnt(0.05, 0.0, 0.10).ci == "NNTB 10.0 to ∞"
    assert nnt(-0.05, -0.10, 0.0).ci == "NNTH 10.0 to ∞"
    assert nnt(0.2).ci == "" and math.isnan(nnt(0.2).ci_lower) and str(nnt(0.2)) == "NNTB 5.0"
    assert nnt(0.1, -0.05, 0.25, digits=0).ci == "NNTB 4 to ∞ to NNTH 20"


@pytest.mark.parametrize("args, message", [
    ((0.1, 0.2, 0.3), "ci_lower <= risk_difference <= ci_upper"),
    ((1.5, None, None), "risk_difference must be"),
    ((0.1, 0.05, None), "both ci_lower and ci_upper"),
    ((float("nan"), None, None), "finite"),
])
def test_nnt_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        nnt(*args)


NEWCOMBE_1998 = {
    # Newcombe 1998, Stat Med 17:873, Table II, method 10 (hybrid score): 95% limits of p1 - p2
    (56, 70, 48, 80): (0.0524, 0.3339),
    (9, 10, 3, 10): (0.1705, 0.8090),
    (5, 56, 0, 29): (-0.0381, 0.1926),
    (0, 10, 0, 20): (-0.1611, 0.2775),
    (0, 10, 0, 10): (-0.2775, 0.2775),
    (10, 10, 0, 20): (0.6791, 1.0000),
    (10, 10, 0, 10): (0.6075, 1.0000),
}


@pytest.mark.parametrize("counts", list(NEWCOMBE_1998), ids=lambda c: "{}/{}-{}/{}".format(*c))
def test_newcombe_1998_table_ii(counts):
    res = nnt_from_counts(*counts, outcome="beneficial", method="newcombe")
    assert (round(res.rd_ci_lower, 4), round(res.rd_ci_upper, 4)) == NEWCOMBE_1998[counts]


@pytest.mark.parametrize("row", list(ref("eff_nnt").itertuples(index=False)),
                         ids=lambda r: f"{r.events_treated}/{r.n_treated}-{r.events_control}/{r.n_control}")
@pytest.mark.parametrize("method", ["wald", "newcombe"])
def test_nnt_from_counts_matches_r(row, method):
    res = nnt_from_counts(row.events_treated, row.n_treated, row.events_control, row.n_control,
                          outcome="beneficial", method=method)
    lo, hi = (row.wald_lower, row.wald_upper) if method == "wald" else (row.newcombe_lower, row.newcombe_upper)
    np.testing.assert_allclose([res.risk_difference, res.rd_se], [row.rd, row.rd_se], rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose([res.rd_ci_lower, res.rd_ci_upper], [max(lo, -1), min(hi, 1)], rtol=RTOL, atol=1e-12)
    # an adverse outcome counted in the other arm is the same comparison
    swapped = nnt_from_counts(row.events_control, row.n_control, row.events_treated, row.n_treated,
                              outcome="adverse", method=method)
    assert swapped.risk_difference == pytest.approx(res.risk_difference)
    assert (swapped.rd_ci_lower, swapped.rd_ci_upper) == pytest.approx((res.rd_ci_lower, res.rd_ci_upper))


def test_nnt_from_counts_defaults_and_direction():
    adverse = nnt_from_counts(10, 50, 20, 50)  # relapse 20% vs 40%: ARR 0.2, NNTB 5
    assert adverse.method == "newcombe" and adverse.conf_level == 0.95
    assert adverse.kind == "NNTB" and adverse.estimate == pytest.approx(5.0)
    harmful = nnt_from_counts(20, 50, 10, 50)  # more relapses on treatment
    assert harmful.kind == "NNTH" and harmful.estimate == pytest.approx(5.0)
    assert nnt_from_counts(10, 50, 10, 50).kind is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_treated=0), "n_treated must be at least 1"),
    (dict(events_control=60), r"events_control \(60\) cannot exceed n_control"),
    (dict(events_treated=2.5), "events_treated must be a whole number"),
    (dict(events_treated=-1), "events_treated must be >= 0"),
    (dict(method="exact"), "method must be one of"),
    (dict(outcome="bad"), "outcome must be one of"),
    (dict(conf_level=95), "conf_level"),
])
def test_nnt_from_counts_bad_input(kwargs, message):
    args = dict(events_treated=10, n_treated=50, events_control=20, n_control=50)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        nnt_from_counts(**args)


def _veteran():
    return pd.read_csv(FIXTURES / "data" / "veteran.csv")


def _lung():
    lung = pd.read_csv(FIXTURES / "data" / "lung.csv")
    lung["event"] = (lung["status"] == 2).astype(int)
    return lung


@pytest.mark.parametrize("row", list(ref("eff_nnt_at").itertuples(index=False)), ids=lambda r: f"{r.case}@{r.time}")
def test_nnt_at_matches_r(row):
    # Altman & Andersen 1999, BMJ 319:1492: ARR(t) = S_treated(t) - S_control(t) with the
    # Greenwood SEs of summary(survfit(...), times = t)
    if row.case == "veteran_trt":
        km = kaplan_meier(_veteran(), "time", "status", group="trt")
    else:
        km = kaplan_meier(_lung(), "time", "event", group="sex")
    res = nnt_at(km, row.time, treated=int(row.treated), control=int(row.control))
    np.testing.assert_allclose([res.risk_difference, res.rd_se, res.rd_ci_lower, res.rd_ci_upper],
                               [row.rd, row.rd_se, row.rd_lower, row.rd_upper], rtol=RTOL)
    assert res.estimate == pytest.approx(1 / abs(row.rd), rel=RTOL)
    assert res.method == "altman-andersen" and res.time == row.time
    # the event as beneficial turns the direction round
    flipped = nnt_at(km, row.time, treated=int(row.treated), control=int(row.control), outcome="beneficial")
    assert flipped.risk_difference == pytest.approx(-row.rd, rel=RTOL)


def test_nnt_at_veteran_90_days_reads_as_harm():
    # at 90 days the test arm's survival is lower: ARR -0.167 (95% CI -0.332 to -0.001)
    km = kaplan_meier(_veteran(), "time", "status", group="trt")
    res = nnt_at(km, 90, treated=2, control=1)
    assert res.kind == "NNTH" and not res.includes_infinity
    assert res.ci.startswith("NNTH 3.0 to ")


class _Incidence:
    """A stand-in cumulative-incidence result: at() returns group, time, cuminc, se."""

    def __init__(self, table):
        self.table = table

    def at(self, times):
        return self.table.assign(time=float(times[0]))


def test_nnt_at_cumulative_incidence_and_causes():
    inc = _Incidence(pd.DataFrame({"group": ["a", "b"], "cuminc": [0.20, 0.35], "se": [0.03, 0.04]}))
    res = nnt_at(inc, 28, treated="a", control="b")
    assert res.risk_difference == pytest.approx(0.15) and res.rd_se == pytest.approx(0.05)
    assert res.rd_ci_lower == pytest.approx(0.15 - 1.959963984540054 * 0.05)
    caused = _Incidence(pd.DataFrame({"group": ["a", "b", "a", "b"], "cause": [1, 1, 2, 2],
                                      "estimate": [0.2, 0.35, 0.1, 0.1], "se": [0.03, 0.04, 0.02, 0.02]}))
    with pytest.raises(ValueError, match="pass cause="):
        nnt_at(caused, 28, treated="a", control="b")
    with pytest.raises(ValueError, match="cause 3 is not in the result"):
        nnt_at(caused, 28, treated="a", control="b", cause=3)
    res = nnt_at(caused, 28, treated="a", control="b", cause=1)  # a cause's 'estimate' is an incidence
    assert res.risk_difference == pytest.approx(0.15)
    assert nnt_at(caused, 28, treated="a", control="b", cause=2).kind is None
    odd = _Incidence(pd.DataFrame({"group": ["a", "b"], "prob": [0.2, 0.35], "se": [0.03, 0.04]}))
    with pytest.raises(ValueError, match="pass estimate= and scale="):
        nnt_at(odd, 28, treated="a", control="b")
    with pytest.raises(ValueError, match="scale='survival' or scale='incidence'"):
        nnt_at(odd, 28, treated="a", control="b", estimate="prob")
    res = nnt_at(odd, 28, treated="a", control="b", estimate="prob", scale="incidence")
    assert res.risk_difference == pytest.approx(0.15)
    with pytest.raises(ValueError, match="cause= applies only"):
        nnt_at(odd, 28, treated="a", control="b", estimate="prob", scale="incidence", cause=1)


def test_nnt_at_reads_a_competing_risks_result():
    import analysis.survival as surv

    if not hasattr(surv, "cumulative_incidence"):
        pytest.skip("analysis.survival.cumulative_incidence is not available")
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5, 6, 7, 1, 3, 4, 6, 8, 9, 9, 10],
                       "status": [1, 2, 0, 1, 0, 2, 1, 0, 1, 0, 2, 0, 1, 0, 2, 0],
                       "arm": ["a"] * 8 + ["b"] * 8})
    cif = surv.cumulative_incidence(df, "t", "status", group="arm")
    at = cif.at([5]).set_index(["cause", "group"])
    res = nnt_at(cif, 5, treated="b", control="a", cause=1)
    expected = at.loc[(1, "a"), "estimate"] - at.loc[(1, "b"), "estimate"]  # fewer cause-1 events on b
    assert res.risk_difference == pytest.approx(expected)
    assert res.rd_se == pytest.approx(math.hypot(at.loc[(1, "a"), "se"], at.loc[(1, "b"), "se"]))


def test_nnt_at_errors():
    km = kaplan_meier(_veteran(), "time", "status", group="trt")
    with pytest.raises(ValueError, match="treated=3 is not a group"):
        nnt_at(km, 90, treated=3, control=1)
    with pytest.raises(ValueError, match="different groups"):
        nnt_at(km, 90, treated=1, control=1)
    with pytest.raises(ValueError, match="beyond its follow-up"):
        nnt_at(km, 5000, treated=2, control=1)
    with pytest.raises(TypeError, match="at\\(times\\)"):
        nnt_at(object(), 90, treated=2, control=1)
    nose = _Incidence(pd.DataFrame({"group": ["a", "b"], "survival": [0.8, 0.6], "se": [np.nan, 0.04]}))
    with pytest.raises(ValueError, match="no standard error"):
        nnt_at(nose, 10, treated="a", control="b")


# ========================================================================================
# Cohen's d and Hedges' g
# ========================================================================================

def _d_inputs(case: str):
    an = pd.read_csv(R_DIR / "eff_anorexia.csv")
    sl = pd.read_csv(R_DIR / "eff_sleep.csv")
    if case.startswith("anorexia_change_"):
        tr = case.split("_")[2]
        return an.change[an.Treat == tr], an.change[an.Treat == "Cont"], False
    if case == "anorexia_all_post_vs_pre":
        return an.Postwt, an.Prewt, True
    if case.startswith("anorexia_"):
        tr = case.split("_")[1]
        return an.Postwt[an.Treat == tr], an.Prewt[an.Treat == tr], True
    if case == "sleep_2_vs_1":
        return sl.extra[sl.group == 2], sl.extra[sl.group == 1], False
    s2, s1 = sl[sl.group == 2].sort_values("ID"), sl[sl.group == 1].sort_values("ID")
    return s2.extra.to_numpy(), s1.extra.to_numpy(), True


D_REF = ref("eff_d")


@pytest.mark.parametrize("row", list(D_REF.itertuples(index=False)),
                         ids=lambda r: f"{r.case}-{r.kind}-{'g' if r.hedges else 'd'}-{r.ci_method}")
def test_effect_sizes_match_r(row):
    x, y, paired = _d_inputs(row.case)
    f = hedges_g if row.hedges else cohens_d
    res = f(x, y, paired=paired, kind=row.kind, ci_method=row.ci_method, conf_level=row.conf_level)
    np.testing.assert_allclose([res.estimate, res.se, res.ci_lower, res.ci_upper],
                               [row.estimate, row.se, row.ci_lower, row.ci_upper], rtol=RTOL)
    assert (res.n_x, res.n_y, res.df) == (row.n1, row.n2, row.df)
    assert res.design == row.design and res.kind == row.kind and res.ci_method == row.ci_method


def test_effect_size_defaults():
    x, y, _ = _d_inputs("anorexia_CBT_post_vs_pre")
    res = cohens_d(x, y, paired=True)
    assert (res.kind, res.ci_method, res.conf_level, res.measure) == ("av", "noncentral", 0.95, "cohens_d")
    row = D_REF[(D_REF.case == "anorexia_CBT_post_vs_pre") & (D_REF.kind == "av") & ~D_REF.hedges
                & (D_REF.ci_method == "noncentral")].iloc[0]
    assert res.estimate == pytest.approx(row.estimate, rel=RTOL)
    two = hedges_g(*_d_inputs("sleep_2_vs_1")[:2])
    assert two.kind == "pooled" and two.design == "independent" and two.correction < 1
    assert two.estimate == pytest.approx(cohens_d(*_d_inputs("sleep_2_vs_1")[:2]).estimate * two.correction)
    assert list(two.summary.columns[:4]) == ["estimate", "se", "ci_lower", "ci_upper"]
    assert str(two).startswith("g = ")


def test_effect_size_from_columns_and_missing_values():
    df = pd.DataFrame({"pre": [20, 18, 22, 25, np.nan, 21], "post": [12, 15, 10, 20, 9, np.nan]})
    with pytest.raises(ValueError, match=r"column 'pre' \(y\) has 1 missing value\(s\) \(value 5\)"):
        cohens_d("post", "pre", data=df, paired=True)
    res = cohens_d("post", "pre", data=df, paired=True, dropna=True)
    assert res.n_dropped == 2 and res.n_x == 4
    same = cohens_d([12, 15, 10, 20], [20, 18, 22, 25], paired=True)
    assert res.estimate == pytest.approx(same.estimate)
    with pytest.raises(ValueError, match="is not a column"):
        cohens_d("after", "pre", data=df, paired=True)
    ind = cohens_d([1, 2, np.nan, 4], [2, 3, 5], dropna=True)
    assert ind.n_dropped == 1 and ind.n_x == 3


@pytest.mark.parametrize("call, error, message", [
    (lambda: cohens_d([5, 6, 7], [1, 2, 3], paired=True), ValueError, "zero standard deviation"),
    (lambda: cohens_d([3, 3, 3], [2, 2, 2]), ValueError, "zero standard deviation"),
    (lambda: cohens_d([1], [2, 3, 4]), ValueError, "x needs at least 2 values, got 1"),
    (lambda: hedges_g([1, 2, 3], [4]), ValueError, "y needs at least 2 values, got 1"),
    (lambda: cohens_d([1], [2], paired=True), ValueError, "at least 2 complete pairs"),
    (lambda: cohens_d([1, 2, 3], [1, 2], paired=True), ValueError, "same length"),
    (lambda: cohens_d([1, 2, 3], [2, 4, 5], kind="z"), ValueError, "kind must be one of 'pooled'"),
    (lambda: cohens_d([1, 2, 3], [2, 4, 5], paired=True, kind="pooled"), ValueError, "kind must be one of 'av'"),
    (lambda: cohens_d([1, 2, 3], [2, 4, 5], ci_method="bootstrap"), ValueError, "ci_method must be one of"),
    (lambda: cohens_d([1, 2, np.inf], [2, 4, 5]), ValueError, "infinite"),
    (lambda: cohens_d(["a", "b"], [2, 4]), ValueError, "numbers only"),
    (lambda: cohens_d(3, [2, 4]), TypeError, "sequence of numbers"),
    (lambda: cohens_d([1, 2, 4], [2, 4, 5], paired="yes"), TypeError, "paired must be True or False"),
])
def test_effect_size_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_paired_kinds_relate_as_lakens_2013():
    # Lakens 2013: d_rm = d_z sqrt(2 (1 - r)); with equal SDs d_rm equals d_av
    pre = np.array([20, 18, 22, 25, 19, 21, 17, 23.0])
    post = np.array([12, 15, 10, 20, 9, 14, 16, 11.0])
    dz, drm = (cohens_d(post, pre, paired=True, kind=k) for k in ("z", "rm"))
    r = np.corrcoef(pre, post)[0, 1]
    assert drm.estimate == pytest.approx(dz.estimate * math.sqrt(2 * (1 - r)))
    post_eq = pre.mean() - 6 + (pre - pre.mean())[[3, 0, 7, 1, 5, 2, 6, 4]]  # same SD as pre, shuffled
    av, rm = (cohens_d(post_eq, pre, paired=True, kind=k).estimate for k in ("av", "rm"))
    assert av == pytest.approx(rm)
    assert cohens_d(post, pre, paired=True).estimate < 0  # scores fell


# ========================================================================================
# Jacobson-Truax reliable change
# ========================================================================================

PRE = [20, 18, 24, 15, 22, 19, 26, 17]
POST = [6, 16, 25, 4, 12, 21, 8, 15]


def test_reliable_change_by_hand():
    res = reliable_change(pd.DataFrame({"baseline_score": PRE, "endpoint_score": POST}), "PHQ-9")
    sd = float(np.std(PRE, ddof=1))
    s_diff = math.sqrt(2) * sd * math.sqrt(1 - 0.84)  # Jacobson & Truax 1991; PHQ-9 retest 0.84 (Kroenke 2001)
    assert res.sd == pytest.approx(sd) and res.s_diff == pytest.approx(s_diff)
    assert res.reliability == 0.84 and res.reliability_kind == "test-retest"
    assert res.threshold == pytest.approx(1.959964, abs=1e-6)
    np.testing.assert_allclose(res.per_patient["rci"], (np.array(POST) - PRE) / s_diff)
    # criterion c with Kocalevent 2013's norms, M0 2.91 and SD0 3.51
    c = (3.51 * np.mean(PRE) + sd * 2.91) / (3.51 + sd)
    assert res.criterion == "c" and res.cutoff == pytest.approx(c)
    assert dict(zip(res.table["category"], res.table["n"])) == {
        "recovered": 3, "improved": 1, "unchanged": 4, "deteriorated": 0}
    assert res.table["percent"].sum() == pytest.approx(100)
    assert res.summary.loc[0, "recovered"] == 3 and res.n_past_cutoff_at_baseline == 0


def test_reliable_change_criteria_and_overrides():
    base = dict(pre=PRE, post=POST, instrument="PHQ-9")
    sd, m1 = float(np.std(PRE, ddof=1)), float(np.mean(PRE))
    assert reliable_change(**base, criterion="a").cutoff == pytest.approx(m1 - 2 * sd)
    assert reliable_change(**base, criterion="b").cutoff == pytest.approx(2.91 + 2 * 3.51)
    rem = reliable_change(**base, criterion="remission")
    assert rem.cutoff == 4 and rem.per_patient["past_cutoff"].tolist() == [p <= 4 for p in POST]
    own = reliable_change(**base, cutoff=10)
    assert own.criterion == "given" and own.per_patient["past_cutoff"].tolist() == [p < 10 for p in POST]
    alpha = reliable_change(**base, reliability="internal consistency")
    assert alpha.reliability == 0.89 and alpha.reliability_kind == "internal consistency"
    given = reliable_change(**base, reliability=0.9, sd=5.0)
    assert given.reliability_kind == "given" and given.s_diff == pytest.approx(math.sqrt(2) * 5 * math.sqrt(0.1))
    normed = reliable_change(**base, norm_mean=3.0, norm_sd=3.0)
    assert normed.cutoff == pytest.approx((3 * m1 + sd * 3) / (3 + sd))
    # QIDS-SR16 has no adopted norms: criterion a, and its internal consistency (Rush 2003)
    q = reliable_change(pre=[14, 18, 20, 16], post=[6, 15, 9, 16], instrument="QIDS-SR16")
    assert q.criterion == "a" and q.reliability == 0.86 and q.reliability_kind == "internal consistency"


def test_reliable_change_higher_is_better_mirrors():
    inst = Instrument("WELLBEING", 0, 100)
    lo = reliable_change(pre=PRE, post=POST, instrument="PHQ-9", reliability=0.84, criterion="a")
    hi = reliable_change(pre=[100 - p for p in PRE], post=[100 - p for p in POST], instrument=inst,
                         reliability=0.84, criterion="a", lower_is_better=False)
    assert hi.table["n"].tolist() == lo.table["n"].tolist()
    assert hi.cutoff == pytest.approx(100 - lo.cutoff)


def test_reliable_change_on_derived_outcomes():
    import analysis

    out = analysis.derive_outcomes(analysis.load_dataset("data/sample"), "PHQ-9")
    with pytest.raises(ValueError, match="missing value"):
        reliable_change(out.courses)
    res = reliable_change(out, dropna=True)  # an Outcomes is read through its courses
    n_missing = int(out.courses["endpoint_score"].isna().sum())
    assert res.n_dropped == n_missing and res.instrument == "PHQ-9"
    assert res.table["n"].sum() == len(out.courses) - n_missing
    assert "patient_id" in res.per_patient.columns


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(instrument="PCL-5"), ValueError, "no reliability is adopted for PCL-5"),
    (dict(instrument="QIDS-SR16", reliability="test-retest"), ValueError, "no test-retest reliability"),
    (dict(instrument="QIDS-SR16", criterion="c"), ValueError, "needs functional norms"),
    (dict(instrument="PHQ-9", reliability=1.0), ValueError, "reliability must be"),
    (dict(instrument="PHQ-9", criterion="d"), ValueError, "criterion must be one of"),
    (dict(instrument="PHQ-9", criterion="a", cutoff=9), ValueError, "not both"),
    (dict(instrument="PHQ-9", norm_mean=3.0), ValueError, "both norm_mean and norm_sd"),
    (dict(instrument="PHQ-9", post=[6, 16, 25, 4, 12, 21, 8, 30]), ValueError, "outside PHQ-9's range 0 to 27"),
    (dict(instrument="PHQ-9", pre=[20] * 8), ValueError, "zero standard deviation; pass sd="),
    (dict(instrument="PHQ-9", pre=[20, None, 24, 15, 22, 19, 26, 17]), ValueError, r"pre has 1 missing value"),
    (dict(instrument="CADSS", reliability=0.9, criterion="remission"), ValueError, "no remission cut-off"),
    (dict(instrument=None), ValueError, "give instrument="),
])
def test_reliable_change_bad_input(kwargs, error, message):
    args = dict(pre=PRE, post=POST)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        reliable_change(**args)


def test_psychometrics_have_sources():
    assert psychometrics("phq9") is PSYCHOMETRICS["PHQ-9"]
    # Kroenke, Spitzer & Williams 2001: retest 0.84, Cronbach's alpha 0.89
    assert (PSYCHOMETRICS["PHQ-9"].test_retest, PSYCHOMETRICS["PHQ-9"].internal_consistency) == (0.84, 0.89)
    assert psychometrics("PCL-5") is None
    for p in PSYCHOMETRICS.values():
        assert p.reliability_source
        for r in (p.test_retest, p.internal_consistency):
            assert r is None or 0 < r < 1
        assert (p.norm_mean is None) == (p.norm_sd is None) and (p.norm_mean is None or p.norm_source)


# ========================================================================================
# the suicide item
# ========================================================================================

def test_suicide_item_counts():
    res = suicide_item(baseline=[2, 1, 0, 0, 3, 0, 1, 0], endpoint=[0, 0, 0, 1, 1, 0, 1, 0], item_max=3)
    t = res.summary
    assert t.loc["baseline", ["n", "denominator"]].tolist() == [4, 8]
    assert t.loc["endpoint", "n"] == 3
    assert t.loc["new onset", ["n", "denominator"]].tolist() == [1, 4]  # among those at 0 at baseline
    assert t.loc["resolved", ["n", "denominator"]].tolist() == [2, 4]
    assert t.loc["worsened", "n"] == 1 and res.n == 8
    none_at_baseline = suicide_item(baseline=[0, 0], endpoint=[0, 1]).summary
    assert none_at_baseline.loc["resolved", "denominator"] == 0
    assert np.isnan(none_at_baseline.loc["resolved", "percent"])


def test_suicide_item_bad_input():
    with pytest.raises(ValueError, match=r"endpoint has 1 value\(s\) outside 0 to 3"):
        suicide_item(baseline=[0, 1], endpoint=[4, 1], item_max=3)
    with pytest.raises(ValueError, match="outside >= 0"):
        suicide_item(baseline=[-1, 1], endpoint=[0, 1])
    df = pd.DataFrame({"baseline_item": [1, np.nan, 0], "endpoint_item": [0, 1, 0]})
    with pytest.raises(ValueError, match="missing value"):
        suicide_item(df)
    assert suicide_item(df, dropna=True).n_dropped == 1
    with pytest.raises(ValueError, match="is not a column"):
        suicide_item(df, baseline="item9")


def test_suicide_item_scores_from_assessments():
    assessments = pd.DataFrame({
        "patient_id": ["P1", "P1", "P1", "P2", "P2", "P3"],
        "day": [0, 0, 14, -2, 14, 0],
        "instrument": ["PHQ-9", "GAD-7", "phq9", "PHQ-9", "PHQ-9", "PHQ-9"],
        "score": [21, 12, 8, 17, 12, 20],
        "item_9": [2, np.nan, 0, 0, 1, 1],
    })
    courses = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "instrument": "PHQ-9",
                            "baseline_day": [0.0, -2.0, 0.0], "endpoint_day": [14.0, 14.0, np.nan]})
    items = suicide_item_scores(assessments, courses)
    assert items["baseline_item"].tolist() == [2, 0, 1]
    assert items["endpoint_item"].tolist()[:2] == [0, 1] and np.isnan(items["endpoint_item"].iloc[2])
    res = suicide_item(items, item_max=3, dropna=True)
    assert res.n == 2 and res.n_dropped == 1
    with pytest.raises(ValueError, match=r"no column 'item_10' \(MADRS item 10"):
        suicide_item_scores(assessments, courses, "MADRS")
    dup = pd.concat([assessments, assessments.iloc[[0]].assign(item_9=3)])
    with pytest.raises(ValueError, match="different item_9 values"):
        suicide_item_scores(dup, courses)
    same = pd.concat([assessments, assessments.iloc[[0]]])  # an exact duplicate is harmless
    assert suicide_item_scores(same, courses)["baseline_item"].tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="has no suicide item"):
        suicide_item_scores(assessments, courses, "GAD-7")


# ========================================================================================
# E-values
# ========================================================================================

def test_vanderweele_ding_2017_breastfeeding():
    # VanderWeele & Ding 2017, Ann Intern Med 167:268: breastfeeding and infant death, RR 3.9
    # (95% CI 1.8 to 8.7): E-value 7.26, and 3.0 for the lower limit
    res = e_value(3.9, 1.8, 8.7)
    assert round(res.e_value, 2) == 7.26 and round(res.e_value_ci, 1) == 3.0
    assert res.e_value == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    s = res.summary
    assert s.loc["E-value", "point"] == res.e_value and s.loc["E-value", "lower"] == res.e_value_ci
    assert np.isnan(s.loc["E-value", "upper"])


def test_protective_estimates_are_inverted():
    # the leukemia example's inputs of the paper (RR 0.80, 95% CI 0.71 to 0.91; as in R's
    # EValue documentation): the E-values of 1/0.80 and of the upper limit 1/0.91
    res = e_value(0.80, 0.71, 0.91)
    assert res.e_value == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))
    assert round(res.e_value, 2) == 1.81 and round(res.e_value_ci, 2) == 1.43
    assert res.summary.loc["E-value", "upper"] == res.e_value_ci
    assert e_value(1 / 0.8).e_value == pytest.approx(res.e_value)  # symmetry
    odds = e_value(0.5, 0.3, 0.8, measure="OR", rare=True)
    assert odds.e_value == pytest.approx(e_value(2.0).e_value)


def test_common_outcome_conversions():
    # VanderWeele & Ding 2017 (and VanderWeele 2017): OR -> sqrt(OR); HR -> (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))
    odds = e_value(0.86, 0.75, 0.99, measure="OR", rare=False)
    assert odds.rr == pytest.approx(math.sqrt(0.86)) and odds.rr_upper == pytest.approx(math.sqrt(0.99))
    hr = 0.56
    rr = (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))
    res = e_value(0.56, 0.46, 0.69, measure="HR", rare=False)
    assert res.rr == pytest.approx(rr) and res.e_value == pytest.approx(1 / rr + math.sqrt(1 / rr * (1 / rr - 1)))
    assert e_value(0.56, 0.46, 0.69, measure="HR", rare=True).rr == 0.56
    assert e_value(1.0, measure="HR", rare=False).rr == pytest.approx(1.0)


def test_interval_including_the_null_and_missing_limits():
    res = e_value(1.5, 0.9, 2.5)
    assert res.e_value_ci == 1.0
    assert e_value(0.7, 0.4, 1.2).e_value_ci == 1.0
    assert e_value(1.0, 0.8, 1.25).e_value == 1.0 and e_value(1.0).e_value_ci == 1.0
    assert np.isnan(e_value(2.0).e_value_ci)
    assert np.isnan(e_value(2.0, ci_upper=3.0).e_value_ci)  # the limit nearer the null is missing
    assert e_value(2.0, ci_lower=1.5).e_value_ci == pytest.approx(1.5 + math.sqrt(1.5 * 0.5))


def test_risk_difference_via_implied_rr():
    # p0 = 0.2, RD = 0.1: RR 1.5; limits 0.02 and 0.18 -> RR 1.1 and 1.9
    res = e_value(0.10, 0.02, 0.18, measure="RD", risk_control=0.2)
    assert res.rr == pytest.approx(1.5) and res.rr_lower == pytest.approx(1.1)
    assert res.e_value == pytest.approx(e_value(1.5).e_value)
    assert res.e_value_ci == pytest.approx(e_value(1.1).e_value)
    assert e_value(-0.1, -0.15, 0.01, measure="RD", risk_control=0.3).e_value_ci == 1.0
    assert e_value(-0.2, -0.3, -0.1, measure="RD", risk_control=0.2).e_value == math.inf  # p1 = 0


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((0.5,), dict(measure="OR"), ValueError, "rare must be True or False"),
    ((0.5,), dict(measure="HR", rare="yes"), TypeError, "rare must be True or False"),
    ((0.1,), dict(measure="RD"), ValueError, "needs risk_control"),
    ((0.3,), dict(measure="RD", risk_control=0.8), ValueError, "between 0 and 1"),
    ((2.0, 2.5, 3.0), {}, ValueError, "ci_lower <= estimate <= ci_upper"),
    ((0.0,), {}, ValueError, "estimate must be > 0"),
    ((-1.2,), {}, ValueError, "estimate must be > 0"),
    ((1.2,), dict(measure="IRR"), ValueError, "measure must be one of"),
])
def test_e_value_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        e_value(*args, **kwargs)


# ========================================================================================
# weighted-combination log-rank
# ========================================================================================

WL = ref("eff_wlogrank").set_index("case")
WL_STRATA = ref("eff_wlogrank_strata")

WL_CASES = {
    "veteran_prior_equal": ("veteran", "trt", "prior", 2, [1, 1]),
    "veteran_prior_unequal": ("veteran", "trt", "prior", 2, [math.sqrt(0.3), math.sqrt(0.7)]),
    "veteran_celltype": ("veteran", "trt", "celltype", 2, [1, 2, 3, 4]),
    "lung_sex_by_ecog": ("lung", "sex", "ph.ecog", 2, [0.5, 0.3, 0.2]),
}


def _wl_data(name):
    if name == "veteran":
        return _veteran().rename(columns={"status": "event"})
    lung = _lung()
    return lung[lung["ph.ecog"].notna() & (lung["ph.ecog"] <= 2)]


@pytest.mark.parametrize("case", list(WL_CASES))
def test_weighted_logrank_matches_r(case):
    name, group, stratum, treated, weights = WL_CASES[case]
    data = _wl_data(name)
    strata = WL_STRATA[WL_STRATA.case == case]
    if stratum == "celltype":  # R's factor order of veteran$celltype, not the alphabetical one
        data = data.assign(celltype=pd.Categorical(data["celltype"], categories=list(strata["stratum"])))
    res = weighted_logrank(data, "time", "event", group, stratum=stratum, weights=weights, treated=treated)
    np.testing.assert_allclose(res.statistic, WL.loc[case, "statistic"], rtol=RTOL)
    np.testing.assert_allclose(res.p_value, WL.loc[case, "p_value"], rtol=RTOL)
    t = res.table
    labels = [str(int(s)) if isinstance(s, float) else str(s) for s in t["stratum"]]  # lung's ph.ecog is float
    assert labels == strata["stratum"].astype(str).tolist()
    for col in ("n", "observed", "expected", "variance", "z", "weight"):
        np.testing.assert_allclose(t[col], strata[col], rtol=RTOL, err_msg=col)


def test_weighted_logrank_frames_mapping_and_single_stratum():
    vet = _wl_data("veteran")
    one = weighted_logrank(vet, "time", "event", "trt", stratum="prior", weights=[1, 1])
    frames = [vet[vet.prior == 0], vet[vet.prior == 10]]
    assert weighted_logrank(frames, "time", "event", "trt", weights=[1, 1]).statistic == pytest.approx(one.statistic)
    by_name = weighted_logrank({"no prior": frames[0], "prior": frames[1]}, "time", "event", "trt",
                               weights={"prior": 1, "no prior": 1})
    assert by_name.statistic == pytest.approx(one.statistic)
    assert by_name.table["stratum"].tolist() == ["no prior", "prior"]
    assert one.treated == 2  # the second level by default
    # one stratum: the signed square root of the log-rank chi-square
    single = weighted_logrank([vet], "time", "event", "trt", weights=[3.0])
    assert single.statistic ** 2 == pytest.approx(logrank(vet, "time", "event", "trt").statistic)
    other = weighted_logrank([vet], "time", "event", "trt", weights=[1], treated=1)
    assert other.statistic == pytest.approx(-single.statistic)
    less = weighted_logrank([vet], "time", "event", "trt", weights=[1], alternative="less")
    assert less.p_value == pytest.approx(0.5 * single.p_value if single.statistic < 0 else 1 - 0.5 * single.p_value)
    assert list(one.summary.columns) == ["statistic", "p_value", "alternative", "treated", "n_strata"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=[1]), r"weights has 1 value\(s\) for 2 strata"),
    (dict(weights=[1, -1]), "weights must be finite, >= 0"),
    (dict(weights=[0, 0]), "not all 0"),
    (dict(weights={0: 1}), "missing"),
    (dict(weights=[1, 1], treated=3), "treated=3 is not a level"),
    (dict(weights=[1, 1], stratum=None), "give stratum="),
    (dict(weights=[1, 1], stratum="site"), "is not a column"),
    (dict(weights=[1, 1], alternative="one-sided"), "alternative must be one of"),
])
def test_weighted_logrank_bad_input(kwargs, message):
    args = dict(stratum="prior")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        weighted_logrank(_wl_data("veteran"), "time", "event", "trt", **args)


def test_weighted_logrank_stratum_with_one_group():
    vet = _wl_data("veteran")
    lopsided = vet[~((vet.prior == 10) & (vet.trt == 2))]
    with pytest.raises(ValueError, match="stratum 10: .*at least two groups"):
        weighted_logrank(lopsided, "time", "event", "trt", stratum="prior", weights=[1, 1])
