"""mixed(df=...) against lmerTest (Satterthwaite, REML and ML) and pbkrtest / lmerTest
(Kenward-Roger, REML) on sleepstudy, random intercept and random intercept and slope
(tests/fixtures/r/make_mmrm.R, cases mixed_sleep_*)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.response import mixed

from mmrm_helpers import FIXTURES, RTOL_DF, close, ref_series

pytestmark = [
    pytest.mark.filterwarnings("error:.*is deprecated and will be removed in the next release:DeprecationWarning"),
    pytest.mark.filterwarnings("error::analysis.ConvergenceWarning"),
]

# on sleepstudy mixed()'s variance components are at lmer's optimum to ~1e-7 (the package-wide
# tolerance for lmer fits is looser: tests/response/test_mixed_gee.py)
RTOL_SE = 1e-4


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(FIXTURES / "data" / "resp_sleepstudy.csv")


CASES = [("intercept", "1", True, "satterthwaite"), ("intercept", "1", False, "satterthwaite"),
         ("intercept", "1", True, "kenward-roger"), ("slope", "~Days", True, "satterthwaite"),
         ("slope", "~Days", False, "satterthwaite"), ("slope", "~Days", True, "kenward-roger")]


@pytest.mark.parametrize(("re", "re_formula", "reml", "df"), CASES)
def test_mixed_df_against_lmertest(sleep, re, re_formula, reml, df):
    case = f"mixed_sleep_{re}_{'reml' if reml else 'ml'}"
    tag = "sat" if df == "satterthwaite" else "kr"
    fit = mixed("Reaction ~ Days", sleep, cluster="Subject", re_formula=re_formula, reml=reml, df=df)
    s = fit.summary
    assert list(s.columns) == ["coef", "se", "df", "statistic", "p_value", "ci_lower", "ci_upper"]
    idx = ["Intercept", "Days"]
    close(s.loc[idx, "se"], ref_series(case, f"{tag}_se").loc[["(Intercept)", "Days"]], f"{case} {df} se",
          rtol=RTOL_SE)
    close(s.loc[idx, "df"], ref_series(case, f"{tag}_df").loc[["(Intercept)", "Days"]], f"{case} {df} df",
          rtol=RTOL_DF)


def test_default_stays_asymptotic(sleep):
    fit = mixed("Reaction ~ Days", sleep, cluster="Subject")
    assert "df" not in fit.summary.columns


def test_kenward_roger_needs_reml(sleep):
    with pytest.raises(ValueError, match="REML"):
        mixed("Reaction ~ Days", sleep, cluster="Subject", reml=False, df="kenward-roger")
