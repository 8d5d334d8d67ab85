"""lsmeans() and contrast() of mixed, gee, logistic and ordinal against R's emmeans (issue
13): probability-scale means and differences (delta method, type = "response" and regrid),
the link scale, proportional weights, Holm, Bonferroni and Dunnett, the ordinal model's
mode = "prob" and "latent", and the mixed model's Satterthwaite, Kenward-Roger and
asymptotic df. References from tests/fixtures/r/make_lsmeans.R (lsm_ref.csv), on the
datasets make_response.R wrote; no test runs R.

Tolerances: relative 1e-6 for estimates, standard errors and interval limits (the largest
differences seen: glm 3e-14, geeglm 2e-13, lmer 8e-9, polr 8e-7, the last from numDeriv's
Hessian on the R side); 1e-5 for Satterthwaite and Kenward-Roger df (seen: 3e-9); 1e-3 for
Dunnett p-values (and 1e-9 absolute, for p-values that are 0 in double precision); other
p-values ten times the tolerance of their estimates (in the tail, at z = 11, a p-value's
relative error is about z^2 = 121 times that of z).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from analysis.response import gee, logistic, mixed, ordinal

from response_helpers import FIXTURES, LEVELS, STRICT

pytestmark = STRICT

RTOL_CLOSED = 1e-6  # glm, polr
RTOL_GEE = 1e-6
RTOL_MIXED = 1e-6
RTOL_DF = 1e-5
RTOL_DUNNETT = 1e-3

EMM = {"estimate": "estimate", "se": "SE", "ci_lower": "lower.CL", "ci_upper": "upper.CL"}
CON = {**EMM, "statistic": "t.ratio", "p_value": "p.value"}


@lru_cache(maxsize=None)
def _ref() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "r" / "lsm_ref.csv", keep_default_na=False, na_values=["NA"],
                       dtype={"case": str, "quantity": str, "term": str, "level": str})


def ref(case: str, quantity: str) -> pd.Series:
    r = _ref()
    r = r[(r["case"] == case) & (r["quantity"] == quantity)]
    assert len(r), f"no reference rows for {case}/{quantity}"
    return pd.Series(r["value"].to_numpy(), index=pd.MultiIndex.from_arrays([r["term"], r["level"]]))


def keys(tab: pd.DataFrame, cols: list[str]) -> pd.MultiIndex:
    """(term, level) of each row: the key columns joined by "|" as make_lsmeans.R writes them,
    and the ordinal model's category (or "")."""
    term = tab[cols].astype(str).agg("|".join, axis=1)
    level = tab["category"].astype(str) if "category" in tab.columns else pd.Series("", index=tab.index)
    return pd.MultiIndex.from_arrays([term, level])


def check(tab: pd.DataFrame, cols: list[str], case: str, prefix: str, columns: dict, *, rtol: float, atol: float = 0.0):
    idx = keys(tab, cols)
    for ours, theirs in columns.items():
        expected = ref(case, f"{prefix}_{theirs}")
        assert len(expected) == len(tab), f"{case}/{prefix}: {len(tab)} rows, R has {len(expected)}"
        e = expected.loc[idx].to_numpy()
        a = tab[ours].to_numpy(dtype=float)
        diff = np.abs(a - e)
        # far in the tail a p-value's relative error is about z^2 times that of z
        tol = 10 * rtol if ours == "p_value" else rtol
        ok = diff <= atol + tol * np.abs(e)
        assert ok.all(), (f"{case}/{prefix} {ours}: largest relative difference "
                          f"{np.max(diff / np.maximum(np.abs(e), 1e-300)):.3g} (rtol {rtol}); ours {a[~ok][:4]}, "
                          f"R {e[~ok][:4]} at {list(idx[~ok][:4])}")


def check_dunnett(ct: pd.DataFrame, cols: list[str], case: str, prefix: str, by_quantile: list[str] | None = None):
    check(ct, cols, case, f"{prefix}_dunnett", {"p_value": "p.value"}, rtol=RTOL_DUNNETT, atol=1e-9)
    # the simultaneous interval's half-width over se is the family's two-sided quantile
    half = (ct["ci_upper"] - ct["estimate"]) / ct["se"]
    q = ref(case, f"{prefix}_dunnett_quantile")
    qkeys = keys(ct, by_quantile) if by_quantile else pd.MultiIndex.from_arrays(
        [[""] * len(ct), ct["category"].astype(str) if "category" in ct.columns else [""] * len(ct)])
    np.testing.assert_allclose(half.to_numpy(), q.loc[qkeys].to_numpy(), rtol=1e-4)


