"""Competing risks against R (fixtures from tests/fixtures/r/make_competing.R), and by
simulation with known truth.

* ``cumulative_incidence``: cmprsk's ``cuminc`` (estimate, Gray's variance, the reference
  intervals computed from them, ``timepoints``, Gray's test with strata and rho) and
  survival's ``survfit`` on multi-state data (estimate, infinitesimal-jackknife std.err and
  limits, weights, delayed entry), relative 1e-6;
* ``fine_gray``: cmprsk's ``crr`` (coefficients, sandwich variance, inverse information, log
  likelihoods, ``predict.crr``) and, with ``censoring="finegray"``, survival's ``finegray`` +
  ``coxph`` (coefficients, robust and model-based se, log likelihoods, ``survfit`` on new
  data; weights and clusters), relative 1e-4 (iterative fits; observed about 1e-8);
* ``cause_specific_cox``: ``coxph(Surv(time, status == k) ~ ...)``.

The simulation studies (``@pytest.mark.slow``, ``@pytest.mark.simulation``) run
``KO_SIM_REPS`` replicates (default 800: 400 for the curves, 200 for Fine-Gray, about 15 s).
Measured (2026-12-01) with 2,000 replicates of the curve study: mean estimate 0.467 (truth
0.466), 95% log-log coverage 95.5% (cuminc variance) and 95.4% (jackknife), 1 - KM 0.552
(bias +0.086), Gray's test size 4.7%; with 1,000 replicates of the Fine-Gray study: mean
estimates 0.506 and -0.507 (truth 0.5, -0.5), coverage 95.4% and 93.3% (crr's variance; the
same with the robust one).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import ConvergenceWarning
from analysis._kernel import ModelResult
from analysis.problems import DataValidationError
from analysis.survival import (
    CauseSpecificCoxResult, CoxResult, FineGrayResult, cause_specific_cox, cox, cumulative_incidence, fine_gray,
    kaplan_meier,
)

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

RTOL_CLOSED = 1e-6  # closed forms: the curves, their variances, Gray's statistic
RTOL_FIT = 1e-4  # iterative fits: crr and coxph
CR_CASES = ref("cr_cases")
FG_CASES = ref("fg_cases")
PROFILES = {
    "cr_mgus2": pd.DataFrame({"age": [60, 80], "male": [0, 1]}),
    "cr_bmt": pd.DataFrame({"platelet": [0, 1], "age": [-1.0, 0.5], "tcell": [0, 1]}),
    "cr_transplant": pd.DataFrame({"age": [40, 60], "sex": ["f", "m"]}),
    "cr_ties": pd.DataFrame({"x1": [-0.5, 1.0], "x2": [0, 1]}),
}


def _opt(value: str):
    return value or None


def _value(text: str):
    """A status value as the case table writes it: a number or a label."""
    try:
        return int(text)
    except ValueError:
        return text


def _cases(frame, keep=lambda row: True):
    return [pytest.param(row, id=row.case) for row in frame.itertuples(index=False) if keep(row)]


def _data(cs) -> pd.DataFrame:
    d = load_data(cs.dataset)
    for col in (getattr(cs, "group", ""), getattr(cs, "strata", "")):
        if col:
            d[col] = d[col].astype(str)  # R's factor levels are the sorted text
    return d


def _fit_ci(cs, **kw):
    kw.setdefault("variance", "jackknife" if (cs.weights or cs.entry) else "cuminc")
    return cumulative_incidence(_data(cs), cs.time, cs.status, group=_opt(cs.group), strata=_opt(cs.strata),
                                censor=_value(cs.censor), rho=float(cs.rho), weights=_opt(cs.weights),
                                entry=_opt(cs.entry), **kw)


def _rows(result_at: pd.DataFrame, group: str, cause) -> pd.DataFrame:
    sel = (result_at["group"].astype(str) == str(group)) & (result_at["cause"].astype(str) == str(cause))
    return result_at[sel].reset_index(drop=True)


def _curve_cases(frame):
    return _cases(frame, lambda r: r.strata == "" and r.rho == "0")


# ---------------------------------------------------------------------------------------
# cumulative incidence against cmprsk::cuminc
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _curve_cases(CR_CASES[(CR_CASES.weights == "") & (CR_CASES.entry == "")]))
def test_cuminc_estimate_variance_and_intervals(cs):
    r_all = ref("cr_cuminc")
    r_all = r_all[r_all["case"] == cs.case]
    assert len(r_all)
    fits = {(ct, lev): _fit_ci(cs, conf_type=ct, conf_level=lev)
            for ct, lev in (("log-log", 0.95), ("log", 0.95), ("plain", 0.95), ("log-log", 0.9))}
    for (group, cause), r in r_all.groupby(["group", "cause"], sort=False):
        r = r.reset_index(drop=True)
        ours = _rows(fits["log-log", 0.95].at(r["time"].to_numpy()), group, cause)
        ctx = f"{cs.case} {group} {cause}"
        close(ours["estimate"], r["est"], "cif.estimate (cuminc)", context=ctx, rtol=RTOL_CLOSED)
        close(ours["se"] ** 2, r["var"], "cif.variance (cuminc)", context=ctx, rtol=RTOL_CLOSED)
        for (ct, lev), tag in ((("log-log", 0.95), "loglog"), (("log", 0.95), "log"), (("plain", 0.95), "plain"),
                               (("log-log", 0.9), "loglog90")):
            o = _rows(fits[ct, lev].at(r["time"].to_numpy()), group, cause)
            # R's interval is undefined (NA) where F = 0; ours is the point 0 there
            zero = r["est"].to_numpy() == 0
            assert np.all(o.loc[zero, ["ci_lower", "ci_upper"]].to_numpy() == 0)
            close(o["ci_lower"][~zero], r[f"{tag}_lower"][~zero], f"cif.ci_lower {ct}", context=ctx, rtol=RTOL_CLOSED)
            close(o["ci_upper"][~zero], r[f"{tag}_upper"][~zero], f"cif.ci_upper {ct}", context=ctx, rtol=RTOL_CLOSED)


@pytest.mark.parametrize("cs", _curve_cases(CR_CASES[(CR_CASES.weights == "") & (CR_CASES.entry == "")]))
def test_cuminc_timepoints(cs):
    r_all = ref("cr_timepoints")
    r_all = r_all[r_all["case"] == cs.case]
    ci = _fit_ci(cs)
    for (group, cause), r in r_all.groupby(["group", "cause"], sort=False):
        r = r.reset_index(drop=True)
        ours = _rows(ci.at(r["time"].to_numpy()), group, cause)
        ctx = f"{cs.case} {group} {cause}"
        # timepoints is NA beyond a curve's last time (its last follow-up time), as at()
        close(ours["estimate"], r["est"], "cif.at estimate", context=ctx, rtol=RTOL_CLOSED)
        close(ours["se"] ** 2, r["var"], "cif.at variance", context=ctx, rtol=RTOL_CLOSED)


@pytest.mark.parametrize("cs", _cases(CR_CASES, lambda r: r.weights == "" and r.entry == ""))
def test_gray_test(cs):
    r = ref("cr_gray")
    r = r[r["case"] == cs.case].reset_index(drop=True)
    ci = _fit_ci(cs)
    if not len(r):
        assert ci.test is None
        return
    t = ci.test
    assert [str(c) for c in t.index] == r["cause"].astype(str).tolist()
    assert list(t.columns) == ["statistic", "df", "p_value"]
    close(t["statistic"], r["stat"], "gray.statistic", context=cs.case, rtol=RTOL_CLOSED)
    close(t["p_value"], r["pv"], "gray.p_value", context=cs.case, rtol=RTOL_CLOSED)
    assert t["df"].tolist() == r["df"].astype(int).tolist()


# ---------------------------------------------------------------------------------------
# cumulative incidence against survfit's Aalen-Johansen (infinitesimal jackknife)
# ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Gray's test is not computed:UserWarning")
@pytest.mark.parametrize("cs", _curve_cases(CR_CASES))
def test_survfit_aalen_johansen(cs):
    r_all = ref("cr_survfit")
    r_all = r_all[r_all["case"] == cs.case]
    assert len(r_all)
    fits = {ct: _fit_ci(cs, variance="jackknife", conf_type=ct) for ct in ("log-log", "log", "plain")}
    for (group, cause), r in r_all.groupby(["group", "cause"], sort=False):
        r = r.reset_index(drop=True)
        ctx = f"{cs.case} {group} {cause}"
        ours = _rows(fits["log-log"].at(r["time"].to_numpy()), group, cause)
        if not cs.weights:  # survfit's multi-state n.risk counts rows; ours are weighted sums, as kaplan_meier's
            close(ours["at_risk"], r["n_risk"], "cif.at_risk (survfit)", context=ctx, rtol=RTOL_CLOSED)
        close(ours["estimate"], r["pstate"], "cif.estimate (survfit)", context=ctx, rtol=RTOL_CLOSED)
        close(ours["se"], r["std_err"], "cif.se (jackknife)", context=ctx, rtol=RTOL_CLOSED)
        zero = r["pstate"].to_numpy() == 0
        for ct, tag in (("log-log", "loglog"), ("log", "log"), ("plain", "plain")):
            o = _rows(fits[ct].at(r["time"].to_numpy()), group, cause)
            close(o["ci_lower"][~zero], r[f"{tag}_lower"][~zero], f"cif.ci_lower jackknife {ct}", context=ctx,
                  rtol=RTOL_CLOSED)
            close(o["ci_upper"][~zero], r[f"{tag}_upper"][~zero], f"cif.ci_upper jackknife {ct}", context=ctx,
                  rtol=RTOL_CLOSED)


# ---------------------------------------------------------------------------------------
# Fine-Gray against cmprsk::crr
# ---------------------------------------------------------------------------------------
def _fit_fg(cs, **kw):
    return fine_gray(cs.formula, load_data(cs.dataset), duration=cs.time, event=cs.status, cause=_value(cs.cause),
                     censor=_value(cs.censor), ties=cs.ties, weights=_opt(cs.weights), cluster=_opt(cs.cluster),
                     censoring_group=_opt(cs.cengroup), dropna=True, **kw)


@pytest.mark.parametrize("cs", _cases(FG_CASES, lambda r: r.case in set(ref("fg_crr")["case"])))
def test_fine_gray_matches_crr(cs):
    fg = _fit_fg(cs)
    assert isinstance(fg, FineGrayResult) and isinstance(fg, ModelResult)
    assert fg.variance == "crr" and fg.converged
    r = ref("fg_crr")
    r = r[r["case"] == cs.case]
    s = fg.summary.loc[r["term"]]
    close(s["coef"], r["coef"], "fg.coef (crr)", context=cs.case, rtol=RTOL_FIT)
    close(s["se"], r["se"], "fg.se (crr)", context=cs.case, rtol=RTOL_FIT)
    close(s["naive_se"], r["naive_se"], "fg.naive_se (crr invinf)", context=cs.case, rtol=RTOL_FIT)
    v = ref("fg_crr_vcov")
    v = v[v["case"] == cs.case]
    close([fg.cov.loc[a, b] for a, b in zip(v["row"], v["col"])], v["var"], "fg.cov (crr)", context=cs.case,
          rtol=RTOL_FIT)
    f = ref("fg_crr_fit")
    f = f[f["case"] == cs.case].iloc[0]
    close(fg.loglik[["null", "model"]], [f["loglik_null"], f["loglik"]], "fg.loglik (crr)", context=cs.case,
          rtol=RTOL_FIT)
    assert fg.n_obs == int(f["n"])
    # the interval and test of the convention from crr's se (summary.crr)
    z = 1.959963984540054
    close(s["ratio_lower"], np.exp(r["coef"].to_numpy() - z * r["se"].to_numpy()), "fg.ratio_lower", context=cs.case,
          rtol=RTOL_FIT)
    p = ref("fg_crr_predict")
    p = p[p["case"] == cs.case]
    pred = fg.predict_cumulative_incidence(PROFILES[cs.dataset])
    for j in (0, 1):
        pj = p[p["profile"] == j]
        oj = pred[pred["profile"] == j]
        close(oj["time"], pj["time"], "fg.predict time", context=cs.case, rtol=0)
        close(oj["cumulative_incidence"], pj["cif"], "fg.predict (predict.crr)", context=cs.case, rtol=RTOL_FIT)


# ---------------------------------------------------------------------------------------
# Fine-Gray against survival::finegray + coxph
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _cases(FG_CASES, lambda r: r.cengroup == ""))
def test_fine_gray_matches_finegray_coxph(cs):
    """finegray's strata (separate censoring curves) keep only the stratum's own event times
    and are meant for a stratified coxph; crr's cengroup is the reference there instead."""
    fg = _fit_fg(cs, censoring="finegray", variance="robust")
    r = ref("fg_coxph")
    r = r[r["case"] == cs.case]
    s = fg.summary.loc[r["term"]]
    close(s["coef"], r["coef"], "fg.coef (finegray+coxph)", context=cs.case, rtol=RTOL_FIT)
    close(s["se"], r["se"], "fg.robust_se (finegray+coxph)", context=cs.case, rtol=RTOL_FIT)
    close(s["naive_se"], r["naive_se"], "fg.naive_se (finegray+coxph)", context=cs.case, rtol=RTOL_FIT)
    f = ref("fg_coxph_fit")
    f = f[f["case"] == cs.case].iloc[0]
    close(fg.loglik[["null", "model"]], [f["loglik_null"], f["loglik"]], "fg.loglik (coxph)", context=cs.case,
          rtol=RTOL_FIT)
    p = ref("fg_coxph_predict")
    p = p[p["case"] == cs.case]
    times = p.loc[p["profile"] == 0, "time"].to_numpy()
    pred = fg.predict_cumulative_incidence(PROFILES[cs.dataset], times=times)
    for j in (0, 1):
        pj = p[p["profile"] == j].reset_index(drop=True)
        oj = pred[pred["profile"] == j].reset_index(drop=True)
        close(oj["cumulative_incidence"], pj["cif"], "fg.predict (survfit.coxph)", context=cs.case, rtol=RTOL_FIT)
        close(oj["se"], pj["std_err"], "fg.predict se (survfit.coxph)", context=cs.case, rtol=RTOL_FIT)
        close(oj["ci_lower"], pj["lower"], "fg.predict ci_lower", context=cs.case, rtol=RTOL_FIT)
        close(oj["ci_upper"], pj["upper"], "fg.predict ci_upper", context=cs.case, rtol=RTOL_FIT)


