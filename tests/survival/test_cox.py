"""Cox model against R's coxph, cox.zph, survfit.coxph and basehaz (make_survival_cox.R).

Every case of ``cox_cases.csv`` is fitted here with the options R used; coefficients,
standard errors (model-based and robust), variance matrices, log likelihoods, tests,
proportional-hazards tests, scaled Schoenfeld residuals, predicted curves, baseline
hazards, score and dfbeta residuals and concordance counts must agree to a relative
1e-6 (1e-4 where stated).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.survival import cox

from survival_helpers import close, load_data, ref  # tests/survival/survival_helpers.py

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
CASES = pd.read_csv(R_DIR / "cox_cases.csv", dtype=str, keep_default_na=False)
TIGHT = 1e-6


def _py(name: str) -> str:
    return name.replace(".", "_")


def _cases(frame=CASES):
    return [pytest.param(row, id=row.case) for row in frame.itertuples(index=False)]


@lru_cache(maxsize=None)
def case_data(case: str) -> pd.DataFrame:
    cs = CASES.set_index("case").loc[case]
    data = load_data(cs.dataset, cs.status, cs.event_value)
    return data.rename(columns=_py)


@lru_cache(maxsize=None)
def fit_case(case: str):
    cs = CASES.set_index("case").loc[case]
    data = case_data(case)
    robust = {"TRUE": True, "FALSE": False}.get(cs.robust)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the singular case warns, as R does
        return cox(
            cs.py_formula, data, duration=_py(cs.time), event="_event", entry=_py(cs.entry) or None,
            strata=[_py(s) for s in cs.strata.split(";")] if cs.strata else None,
            cluster=_py(cs.cluster) or None, weights=_py(cs.weights) or None, ties=cs.ties, robust=robust,
            dropna=True,
        )


def _rows(name: str, case: str) -> pd.DataFrame:
    r = ref(name)
    return r[r["case"] == case].reset_index(drop=True)


def profile_of(cs) -> pd.DataFrame:
    data = case_data(cs.case)
    values = {}
    for kv in cs.profile.split(";"):
        key, val = kv.split("=")
        key = _py(key)
        values[key] = float(val) if pd.api.types.is_numeric_dtype(data[key]) else val
    return pd.DataFrame([values])


# ---------------------------------------------------------------------------------------
# coefficients, standard errors, variance matrices
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _cases())
def test_coefficients_match_coxph(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_coef", cs.case)
    s = fit.summary.loc[r["py_term"]]
    redundant = r["coef"].isna().to_numpy()
    if redundant.any():  # R: coef NA, se 0; here every column of a redundant row is NaN
        assert s[redundant].isna().all().all()
        r, s = r[~redundant], s[~redundant]
    close(s["coef"], r["coef"], "cox.coef", context=cs.case, rtol=TIGHT)
    if r["robust_se"].notna().any():  # se is the one inference uses (robust); naive_se the model-based
        close(s["se"], r["robust_se"], "cox.robust_se", context=cs.case, rtol=TIGHT)
        close(s["naive_se"], r["se"], "cox.se", context=cs.case, rtol=TIGHT)
    else:
        close(s["se"], r["se"], "cox.se", context=cs.case, rtol=TIGHT)
        assert "naive_se" not in s.columns
    close(s["statistic"], r["z"], "cox.z", context=cs.case, rtol=TIGHT)
    close(s["p_value"], r["p"], "cox.p_value", context=cs.case, rtol=TIGHT)
    close(s["ratio"], r["hr"], "cox.hr", context=cs.case, rtol=TIGHT)
    close(s["ratio_lower"], r["lower"], "cox.hr_lower", context=cs.case, rtol=TIGHT)
    close(s["ratio_upper"], r["upper"], "cox.hr_upper", context=cs.case, rtol=TIGHT)
    close(fit.means.loc[r["py_term"]], r["mean"], "cox.means", context=cs.case, rtol=1e-12)


@pytest.mark.parametrize("cs", _cases())
def test_variance_matrices_match_coxph(cs):
    fit = fit_case(cs.case)
    order = list(_rows("cox_coef", cs.case)["py_term"])
    r = _rows("cox_vcov", cs.case)
    p = len(order)
    for kind, ours in (("var", fit.cov), ("naive", fit.naive_cov)):
        rk = r[r["kind"] == kind]
        if rk.empty:
            assert not fit.robust
            continue
        R = np.zeros((p, p))
        R[rk["i"] - 1, rk["j"] - 1] = rk["value"]
        mine = ours.loc[order, order].to_numpy()
        keep = np.diag(R) != 0  # a redundant column has zero variance in R and NaN coef here
        close(mine[np.ix_(keep, keep)], R[np.ix_(keep, keep)], f"cox.vcov {kind}", context=cs.case, rtol=TIGHT)


@pytest.mark.parametrize("cs", _cases())
def test_loglik_and_tests_match_summary_coxph(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_fit", cs.case).iloc[0]
    assert fit.n_obs == r["n"] and fit.n_events == r["nevent"]
    assert fit.iterations == r["iter"]
    assert fit.converged
    assert fit.robust == (str(r["robust"]).upper() == "TRUE")
    assert fit.n_clusters == r["n_clusters"]
    close(fit.loglik["null"], r["loglik0"], "cox.loglik null", context=cs.case, rtol=1e-10)
    close(fit.loglik["model"], r["loglik1"], "cox.loglik model", context=cs.case, rtol=1e-10)
    t = fit.tests
    for ours, theirs in (("likelihood_ratio", "lr"), ("wald", "wald"), ("score", "score")):
        close(t.loc[ours, "statistic"], r[theirs], f"cox.test {ours}", context=cs.case, rtol=TIGHT)
        assert t.loc[ours, "df"] == r[f"{theirs}_df"]
        close(t.loc[ours, "p_value"], r[f"{theirs}_p"], f"cox.test {ours} p", context=cs.case, rtol=TIGHT)
    if fit.robust:
        close(t.loc["robust_score", "statistic"], r["rscore"], "cox.test robust_score", context=cs.case, rtol=TIGHT)
        close(t.loc["robust_score", "p_value"], r["rscore_p"], "cox.test robust_score p", context=cs.case,
              rtol=TIGHT)
    else:
        assert "robust_score" not in t.index


@pytest.mark.parametrize("cs", _cases())
def test_concordance_matches_coxph(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_fit", cs.case).iloc[0]
    c = fit.concordance
    for key in ("concordant", "discordant", "tied_x", "tied_y", "tied_xy", "concordance"):
        close(c[key], r[key], f"cox.concordance {key}", context=cs.case, rtol=TIGHT)


# ---------------------------------------------------------------------------------------
# cox.zph
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _cases())
def test_ph_test_matches_cox_zph(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_zph", cs.case)
    coef = _rows("cox_coef", cs.case)
    r_to_py = dict(zip(coef["r_term"], coef["py_term"]))
    for (transform, terms), rr in r.groupby(["transform", "terms"], sort=False):
        terms = str(terms).upper() == "TRUE"
        table = fit.ph_test(transform=transform, terms=terms).table
        context = f"{cs.case} {transform} terms={terms}"
        assert len(table) == len(rr), context
        if terms:  # one row per formula term: patsy puts categorical terms first
            names = [x.replace("factor(", "C(").replace(".", "_") for x in rr["row"].iloc[:-1]]
        else:  # one row per column: R names them by coefficient
            names = [r_to_py[x] for x in rr["row"].iloc[:-1]]
        assert sorted(table.index[:-1]) == sorted(names), context
        table = table.loc[names + ["GLOBAL"]]
        close(table["chisq"], rr["chisq"], f"zph.chisq {transform}", context=context, rtol=TIGHT)
        assert list(table["df"]) == list(rr["df"]), context
        close(table["p_value"], rr["p"], f"zph.p {transform}", context=context, rtol=TIGHT)


@pytest.mark.parametrize("case", sorted(ref("cox_zph_y")["case"].unique()))
def test_ph_residuals_match_cox_zph_y(case):
    fit = fit_case(case)
    r = _rows("cox_zph_y", case)
    res = fit.ph_test().residuals
    terms = list(r["term"].unique())
    wide = r.pivot(index="event", columns="term", values="y")[terms]
    times = r.drop_duplicates("event").set_index("event").loc[wide.index, ["time", "x"]]
    assert len(res) == len(wide)
    close(res["time"], times["time"], "zph.y time", context=case, rtol=TIGHT)
    close(res["g"], times["x"], "zph.y transformed time", context=case, rtol=TIGHT)
    # within tied event times the order of rows may differ: compare sorted by (time, value)
    ours = res[[t.replace("factor(", "C(").replace(".", "_") for t in terms]].to_numpy()
    theirs = wide.to_numpy()
    key_o = np.lexsort((np.round(ours[:, 0], 8), res["time"].to_numpy()))
    key_t = np.lexsort((np.round(theirs[:, 0], 8), times["time"].to_numpy()))
    close(ours[key_o], theirs[key_t], "zph.y scaled Schoenfeld", context=case, rtol=TIGHT)


# ---------------------------------------------------------------------------------------
# survfit.coxph and basehaz
# ---------------------------------------------------------------------------------------
def _strata_label(value) -> str:
    return str(value)


@pytest.mark.parametrize("cs", _cases())
def test_predicted_survival_matches_survfit_coxph(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_survfit", cs.case)
    prof = profile_of(cs)
    for conf_type, lo, hi in (("log", "lower_log", "upper_log"), ("log-log", "lower_loglog", "upper_loglog")):
        ours = fit.predict_survival(prof, conf_type=conf_type)
        assert len(ours) == len(r), cs.case
        if fit.strata_columns:
            r_str = r["strata"].astype(str).tolist()
            if len(fit.strata_columns) == 1:  # R writes "prior=0", or just the level for a factor
                r_str = [x.split("=", 1)[1] if x.startswith(fit.strata_columns[0] + "=") else x for x in r_str]
            assert [str(v) for v in ours["stratum"]] == r_str
        ctx = f"{cs.case} {conf_type}"
        close(ours["time"], r["time"], "survfit.time", context=ctx, rtol=1e-12)
        close(ours["n_risk"], r["n.risk"], "survfit.n_risk", context=ctx, rtol=1e-12)
        close(ours["n_event"], r["n.event"], "survfit.n_event", context=ctx, rtol=1e-12)
        close(ours["n_censor"], r["n.censor"], "survfit.n_censor", context=ctx, rtol=1e-10)
        close(ours["cumhaz"], r["cumhaz"], "survfit.cumhaz", context=ctx, rtol=TIGHT)
        close(ours["survival"], r["surv"], "survfit.surv", context=ctx, rtol=TIGHT)
        close(ours["se"], r["std.err"], "survfit.std.err", context=ctx, rtol=TIGHT)
        close(ours["ci_lower"], r[lo], f"survfit.lower {conf_type}", context=ctx, rtol=TIGHT)
        close(ours["ci_upper"], r[hi], f"survfit.upper {conf_type}", context=ctx, rtol=TIGHT)


@pytest.mark.parametrize("cs", _cases())
def test_baseline_hazard_matches_basehaz(cs):
    fit = fit_case(cs.case)
    r = _rows("cox_basehaz", cs.case)
    for centered in (True, False):
        rr = r[r["centered"].astype(str).str.upper() == str(centered).upper()]
        bh = fit.baseline_hazard(centered=centered)
        close(bh["time"], rr["time"], "basehaz.time", context=cs.case, rtol=1e-12)
        close(bh["cumhaz"], rr["hazard"], f"basehaz centered={centered}", context=cs.case, rtol=TIGHT)


@pytest.mark.parametrize("case", sorted(ref("cox_resid")["case"].unique()))
def test_score_and_dfbeta_residuals_match(case):
    fit = fit_case(case)
    r = _rows("cox_resid", case)
    order = list(_rows("cox_coef", case)["py_term"])
    for kind, col in (("score", "score"), ("dfbeta", "dfbeta")):
        ours = fit.residuals(kind)[order]
        wide = r.pivot(index="row", columns="column", values=col)
        assert list(ours.index + 1) == list(wide.index)
        close(ours.to_numpy(), wide.to_numpy(), f"residuals {kind}", context=case, rtol=1e-6)