def categorical(d: pd.DataFrame, **levels) -> pd.DataFrame:
    d = d.copy()
    for col, lev in levels.items():
        d[col] = pd.Categorical(d[col], categories=lev, ordered=col in ("Sat", "bwt3"))
    return d


# ------------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def birthwt():
    return categorical(pd.read_csv(FIXTURES / "data" / "resp_birthwt.csv"), race=LEVELS["race"])


@pytest.fixture(scope="module")
def logit_fit(birthwt):
    return logistic("low ~ race * C(smoke) + age", birthwt)


@pytest.fixture(scope="module")
def ohio_fit():
    oh = pd.read_csv(FIXTURES / "data" / "resp_ohio.csv")
    oh["agef"] = pd.Categorical("age" + (oh["age"] + 9).astype(str), categories=[f"age{a}" for a in range(7, 11)])
    return gee("resp ~ C(smoke) + agef", oh, cluster="id", family="binomial", cov_struct="exchangeable")


@pytest.fixture(scope="module")
def dietox_fit():
    dx = categorical(pd.read_csv(FIXTURES / "data" / "resp_dietox.csv"), Cu=LEVELS["Cu"])
    return gee("Weight ~ Time + Cu", dx, cluster="Pig", cov_struct="ar1", time="Time")


@pytest.fixture(scope="module")
def housing_fit():
    hs = pd.read_csv(FIXTURES / "data" / "resp_housing.csv")
    hs = hs.loc[hs.index.repeat(hs["Freq"])].reset_index(drop=True)
    hs = categorical(hs, **{c: LEVELS[c] for c in ("Sat", "Infl", "Type", "Cont")})
    return ordinal("Sat ~ Infl + Type + Cont", hs)


@pytest.fixture(scope="module")
def bwt3_fit():
    b3 = categorical(pd.read_csv(FIXTURES / "data" / "resp_birthwt3.csv"), race=LEVELS["race"], bwt3=LEVELS["bwt3"])
    return ordinal("bwt3 ~ age + lwt + race + smoke", b3)


@pytest.fixture(scope="module")
def orthodont():
    od = pd.read_csv(FIXTURES / "data" / "resp_orthodont.csv")
    od = od[~od["missed"]].copy()
    od["agef"] = pd.Categorical("age" + od["age"].astype(str), categories=[f"age{a}" for a in (8, 10, 12, 14)])
    return categorical(od, Sex=LEVELS["Sex"])


@pytest.fixture(scope="module")
def mixed_fits(orthodont):
    return {df: mixed("distance ~ Sex * agef", orthodont, cluster="Subject", df=df)
            for df in ("satterthwaite", "kenward-roger", "asymptotic")}


# --------------------------------------------------------------------------------- logistic
def test_logistic_probability_scale_lsmeans(logit_fit):
    ls = logit_fit.lsmeans("race")
    assert ls["race"].astype(str).tolist() == LEVELS["race"] and np.isinf(ls["df"]).all()
    check(ls, ["race"], "logistic", "emm", EMM, rtol=RTOL_CLOSED)
    check(logit_fit.lsmeans("race", by="smoke"), ["race", "smoke"], "logistic", "emm_by", EMM, rtol=RTOL_CLOSED)
    check(logit_fit.lsmeans("race", weights="proportional"), ["race"], "logistic", "emm_prop", EMM, rtol=RTOL_CLOSED)


def test_logistic_link_scale(logit_fit):
    check(logit_fit.lsmeans("race", scale="link"), ["race"], "logistic", "emm_link", EMM, rtol=RTOL_CLOSED)
    ct = logit_fit.contrast("race", by="smoke", scale="link")
    check(ct, ["contrast", "smoke"], "logistic", "con_link_by", CON, rtol=RTOL_CLOSED)


