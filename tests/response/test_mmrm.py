"""mmrm() against R (tests/fixtures/r/make_mmrm.R): nlme::gls for seven covariance
structures (REML and ML), emmeans on the gls fits (Satterthwaite, df.error, asymptotic;
weights; Holm, Bonferroni, Dunnett), and the compound-symmetry model as the equivalent
random-intercept lmer (lmerTest Satterthwaite, pbkrtest Kenward-Roger with expected
information: df, adjusted covariance, type III F tests). Orthodont (27 subjects, 3 visits)
and dietox (72 pigs, 5 visits, 3 arms), each with some visits removed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import ConvergenceWarning
from analysis.problems import DataValidationError
from analysis.response import mmrm
from analysis.response._mmrm_fit import MMRMData, MMRMEngine
from analysis.response._mmrm_covariance import structure

from mmrm_helpers import DATASETS, RTOL_DF, RTOL_EST, close, load, py_term, ref, ref_series

pytestmark = [
    pytest.mark.filterwarnings("error:.*is deprecated and will be removed in the next release:DeprecationWarning"),
    pytest.mark.filterwarnings("error::analysis.ConvergenceWarning"),
]

GLS_STRUCTURES = ("us", "cs", "csh", "ar1", "ar1h", "toep", "toeph")
_FITS: dict = {}


def fit_of(dn: str, cov: str, *, reml: bool = True, df: str = "satterthwaite"):
    key = (dn, cov, reml, df)
    if key not in _FITS:
        formula = DATASETS[dn][0]
        _FITS[key] = mmrm(formula, load(dn), subject="id", visit="visit", covariance=cov, reml=reml, df=df)
    return _FITS[key]


def _coef_ref(case: str, quantity: str) -> pd.Series:
    s = ref_series(case, quantity)
    s.index = [py_term(t) for t in s.index]
    return s


# ------------------------------------------------------------------------------- gls fits
@pytest.mark.parametrize("dn", list(DATASETS))
@pytest.mark.parametrize("cov", GLS_STRUCTURES)
@pytest.mark.parametrize("method", ["reml", "ml"])
def test_gls_estimates_se_loglik_covariance(dn, cov, method):
    case = f"{dn}_{cov}_{method}"
    fit = fit_of(dn, cov, reml=method == "reml")
    assert fit.converged
    coef = _coef_ref(case, "coef")
    se = _coef_ref(case, "se")
    # relative to the estimate, or to its standard error for estimates near zero (R's
    # optimum, 3e-8 below ours in REML log-likelihood on dietox, moves them by ~1e-5 SE)
    close(fit.params.loc[coef.index], coef, f"{case} coef", rtol=RTOL_EST, atol=RTOL_EST * se.loc[coef.index].to_numpy())
    # ML: R's values have nlme's N/(N-p) rescaling undone in make_mmrm.R
    close(fit.summary.loc[se.index, "se"], se, f"{case} se", rtol=RTOL_EST)
    close([fit.loglik], [ref_series(case, "loglik").iloc[0]], f"{case} loglik", rtol=1e-8)
    sig = ref(case, "sigma")
    ours = [fit.covariance.loc[a, b] for a, b in zip(sig["term"], sig["level"])]
    close(ours, sig["value"], f"{case} covariance", rtol=RTOL_EST)


def test_ml_se_is_not_rescaled():
    fit = fit_of("orthodont", "us", reml=False)
    n, p = fit.n_obs, len(fit.params)
    # nlme's vcov for ML is ours times N / (N - p)
    close(fit.summary["se"] * np.sqrt(n / (n - p)),
          _coef_ref("orthodont_us_ml", "se").loc[fit.params.index] * np.sqrt(n / (n - p)), "ML se", rtol=RTOL_EST)


# ------------------------------------------------------------------------------- emmeans on gls
@pytest.mark.parametrize("dn", list(DATASETS))
@pytest.mark.parametrize("cov", GLS_STRUCTURES)
def test_emmeans_satterthwaite(dn, cov):
    case = f"{dn}_{cov}_reml"
    arm = DATASETS[dn][1]
    fit = fit_of(dn, cov)
    ls = fit.lsmeans(arm, by="visit")
    assert list(ls.columns) == [arm, "visit", "estimate", "se", "df", "ci_lower", "ci_upper"]
    labels = (ls[arm].astype(str) + " " + ls["visit"].astype(str)).tolist()
    for q, col, tol in (("emmean", "estimate", RTOL_EST), ("SE", "se", RTOL_EST), ("df", "df", RTOL_DF)):
        r = ref_series(case, f"emm_satterthwaite_{q}")
        close(ls[col], r.loc[labels], f"{case} lsmeans {col}", rtol=tol)
    ct = fit.contrast(arm, by="visit")
    labels = (ct["contrast"] + " " + ct["visit"].astype(str)).tolist()
    for q, col, tol, atol in (("estimate", "estimate", RTOL_EST, 1e-8), ("SE", "se", RTOL_EST, 0),
                              ("df", "df", RTOL_DF, 0), ("t.ratio", "statistic", RTOL_EST, 1e-6),
                              ("p.value", "p_value", 1e-3, 1e-6), ("lower.CL", "ci_lower", RTOL_EST, 1e-5),
                              ("upper.CL", "ci_upper", RTOL_EST, 1e-5)):
        r = ref_series(case, f"con_satterthwaite_{q}")
        close(ct[col], r.loc[labels], f"{case} contrast {col}", rtol=tol, atol=atol)


@pytest.mark.parametrize("dn", list(DATASETS))
def test_emmeans_asymptotic_and_residual(dn):
    case = f"{dn}_us_reml"
    arm = DATASETS[dn][1]
    fit = fit_of(dn, "us", df="asymptotic")
    assert "df" not in fit.summary.columns  # z tests
    ct = fit.contrast(arm, by="visit")
    labels = (ct["contrast"] + " " + ct["visit"].astype(str)).tolist()
    assert np.isinf(ct["df"]).all()
    for q, col in (("SE", "se"), ("t.ratio", "statistic"), ("lower.CL", "ci_lower"), ("upper.CL", "ci_upper")):
        close(ct[col], ref_series(case, f"con_asymptotic_{q}").loc[labels], f"{case} z {col}", rtol=RTOL_EST,
              atol=1e-6)
    close(ct["p_value"], ref_series(case, "con_asymptotic_p.value").loc[labels], "z p", rtol=1e-3, atol=1e-8)
    res = fit_of(dn, "us", df="residual")
    # residual df is N - p (SAS DDFM=RESIDUAL); emmeans' df.error for gls also subtracts
    # the correlation and variance parameters (all but sigma)
    k = res.covariance_parameters.size - 1
    assert (res.summary["df"] == res.n_obs - len(res.params)).all()
    close(ref_series(case, "con_df.error_df"), np.full(len(labels), res.n_obs - len(res.params) - k), "df.error",
          rtol=0)


@pytest.mark.parametrize("dn", list(DATASETS))
@pytest.mark.parametrize("weights", ["equal", "proportional"])
def test_lsmeans_weights(dn, weights):
    case = f"{dn}_cs_reml"
    arm = DATASETS[dn][1]
    ls = fit_of(dn, "cs").lsmeans(arm, weights=weights)
    labels = ls[arm].astype(str).tolist()
    for q, col, tol in (("emmean", "estimate", RTOL_EST), ("SE", "se", RTOL_EST), ("df", "df", RTOL_DF)):
        close(ls[col], ref_series(case, f"emm_marg_{weights}_{q}").loc[labels], f"{case} {weights} {col}", rtol=tol)


# ------------------------------------------------------------------------------- lmer equivalence (cs)
@pytest.mark.parametrize("dn", list(DATASETS))
def test_cs_equals_random_intercept_lmer(dn):
    case = f"{dn}_lmer"
    fit = fit_of(dn, "cs")
    close([fit.loglik], [ref_series(case, "loglik").iloc[0]], "loglik", rtol=1e-8)
    close(fit.covariance_parameters.to_numpy(),
          [ref_series(case, "var_id").iloc[0], ref_series(case, "var_resid").iloc[0]], "variances", rtol=RTOL_EST)
    # lmerTest Satterthwaite, single coefficients
    se, df = _coef_ref(case, "sat_se"), _coef_ref(case, "sat_df")
    close(fit.summary.loc[se.index, "se"], se, "sat se", rtol=RTOL_EST)
    close(fit.summary.loc[df.index, "df"], df, "sat df", rtol=RTOL_DF)


@pytest.mark.parametrize("dn", list(DATASETS))
def test_kenward_roger_expected_matches_pbkrtest(dn):
    case = f"{dn}_lmer"
    arm = DATASETS[dn][1]
    fit = fit_of(dn, "cs", df="kenward-roger-expected")
    se, df = _coef_ref(case, "kr_se"), _coef_ref(case, "kr_df")
    close(fit.summary.loc[se.index, "se"], se, "KR se", rtol=RTOL_EST)
    close(fit.summary.loc[df.index, "df"], df, "KR df", rtol=RTOL_DF)
    V = ref(case, "kr_vcov")
    ours = [fit.cov.loc[py_term(a), py_term(b)] for a, b in zip(V["term"], V["level"])]
    close(ours, V["value"], "pbkrtest vcovAdj", rtol=RTOL_EST, atol=1e-10)
    ls = fit.lsmeans(arm, by="visit")
    labels = (ls[arm].astype(str) + " " + ls["visit"].astype(str)).tolist()
    close(ls["se"], ref_series(case, "emm_kr_SE").loc[labels], "emmeans KR se", rtol=RTOL_EST)
    close(ls["df"], ref_series(case, "emm_kr_df").loc[labels], "emmeans KR df", rtol=RTOL_DF)
    ct = fit.contrast(arm, by="visit")
    labels = (ct["contrast"] + " " + ct["visit"].astype(str)).tolist()
    close(ct["se"], ref_series(case, "con_kr_SE").loc[labels], "emmeans KR contrast se", rtol=RTOL_EST)
    close(ct["df"], ref_series(case, "con_kr_df").loc[labels], "emmeans KR contrast df", rtol=RTOL_DF)
    an = fit.anova()
    terms = {"Sex": "Sex", "Cu": "Cu", "visit": "visit", "Sex:visit": "Sex:visit", "Cu:visit": "Cu:visit",
             "baseline": "baseline", "Start": "Start"}
    F, ddf, ndf = ref_series(case, "kr_F"), ref_series(case, "kr_dendf"), ref_series(case, "kr_numdf")
    close(an.loc[[terms[t] for t in F.index], "statistic"], F, "KR F", rtol=RTOL_EST)
    close(an.loc[[terms[t] for t in ddf.index], "den_df"], ddf, "KR den df", rtol=RTOL_DF)
    assert an.loc[list(ndf.index), "num_df"].tolist() == ndf.astype(int).tolist()


@pytest.mark.parametrize("dn", list(DATASETS))
def test_satterthwaite_anova_matches_lmertest(dn):
    case = f"{dn}_lmer"
    an = fit_of(dn, "cs").anova()
    F, ddf = ref_series(case, "sat_F"), ref_series(case, "sat_dendf")
    close(an.loc[list(F.index), "statistic"], F, "F", rtol=RTOL_EST)
    # one-df terms agree to rounding; several-df terms depend on the basis of the hypothesis
    # (lmerTest's type III contrasts vs our sum-to-zero grid contrasts): 3e-4 apart here
    close(an.loc[list(ddf.index), "den_df"], ddf, "den df", rtol=RTOL_DF)


def test_kenward_roger_observed_is_default_and_differs_from_expected():
    obs = fit_of("orthodont", "cs", df="kenward-roger")
    exp = fit_of("orthodont", "cs", df="kenward-roger-expected")
    sat = fit_of("orthodont", "cs")
    # one-df Kenward-Roger df is Satterthwaite's with the same information matrix
    close(obs.summary["df"], sat.summary["df"], "KR(observed) = Satterthwaite(observed) for one df", rtol=1e-8)
    assert not np.allclose(obs.summary["df"], exp.summary["df"], rtol=1e-3)
    assert (obs.cov.to_numpy().diagonal() >= obs.cov_unadjusted.to_numpy().diagonal()).all()


# ------------------------------------------------------------------------------- Dunnett, Holm, Bonferroni
@pytest.mark.parametrize("adjust", ["holm", "bonferroni", "dunnett"])
def test_multiplicity_adjustments(adjust):
    from analysis._kernel.marginal import MarginalInputs, contrast_table

    fit = fit_of("dietox", "us")
    case = "dietox_us_reml"
    # emmeans' df.error (N - p - correlation and variance parameters), a whole number as its mvt needs
    df_err = float(ref_series(case, "con_df.error_df").iloc[0])
    inputs = MarginalInputs(fit._mf, fit.params.to_numpy(), fit.cov.to_numpy(), lambda L: np.full(len(L), df_err))
    ct = contrast_table(inputs, "Cu", by="visit", adjust=adjust)
    labels = (ct["contrast"] + " " + ct["visit"].astype(str)).tolist()
    assert labels[0] == "Cu035 - Cu000 week2"
    p = ref_series(case, f"adj_{adjust}_p.value").loc[labels]
    close(ct["p_value"], p, f"{adjust} p", rtol=1e-3, atol=2e-5)
    if adjust == "dunnett":
        q = ref_series(case, "adj_dunnett_quantile")
        half = (ct["ci_upper"] - ct["estimate"]) / ct["se"]
        close(half, q.loc[ct["visit"].astype(str)].to_numpy(), "Dunnett quantile", rtol=1e-4)
    else:
        for q, col in (("lower.CL", "ci_lower"), ("upper.CL", "ci_upper")):
            close(ct[col], ref_series(case, f"adj_{adjust}_{q}").loc[labels], f"{adjust} {col}", rtol=RTOL_EST)


# ------------------------------------------------------------------------------- ante-dependence and nesting
@pytest.mark.parametrize("dn", list(DATASETS))
@pytest.mark.parametrize("cov", ["ad", "adh"])
def test_ante_dependence_against_direct_reml_in_r(dn, cov):
    """make_mmrm.R's own REML fit of ANTE(1) (subject-by-subject likelihood, nlminb + BFGS)
    and numDeriv Satterthwaite df of the treatment differences."""
    case = f"{dn}_{cov}_reml"
    arm = DATASETS[dn][1]
    fit = fit_of(dn, cov)
    close([fit.loglik], [ref_series(case, "loglik").iloc[0]], "loglik", rtol=1e-8)
    coef, se = _coef_ref(case, "coef"), _coef_ref(case, "se")
    close(fit.params.loc[coef.index], coef, "coef", rtol=RTOL_EST, atol=RTOL_EST * se.loc[coef.index].to_numpy())
    close(fit.summary.loc[se.index, "se"], se, "se", rtol=RTOL_EST)
    sig = ref(case, "sigma")
    close([fit.covariance.loc[a, b] for a, b in zip(sig["term"], sig["level"])], sig["value"], "covariance",
          rtol=RTOL_EST)
    ct = fit.contrast(arm, by="visit")
    labels = (ct["contrast"] + " " + ct["visit"].astype(str)).tolist()
    for q, col, tol in (("estimate", "estimate", RTOL_EST), ("SE", "se", RTOL_EST), ("df", "df", RTOL_DF)):
        close(ct[col], ref_series(case, f"con_direct_{q}").loc[labels], f"{case} {col}", rtol=tol, atol=1e-8)


@pytest.mark.parametrize("dn", list(DATASETS))
def test_nested_structures_order_the_likelihood(dn):
    """Nested structures: a larger one's REML maximum is at least the smaller one's (same X)."""
    ll = {c: fit_of(dn, c).loglik for c in ("us", "cs", "csh", "ar1", "ar1h", "toep", "toeph", "ad", "adh")}
    tol = 1e-6
    for small, large in (("ar1", "ad"), ("ad", "adh"), ("ar1h", "adh"), ("adh", "us"), ("cs", "csh"), ("csh", "us"),
                         ("ar1", "toep"), ("toep", "toeph"), ("cs", "toep"), ("toeph", "us"), ("ar1", "ar1h")):
        assert ll[large] >= ll[small] - tol, (small, large, ll[small], ll[large])


def test_adh_with_equal_correlations_reproduces_ar1h_likelihood():
    """Sigma of adh at rho_k = rho is ar1h's: the two likelihoods agree at that point."""
    d = load("orthodont")
    f1 = fit_of("orthodont", "ar1h")
    theta = f1.covariance_parameters.to_numpy()
    T = 3
    adh_theta = np.concatenate([theta[:T], np.repeat(theta[T], T - 1)])
    fit_any = fit_of("orthodont", "adh")
    mf = fit_any._mf
    codes = pd.factorize(mf.data["id"])[0]
    pos = pd.Index(fit_any.visits).get_indexer(mf.data["visit"].astype(object))
    data = MMRMData.build(mf.y.to_numpy(float), mf.X.to_numpy(float), codes, pos)
    ll = MMRMEngine(data, structure("adh", fit_any.visits), reml=True).evaluate(adh_theta).loglik
    close([ll], [f1.loglik], "adh at ar1h", rtol=1e-10)
    assert d["id"].nunique() == fit_any.n_subjects