def test_default_censoring_weights_reproduce_crr_not_finegray():
    """The two censoring curves differ where censorings tie with events (mgus2: whole
    months): the default (crr's) gives crr's coefficients, "finegray" finegray's."""
    cs = FG_CASES[FG_CASES["case"] == "mgus2_c1"].iloc[0]
    a = _fit_fg(cs).params
    b = _fit_fg(cs, censoring="finegray").params
    crr = ref("fg_crr").query("case == 'mgus2_c1'").set_index("term")["coef"]
    fgc = ref("fg_coxph").query("case == 'mgus2_c1'").set_index("term")["coef"]
    close(a.loc[crr.index], crr, "fg.coef default = crr", rtol=RTOL_FIT)
    close(b.loc[fgc.index], fgc, "fg.coef finegray", rtol=RTOL_FIT)
    assert np.max(np.abs(a - b) / np.abs(b)) > 1e-4


def test_crr_and_robust_variance_are_both_reported():
    cs = FG_CASES[FG_CASES["case"] == "bmt_c1"].iloc[0]
    fg = _fit_fg(cs)
    assert list(fg.summary.columns) == ["coef", "se", "statistic", "p_value", "ci_lower", "ci_upper", "ratio",
                                        "ratio_lower", "ratio_upper", "naive_se", "robust_se"]
    np.testing.assert_allclose(fg.summary["se"], np.sqrt(np.diag(fg.crr_cov)))
    np.testing.assert_allclose(fg.summary["robust_se"], np.sqrt(np.diag(fg.robust_cov)))
    rob = _fit_fg(cs, variance="robust")
    np.testing.assert_allclose(rob.summary["se"], fg.summary["robust_se"])
    assert "robust_se" not in rob.summary.columns
    assert rob.cov.equals(rob.robust_cov)
    # the robust variance on the weighted data is coxph's robust variance
    np.testing.assert_allclose(fg.params, rob.params)