def test_logistic_probability_differences_and_adjustments(logit_fit):
    ct = logit_fit.contrast("race")
    assert ct["contrast"].tolist() == ["black - white", "other - white"]
    check(ct, ["contrast"], "logistic", "con", CON, rtol=RTOL_CLOSED)
    for adjust in ("holm", "bonferroni"):
        cp = logit_fit.contrast("race", method="pairwise", adjust=adjust)
        assert cp["contrast"].tolist() == ["white - black", "white - other", "black - other"]
        check(cp, ["contrast"], "logistic", f"con_pairwise_{adjust}",
              {k: v for k, v in CON.items() if k != "statistic"}, rtol=RTOL_CLOSED)
    check_dunnett(logit_fit.contrast("race", adjust="dunnett"), ["contrast"], "logistic", "con")


def test_logistic_frequency_weights_proportional_means(birthwt):
    counts = categorical(pd.read_csv(FIXTURES / "data" / "resp_birthwt_counts.csv"), race=LEVELS["race"])
    fit = logistic("low ~ C(smoke) + race + C(ht)", counts, weights="n", weight_type="frequency")
    # proportions are sums of the frequency weights: emmeans on the row-level fit (emmeans on
    # the aggregated fit would count the table's rows)
    ls = fit.lsmeans("race", weights="proportional")
    check(ls, ["race"], "logistic_counts", "emm_prop", EMM, rtol=RTOL_CLOSED)
    rows = logistic("low ~ C(smoke) + race + C(ht)", birthwt).lsmeans("race", weights="proportional")
    check(rows, ["race"], "logistic_counts", "emm_prop", EMM, rtol=RTOL_CLOSED)


# -------------------------------------------------------------------------------------- GEE
def test_gee_binomial_probability_scale(ohio_fit):
    check(ohio_fit.lsmeans("smoke"), ["smoke"], "gee_ohio", "emm_smoke", EMM, rtol=RTOL_GEE)
    check(ohio_fit.lsmeans("agef"), ["agef"], "gee_ohio", "emm_age", EMM, rtol=RTOL_GEE)
    check(ohio_fit.lsmeans("agef", weights="proportional"), ["agef"], "gee_ohio", "emm_age_prop", EMM, rtol=RTOL_GEE)
    check(ohio_fit.lsmeans("agef", scale="link"), ["agef"], "gee_ohio", "emm_age_link", EMM, rtol=RTOL_GEE)
    ct = ohio_fit.contrast("agef")
    check(ct, ["contrast"], "gee_ohio", "con_age", CON, rtol=RTOL_GEE)
    check_dunnett(ohio_fit.contrast("agef", adjust="dunnett"), ["contrast"], "gee_ohio", "con_age")


def test_gee_gaussian_identity_scale(dietox_fit):
    ls = dietox_fit.lsmeans("Cu")
    check(ls, ["Cu"], "gee_dietox", "emm", EMM, rtol=RTOL_GEE)
    # identity link: the link scale is the same table
    pd.testing.assert_frame_equal(dietox_fit.lsmeans("Cu", scale="link"), ls)
    check(dietox_fit.contrast("Cu"), ["contrast"], "gee_dietox", "con", CON, rtol=RTOL_GEE)
    check_dunnett(dietox_fit.contrast("Cu", adjust="dunnett"), ["contrast"], "gee_dietox", "con")


# ---------------------------------------------------------------------------------- ordinal
def test_ordinal_category_probabilities(housing_fit):
    ls = housing_fit.lsmeans("Infl")
    assert list(ls.columns) == ["Infl", "category", "estimate", "se", "df", "ci_lower", "ci_upper"]
    assert ls["category"].cat.categories.tolist() == LEVELS["Sat"]
    # the probabilities of the categories of each level sum to one
    np.testing.assert_allclose(ls.groupby("Infl", observed=True)["estimate"].sum().to_numpy(), 1.0, rtol=1e-12)
    check(ls, ["Infl"], "polr_housing", "emm", EMM, rtol=RTOL_CLOSED)
    check(housing_fit.lsmeans("Infl", by="Cont"), ["Infl", "Cont"], "polr_housing", "emm_by", EMM, rtol=RTOL_CLOSED)
    check(housing_fit.lsmeans("Infl", weights="proportional"), ["Infl"], "polr_housing", "emm_prop", EMM,
          rtol=RTOL_CLOSED)