# ------------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("cov", ["us", "csh", "ar1h", "toeph", "adh"])
@pytest.mark.parametrize("reml", [True, False])
def test_analytic_gradient(cov, reml):
    fit = fit_of("orthodont", cov, reml=reml)
    mf = fit._mf
    codes = pd.factorize(mf.data["id"])[0]
    pos = pd.Index(fit.visits).get_indexer(mf.data["visit"].astype(object))
    eng = MMRMEngine(MMRMData.build(mf.y.to_numpy(float), mf.X.to_numpy(float), codes, pos),
                     structure(cov, fit.visits), reml=reml)
    theta = fit.covariance_parameters.to_numpy() * 1.05  # away from the optimum
    g = eng.grad_theta(theta)
    num = np.empty_like(g)
    for k in range(theta.size):
        h = 1e-5 * max(1.0, abs(theta[k]))
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        num[k] = (eng.evaluate(tp).loglik - eng.evaluate(tm).loglik) / (2 * h)
    close(g, num, "gradient", rtol=1e-5, atol=1e-5)  # central differences: ~1e-6 rounding noise


def test_missing_visits_kept_and_counts():
    d = load("dietox")
    fit = fit_of("dietox", "us")
    assert fit.n_obs == len(d) and fit.n_subjects == d["id"].nunique() == 72
    assert d.groupby("id").size().min() < 5  # some pigs miss visits, and are in the fit