# ---------------------------------------------------------------------------------------
# cause-specific Cox
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case,dataset,time,status,rhs,ties", [
    ("mgus2", "cr_mgus2", "etime", "event", "age + male", "efron"),
    ("bmt", "cr_bmt", "time", "cause", "platelet + age + tcell", "breslow"),
])
def test_cause_specific_cox(case, dataset, time, status, rhs, ties):
    cs = cause_specific_cox(rhs, load_data(dataset), duration=time, event=status, ties=ties)
    assert isinstance(cs, CauseSpecificCoxResult) and list(cs) == [1, 2] and len(cs) == 2
    r = ref("fg_cause_specific")
    r = r[r["case"] == case]
    for cause, rc in r.groupby("cause"):
        fit = cs[int(cause)]
        assert isinstance(fit, CoxResult)
        s = fit.summary.loc[rc["term"]]
        close(s["coef"], rc["coef"], "cause_specific.coef", context=f"{case} {cause}", rtol=RTOL_FIT)
        close(s["se"], rc["se"], "cause_specific.se", context=f"{case} {cause}", rtol=RTOL_FIT)
        close(fit.loglik["model"], rc["loglik"].iloc[0], "cause_specific.loglik", context=case, rtol=RTOL_FIT)
    assert list(cs.summary.index.names) == ["cause", "term"]
    assert cs.summary.loc[(1, "age"), "coef"] == cs[1].summary.loc["age", "coef"]