def test_ordinal_probability_differences(housing_fit):
    ct = housing_fit.contrast("Infl")
    assert list(ct.columns[:2]) == ["category", "contrast"]
    check(ct, ["contrast"], "polr_housing", "con", CON, rtol=RTOL_CLOSED)
    check_dunnett(housing_fit.contrast("Infl", adjust="dunnett"), ["contrast"], "polr_housing", "con")
    cp = housing_fit.contrast("Infl", method="pairwise", adjust="holm")
    check(cp, ["contrast"], "polr_housing", "con_pairwise_holm", {k: v for k, v in CON.items() if k != "statistic"},
          rtol=RTOL_CLOSED)


def test_ordinal_latent_mode(housing_fit):
    check(housing_fit.lsmeans("Type", mode="latent"), ["Type"], "polr_housing", "emm_latent", EMM, rtol=RTOL_CLOSED)
    ct = housing_fit.contrast("Type", mode="latent")
    check(ct, ["contrast"], "polr_housing", "con_latent", CON, rtol=RTOL_CLOSED)
    # differences of latent means are the log odds ratios of the summary
    np.testing.assert_allclose(ct["estimate"], housing_fit.summary.loc[
        ["Type[T.Apartment]", "Type[T.Atrium]", "Type[T.Terrace]"], "coef"], rtol=1e-10)


def test_ordinal_numeric_covariates_at_their_means(bwt3_fit):
    check(bwt3_fit.lsmeans("race"), ["race"], "polr_bwt3", "emm", EMM, rtol=RTOL_CLOSED)
    check(bwt3_fit.contrast("race"), ["contrast"], "polr_bwt3", "con", CON, rtol=RTOL_CLOSED)


def test_ordinal_errors(housing_fit):
    with pytest.raises(ValueError, match="mode must be one of"):
        housing_fit.lsmeans("Infl", mode="mean.class")
    with pytest.raises(ValueError, match="adjust must be one of"):
        housing_fit.contrast("Infl", adjust="tukey")
    with pytest.raises(ValueError, match="'Sat' is not a factor"):
        housing_fit.lsmeans("Sat")


# ------------------------------------------------------------------------------------ mixed
@pytest.mark.parametrize("df", ["satterthwaite", "kenward-roger", "asymptotic"])
def test_mixed_lsmeans_and_contrasts_with_df(mixed_fits, df):
    fit = mixed_fits[df]
    tag = df.replace("-", "_")
    ls = fit.lsmeans("Sex", by="agef")
    ct = fit.contrast("Sex", by="agef")
    check(ls, ["Sex", "agef"], "mixed", f"emm_by_{tag}", EMM, rtol=RTOL_MIXED)
    check(ct, ["contrast", "agef"], "mixed", f"con_by_{tag}", CON, rtol=RTOL_MIXED)
    check(fit.lsmeans("Sex"), ["Sex"], "mixed", f"emm_{tag}", EMM, rtol=RTOL_MIXED)
    if df == "asymptotic":
        assert np.isinf(ls["df"]).all() and np.isinf(ct["df"]).all()
    else:
        check(ls, ["Sex", "agef"], "mixed", f"emm_by_{tag}", {"df": "df"}, rtol=RTOL_DF)
        check(ct, ["contrast", "agef"], "mixed", f"con_by_{tag}", {"df": "df"}, rtol=RTOL_DF)
        check(fit.lsmeans("Sex"), ["Sex"], "mixed", f"emm_{tag}", {"df": "df"}, rtol=RTOL_DF)


def test_mixed_proportional_weights_and_holm(mixed_fits):
    fit = mixed_fits["satterthwaite"]
    check(fit.lsmeans("Sex", weights="proportional"), ["Sex"], "mixed", "emm_prop_satterthwaite",
          {**EMM, "df": "df"}, rtol=RTOL_MIXED)
    ct = fit.contrast("agef", by="Sex", adjust="holm")
    check(ct, ["contrast", "Sex"], "mixed", "con_age_holm_satterthwaite",
          {"estimate": "estimate", "se": "SE", "df": "df", "p_value": "p.value", "ci_lower": "lower.CL",
           "ci_upper": "upper.CL"}, rtol=RTOL_MIXED)


def test_scale_choices(mixed_fits, logit_fit):
    with pytest.raises(ValueError, match="scale must be one of"):
        logit_fit.lsmeans("race", scale="odds")
    fit = mixed_fits["asymptotic"]
    pd.testing.assert_frame_equal(fit.lsmeans("Sex", scale="link"), fit.lsmeans("Sex"))
