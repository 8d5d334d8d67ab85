"""analysis._kernel.marginal on its own (model-independent): a logistic model's LS means on
the probability scale and their differences (delta method) against emmeans (``type =
"response"``, ``regrid``), proportional weights on the link scale, Holm and Bonferroni as R's
p.adjust, and the errors. References from tests/fixtures/r/make_mmrm.R (case marginal_glm,
on MASS::birthwt as make_response.R wrote it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from analysis._kernel import model_frame
from analysis._kernel.marginal import (
    MarginalInputs, adjust_p_values, contrast_table, lsmeans_table, mean_combinations, reference_grid,
)

from mmrm_helpers import FIXTURES, RTOL_EST, close, ref_series


@pytest.fixture(scope="module")
def glm_inputs():
    bw = pd.read_csv(FIXTURES / "data" / "resp_birthwt.csv")
    bw["race"] = pd.Categorical(bw["race"], categories=["white", "black", "other"])
    mf = model_frame("low ~ race + C(smoke) + age", bw)
    res = sm.GLM(mf.y.to_numpy(float), mf.X.to_numpy(float), family=sm.families.Binomial()).fit(tol=1e-12)

    def inverse_link(eta):
        p = expit(eta)
        return p, p * (1.0 - p)

    def z(L):
        return np.full(len(L), np.inf)

    return (MarginalInputs(mf, np.asarray(res.params), np.asarray(res.cov_params()), z, 0.95, inverse_link),
            MarginalInputs(mf, np.asarray(res.params), np.asarray(res.cov_params()), z, 0.95))


def test_probability_scale_lsmeans(glm_inputs):
    inputs, _ = glm_inputs
    ls = lsmeans_table(inputs, "race")
    assert ls["race"].astype(str).tolist() == ["white", "black", "other"]
    labels = ls["race"].astype(str)
    for q, col in (("prob", "estimate"), ("SE", "se"), ("asymp.LCL", "ci_lower"), ("asymp.UCL", "ci_upper")):
        close(ls[col], ref_series("marginal_glm", f"emm_{q}").loc[labels], f"emmeans {q}", rtol=RTOL_EST)


def test_probability_differences_delta_method(glm_inputs):
    inputs, _ = glm_inputs
    ct = contrast_table(inputs, "race")
    assert ct["contrast"].tolist() == ["black - white", "other - white"]
    for q, col in (("estimate", "estimate"), ("SE", "se"), ("z.ratio", "statistic"), ("p.value", "p_value"),
                   ("asymp.LCL", "ci_lower"), ("asymp.UCL", "ci_upper")):
        close(ct[col], ref_series("marginal_glm", f"con_{q}").loc[ct["contrast"]], f"regrid contrast {q}",
              rtol=RTOL_EST)


def test_proportional_weights_link_scale(glm_inputs):
    _, linear = glm_inputs
    ls = lsmeans_table(linear, "race", weights="proportional")
    labels = ls["race"].astype(str)
    close(ls["estimate"], ref_series("marginal_glm", "emm_prop_emmean").loc[labels], "emmean", rtol=RTOL_EST)
    close(ls["se"], ref_series("marginal_glm", "emm_prop_SE").loc[labels], "SE", rtol=RTOL_EST)


def test_reference_grid_levels_in_category_order_and_covariate_means(glm_inputs):
    _, linear = glm_inputs
    grid, X = reference_grid(linear.mf)
    assert list(dict.fromkeys(grid["race"].astype(str))) == ["white", "black", "other"]
    assert grid["age"].nunique() == 1
    assert grid["age"].iloc[0] == pytest.approx(linear.mf.data["age"].mean())
    rows, L = mean_combinations(linear.mf, "race", by="smoke")
    assert list(rows.columns) == ["race", "smoke"] and len(rows) == 6 and L.shape == (6, X.shape[1])


def test_holm_and_bonferroni_as_p_adjust():
    t = np.array([2.9, 2.1, 0.4])
    df = np.array([30.0, 30.0, 30.0])
    from scipy import stats

    p = 2 * stats.t.sf(t, 30)
    order = np.argsort(p)
    holm = np.empty(3)
    holm[order] = np.minimum(1, np.maximum.accumulate((3 - np.arange(3)) * p[order]))
    close(adjust_p_values(t, df, np.eye(3), "holm"), holm, "holm", rtol=1e-12)
    close(adjust_p_values(t, df, np.eye(3), "bonferroni"), np.minimum(1, 3 * p), "bonferroni", rtol=1e-12)
    # independent statistics: Dunnett's max-|t| p is 1 - (1 - p_i)^m only for the normal case
    z = np.array([2.5, 1.0])
    pz = 2 * stats.norm.sf(z)
    close(adjust_p_values(z, np.array([np.inf, np.inf]), np.eye(2), "dunnett"), 1 - (1 - pz) ** 2, "sidak",
          rtol=1e-6)


def test_errors(glm_inputs):
    _, linear = glm_inputs
    with pytest.raises(ValueError, match="'age' is not a factor"):
        lsmeans_table(linear, "age")
    with pytest.raises(ValueError, match="given both in spec and in by"):
        lsmeans_table(linear, "race", by="race")
    with pytest.raises(ValueError, match="weights must be one of"):
        lsmeans_table(linear, "race", weights="cells")
    with pytest.raises(ValueError, match="adjust must be one of"):
        contrast_table(linear, "race", adjust="tukey")
    with pytest.raises(ValueError, match="reference 'asian' is not a level"):
        contrast_table(linear, "race", reference="asian")