def test_summary_convention_and_covariance_frames():
    fit = fit_of("orthodont", "us")
    assert list(fit.summary.columns) == ["coef", "se", "df", "statistic", "p_value", "ci_lower", "ci_upper"]
    assert list(fit.covariance.index) == ["age10", "age12", "age14"] == list(fit.correlation.columns)
    assert np.allclose(np.diag(fit.correlation), 1.0)
    k = fit.covariance_parameters.size
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * k)
    assert fit.bic == pytest.approx(-2 * fit.loglik + np.log(fit.n_subjects) * k)
    an = fit.anova()
    assert list(an.columns) == ["num_df", "den_df", "statistic", "p_value"]
    assert list(an.index) == ["Sex", "visit", "Sex:visit", "baseline"]


def test_plot_draws_one_line_per_arm():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    out = fit_of("dietox", "us").plot(ax=ax)
    assert out is ax
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Cu000", "Cu035", "Cu175"]


# ------------------------------------------------------------------------------- errors
def test_duplicate_subject_visit_is_an_error_naming_rows():
    d = load("orthodont")
    bad = pd.concat([d, d.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataValidationError, match="more than one row"):
        mmrm(DATASETS["orthodont"][0], bad, subject="id", visit="visit")


def test_argument_errors():
    d = load("orthodont")
    with pytest.raises(ValueError, match="covariance must be one of"):
        mmrm(DATASETS["orthodont"][0], d, subject="id", visit="visit", covariance="un")
    with pytest.raises(ValueError, match="Kenward-Roger is defined for REML"):
        mmrm(DATASETS["orthodont"][0], d, subject="id", visit="visit", reml=False, df="kenward-roger")
    with pytest.raises(ValueError, match="not a factor of the model"):
        fit_of("orthodont", "cs").lsmeans("baseline")
    with pytest.raises(ValueError, match="rank-deficient"):
        mmrm("distance ~ Sex + visit + I(2 * baseline) + baseline", d, subject="id", visit="visit")


def test_missing_value_rule():
    d = load("orthodont")
    d.loc[3, "distance"] = np.nan
    with pytest.raises(DataValidationError, match="distance"):
        mmrm(DATASETS["orthodont"][0], d, subject="id", visit="visit")
    fit = mmrm(DATASETS["orthodont"][0], d, subject="id", visit="visit", dropna=True, covariance="cs")
    assert fit.n_dropped == 1 and fit.n_obs == len(d) - 1


def test_non_convergence_warns():
    d = load("dietox")
    with pytest.warns(ConvergenceWarning):
        mmrm(DATASETS["dietox"][0], d, subject="id", visit="visit", max_iter=2)