def test_cause_specific_cox_is_cox_on_the_cause():
    d = load_data("cr_ties")
    cs = cause_specific_cox("x1 + x2", d, duration="time", event="status3", causes=[3])
    one = cox("x1 + x2", d.assign(e=(d["status3"] == 3).astype(int)), duration="time", event="e")
    assert list(cs) == [3]
    pd.testing.assert_frame_equal(pd.DataFrame(cs[3].summary), pd.DataFrame(one.summary))
    with pytest.raises(ValueError, match="not values"):
        cause_specific_cox("x1", d, duration="time", event="status", causes=[4])
    with pytest.raises(TypeError, match="unexpected"):
        cause_specific_cox("x1", d, duration="time", event="status", bogus=1)


# ---------------------------------------------------------------------------------------
# conventions and behaviour
# ---------------------------------------------------------------------------------------
TIES = load_data("cr_ties")


def test_table_at_and_median_columns():
    ci = cumulative_incidence(TIES, "time", "status", group="grp")
    cols = ["group", "cause", "time", "at_risk", "events", "estimate", "se", "ci_lower", "ci_upper"]
    assert list(ci.table.columns) == cols
    assert list(ci.at([3, 5]).columns) == cols
    assert list(ci.median.columns) == ["group", "cause", "n", "events", "median", "ci_lower", "ci_upper"]
    assert ci.causes == [1, 2] and ci.levels == ["A", "B"]
    # one row per group, cause and event time of the group (any cause)
    for g, sub in TIES.groupby("grp"):
        ev_times = np.unique(sub.loc[sub["status"] > 0, "time"])
        for c in (1, 2):
            rows = ci.table[(ci.table["group"] == g) & (ci.table["cause"] == c)]
            np.testing.assert_array_equal(rows["time"], ev_times)
    assert ci.table["at_risk"].dtype == np.int64


def test_curves_add_up_with_all_cause_kaplan_meier():
    """sum_k F_k(t) = 1 - S(t), S the Kaplan-Meier of any event; with one cause F = 1 - KM."""
    ci = cumulative_incidence(TIES, "time", "status3")
    km = kaplan_meier(TIES.assign(e=(TIES["status3"] > 0).astype(int)), "time", "e")
    t = km.table["time"].to_numpy()
    total = ci.at(t).groupby("time")["estimate"].sum().to_numpy()
    np.testing.assert_allclose(total, 1 - km.table["survival"].to_numpy(), rtol=1e-12)
    one = cumulative_incidence(TIES.assign(e=(TIES["status"] > 0).astype(int)), "time", "e")
    np.testing.assert_allclose(one.at(t)["estimate"], 1 - km.table["survival"], rtol=1e-12)


def test_at_before_first_event_and_beyond_follow_up():
    ci = cumulative_incidence(TIES, "time", "status", group="grp")
    a = ci.at([0.5, 9.5])
    first = a[a["time"] == 0.5]
    assert (first[["estimate", "se", "ci_lower", "ci_upper"]].to_numpy() == 0).all()
    assert (first["at_risk"] == [12, 12, 13, 13]).all()
    late = a[(a["time"] == 9.5) & (a["group"] == "A")]  # group A ends at 8
    assert late["estimate"].isna().all()
    ext = ci.at([9.5], extend=True)
    assert ext.loc[ext["group"] == "A", "estimate"].notna().all()
    # events since the previous time asked for
    b = ci.at([2, 4, 10])
    b1 = b[(b["group"] == "B") & (b["cause"] == 1)]
    assert b1["events"].tolist() == [2, 1, 3]


def test_median_rule():
    # F1 = 1/4, 1/2 (exactly, t = 2 to 4), then 3/4: median (2 + 4) / 2 = 3
    d = pd.DataFrame({"t": [1, 2, 4, 5], "s": [1, 1, 1, 1]})
    with pytest.warns(UserWarning, match="no row has the censoring value"):
        med = cumulative_incidence(d, "t", "s").median
    assert med["median"].iloc[0] == 3.0
    # a cause whose incidence stays below 0.5 has no median
    d = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "s": [1, 2, 2, 1, 2, 0]})
    med = cumulative_incidence(d, "t", "s").median.set_index("cause")
    assert np.isnan(med.loc[1, "median"]) and med.loc[2, "median"] == 5.0
    # limits: the same rule on the limit curves
    ci = cumulative_incidence(TIES, "time", "status")
    row = ci.median.set_index("cause").loc[1]
    tab = ci.table[ci.table["cause"] == 1]
    first = lambda v: tab["time"][v.to_numpy() >= 0.5].min() if (v >= 0.5).any() else np.nan  # noqa: E731
    assert row["median"] == first(tab["estimate"])
    assert row["ci_lower"] == first(tab["ci_upper"])
    assert row["ci_upper"] == first(tab["ci_lower"]) or (np.isnan(row["ci_upper"]) and np.isnan(first(tab["ci_lower"])))


def test_status_labels_and_censor_value():
    d = load_data("cr_transplant")
    ci = cumulative_incidence(d, "futime", "event", censor="censored")
    assert ci.causes == ["death", "ltx", "withdraw"]
    # categorical status: the categories' order
    cat = d.assign(event=pd.Categorical(d["event"], ["censored", "withdraw", "ltx", "death"]))
    assert cumulative_incidence(cat, "futime", "event", censor="censored").causes == ["withdraw", "ltx", "death"]
    with pytest.raises(DataValidationError, match="censor="):
        cumulative_incidence(d, "futime", "event")  # the default censor=0 is not a label of the column
    with pytest.warns(UserWarning, match="no row has the censoring value"):
        cumulative_incidence(TIES.assign(s=TIES["status"] + 1), "time", "s")


def test_bad_input_errors():
    with pytest.raises(DataValidationError, match="missing") as err:
        cumulative_incidence(TIES.assign(time=TIES["time"].where(TIES.index != 3)), "time", "status")
    assert "row 4" in str(err.value)
    ci = cumulative_incidence(TIES.assign(time=TIES["time"].where(TIES.index != 3)), "time", "status", dropna=True)
    assert ci.n_dropped == 1
    with pytest.raises(DataValidationError, match="duration must be >= 0"):
        cumulative_incidence(TIES.assign(time=-TIES["time"]), "time", "status")
    with pytest.raises(DataValidationError, match="not found"):
        cumulative_incidence(TIES, "time", "nope")
    with pytest.raises(ValueError, match="variance='jackknife'"):
        cumulative_incidence(TIES, "time", "status", entry="entry")
    with pytest.raises(ValueError, match="no event"):
        cumulative_incidence(TIES.assign(s=0), "time", "s")
    with pytest.raises(ValueError, match="conf_type"):
        cumulative_incidence(TIES, "time", "status", conf_type="logit-ish")
    with pytest.warns(UserWarning, match="Gray's test is not computed"):
        ci = cumulative_incidence(TIES, "time", "status", group="grp", entry="entry", variance="jackknife")
    assert ci.test is None


def test_plot_returns_axes():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    ci = cumulative_incidence(TIES, "time", "status", group="grp")
    assert ci.plot(ax) is ax
    assert len(ax.get_lines()) == 4
    ax2 = Figure().add_subplot()
    assert ci.plot(ax2, causes=[1], ci=False) is ax2 and len(ax2.get_lines()) == 2
    with pytest.raises(ValueError, match="not among"):
        ci.plot(ax2, causes=[7])
    fg = fine_gray("x1 + x2", TIES, duration="time", event="status")
    ax3 = Figure().add_subplot()
    assert fg.plot(ax3) is ax3
    assert "FineGrayResult" in repr(fg) and "CumulativeIncidenceResult" in repr(ci)


def test_fine_gray_convention_and_errors():
    fg = fine_gray("x1 + x2", TIES, duration="time", event="status", cause=2)
    assert fg.cause == 2 and fg.causes == [1, 2]
    assert (fg.n_obs, fg.n_events, fg.n_competing, fg.n_censored) == (25, 7, 11, 7)
    pd.testing.assert_series_equal(fg.params, fg.summary["coef"])
    assert list(fg.conf_int().columns) == ["ci_lower", "ci_upper"]
    assert fg.cov.index.tolist() == ["x1", "x2"]
    with pytest.raises(DataValidationError, match="cause=3"):
        fine_gray("x1", TIES, duration="time", event="status", cause=3)
    with pytest.raises(ValueError, match="variance='crr' has no weights"):
        fine_gray("x1", TIES.assign(w=1.5), duration="time", event="status", weights="w", variance="crr")
    auto = fine_gray("x1", TIES.assign(w=1.5), duration="time", event="status", weights="w")
    assert auto.variance == "robust" and auto.crr_cov is None
    with pytest.raises(ValueError, match="no covariates"):
        fine_gray("1", TIES, duration="time", event="status")
    miss = TIES.assign(x1=TIES["x1"].where(TIES.index != 0))
    with pytest.raises(DataValidationError, match="x1"):
        fine_gray("x1", miss, duration="time", event="status")
    assert fine_gray("x1", miss, duration="time", event="status", dropna=True).n_dropped == 1


def test_fine_gray_without_competing_events_is_cox():
    """No competing events: the subdistribution hazard is the hazard, Fine-Gray is Cox."""
    d = TIES.assign(s=np.where(TIES["status"] == 2, 0, TIES["status"]))
    fg = fine_gray("x1 + x2", d, duration="time", event="s", variance="robust")
    c = cox("x1 + x2", d, duration="time", event="s", ties="breslow")
    np.testing.assert_allclose(fg.params, c.params, rtol=1e-10)
    np.testing.assert_allclose(fg.summary["naive_se"], c.summary["se"], rtol=1e-10)


def test_fine_gray_predictions_grid():
    fg = fine_gray("x1 + x2", TIES, duration="time", event="status")
    p = fg.predict_cumulative_incidence({"x1": 0.0, "x2": 1}, times=[0.5, 3, 20])
    assert list(p.columns) == ["profile", "time", "cumulative_incidence", "se", "ci_lower", "ci_upper"]
    assert p["cumulative_incidence"].iloc[0] == 0 and np.isnan(p["cumulative_incidence"].iloc[2])
    assert 0 < p["ci_lower"].iloc[1] < p["cumulative_incidence"].iloc[1] < p["ci_upper"].iloc[1] < 1


def test_fine_gray_relabels_cox_warnings():
    d = TIES.assign(x3=TIES["x1"] * 2)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fine_gray("x1 + x3", d, duration="time", event="status", variance="robust")
    messages = " ".join(str(w.message) for w in rec)
    assert "x3" in messages and "fg_x" not in messages


# ---------------------------------------------------------------------------------------
# simulation with known truth
# ---------------------------------------------------------------------------------------
SIM_REPS = int(os.environ.get("KO_SIM_REPS", "800"))


def _coverage_band(reps: int, level: float = 0.95) -> float:
    return max(0.02, 3.5 * np.sqrt(level * (1 - level) / reps))


@pytest.mark.slow
@pytest.mark.simulation
def test_aalen_johansen_recovers_truth_and_covers():
    """Exponential cause-specific hazards 0.08 (cause 1) and 0.04 (cause 2) per day,
    independent uniform(0, 40) censoring, 150 subjects: at day 10 the true cumulative
    incidence of cause 1 is 0.08 / 0.12 (1 - exp(-1.2)) = 0.466. The estimate is unbiased
    and its 95% log-log intervals cover at about 95% with either variance, while 1 - KM
    (cause 2 treated as censoring) estimates 1 - exp(-0.8) = 0.551: biased upward. Two
    groups with the same hazards: Gray's test rejects at about 5%."""
    reps = max(SIM_REPS // 2, 50)
    rng = np.random.default_rng(20261201)
    l1, l2, t0, n = 0.08, 0.04, 10.0, 150
    truth = l1 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * t0))
    est, cov_g, cov_j, one_minus_km, reject = [], [], [], [], []
    for _ in range(reps):
        t = rng.exponential(1 / (l1 + l2), n)
        cause = np.where(rng.uniform(size=n) < l1 / (l1 + l2), 1, 2)
        c = rng.uniform(0, 40, n)
        d = pd.DataFrame({"t": np.minimum(t, c), "s": np.where(t <= c, cause, 0), "g": rng.integers(0, 2, n)})
        ci = cumulative_incidence(d, "t", "s", group="g")
        reject.append(ci.test.loc[1, "p_value"] < 0.05)
        for variance, store in (("cuminc", cov_g), ("jackknife", cov_j)):
            a = cumulative_incidence(d, "t", "s", variance=variance).at([t0])
            a = a[a["cause"] == 1].iloc[0]
            store.append(a["ci_lower"] <= truth <= a["ci_upper"])
            if variance == "cuminc":
                est.append(a["estimate"])
        km = kaplan_meier(d.assign(e=(d["s"] == 1).astype(int)), "t", "e").at([t0])["survival"].iloc[0]
        one_minus_km.append(1 - km)
    est = np.array(est)
    assert abs(est.mean() - truth) < 4 * est.std() / np.sqrt(reps) + 0.003, f"mean {est.mean():.4f}, truth {truth:.4f}"
    band = _coverage_band(reps)
    assert abs(np.mean(cov_g) - 0.95) <= band, f"cuminc-variance coverage {np.mean(cov_g):.3f} over {reps}"
    assert abs(np.mean(cov_j) - 0.95) <= band, f"jackknife coverage {np.mean(cov_j):.3f} over {reps}"
    bias = np.mean(one_minus_km) - truth
    assert bias > 0.05, f"1 - KM should overestimate the cumulative incidence (bias {bias:.3f})"
    assert abs(np.mean(one_minus_km) - (1 - np.exp(-l1 * t0))) < 0.01
    assert abs(np.mean(reject) - 0.05) <= _coverage_band(reps, 0.05) + 0.01, f"Gray's test size {np.mean(reject):.3f}"


def simulate_fine_gray(rng, n: int, beta1=(0.5, -0.5), beta2=(-0.5, 0.5), p: float = 0.66, cmax: float = 3.0):
    """Fine & Gray's (1999, section 5) design: P(cause 1 | z) = 1 - (1 - p)^exp(z'b1),
    F1(t | z) = 1 - (1 - p (1 - exp(-t)))^exp(z'b1) (a proportional subdistribution hazards
    model with subdistribution hazard ratios exp(b1)); given cause 2 the time is exponential
    with rate exp(z'b2); uniform(0, cmax) censoring. z1 ~ Bernoulli(0.5), z2 ~ N(0, 1)."""
    z1 = rng.binomial(1, 0.5, n).astype(float)
    z2 = rng.normal(size=n)
    eta1 = beta1[0] * z1 + beta1[1] * z2
    eta2 = beta2[0] * z1 + beta2[1] * z2
    p1 = 1 - (1 - p) ** np.exp(eta1)
    is1 = rng.uniform(size=n) < p1
    u = rng.uniform(size=n)
    t1 = -np.log(1 - (1 - (1 - u * p1) ** np.exp(-eta1)) / p)  # F1(t | z, cause 1) = u
    t2 = rng.exponential(1 / np.exp(eta2))
    t = np.where(is1, t1, t2)
    c = rng.uniform(0, cmax, n)
    return pd.DataFrame({"t": np.minimum(t, c), "status": np.where(t <= c, np.where(is1, 1, 2), 0), "z1": z1, "z2": z2})


@pytest.mark.slow
@pytest.mark.simulation
def test_fine_gray_recovers_subdistribution_hazard_ratio():
    """Fine & Gray's design with b1 = (0.5, -0.5), 200 subjects: the estimates are about
    unbiased and the 95% intervals (crr's variance, and coxph's robust one) cover b1 at
    about 95%; a cause-specific Cox model of cause 1 does not estimate b1."""
    reps = max(SIM_REPS // 4, 50)
    rng = np.random.default_rng(19990601)
    beta = np.array([0.5, -0.5])
    est, cov, cov_rob = [], [], []
    for _ in range(reps):
        d = simulate_fine_gray(rng, 200)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            fg = fine_gray("z1 + z2", d, duration="t", event="status")
        s = fg.summary.loc[["z1", "z2"]]
        est.append(s["coef"].to_numpy())
        cov.append((s["ci_lower"].to_numpy() <= beta) & (beta <= s["ci_upper"].to_numpy()))
        half = 1.959963984540054 * s["robust_se"].to_numpy()
        cov_rob.append((s["coef"].to_numpy() - half <= beta) & (beta <= s["coef"].to_numpy() + half))
    est = np.array(est)
    se_mean = est.std(axis=0) / np.sqrt(reps)
    assert np.all(np.abs(est.mean(axis=0) - beta) < 4 * se_mean + 0.03), f"mean {est.mean(axis=0)}"
    band = _coverage_band(reps)
    for name, c in (("crr", cov), ("robust", cov_rob)):
        c = np.mean(c, axis=0)
        assert np.all(np.abs(c - 0.95) <= band), f"{name} coverage {c} over {reps} replicates"
    # the cause-specific hazard ratio is another quantity: far from b1 here
    big = simulate_fine_gray(np.random.default_rng(7), 5000)
    csh = cause_specific_cox("z1 + z2", big, duration="t", event="status", causes=[1])[1].params.to_numpy()
    fgb = fine_gray("z1 + z2", big, duration="t", event="status").params.to_numpy()
    assert np.all(np.abs(fgb - beta) < 0.1)
    assert np.max(np.abs(csh - beta)) > 0.1
