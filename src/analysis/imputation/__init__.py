"""Multiple imputation: chained equations (``impute``) and Rubin's rules (``pool``).

``impute`` fills the missing values of a table m times (predictive mean matching, Bayesian
linear regression or logistic regression by chained equations, as R's ``mice``); fit the
same model to each completed table (``Imputed.fit``) and ``pool`` the fits. ``pool`` takes
the results of any model of the package (``docs/api.md``) and returns a result that follows
the same convention, with Barnard and Rubin's degrees of freedom and the fraction of missing
information; it agrees with ``mice::pool`` to rounding (``docs/imputation.md``).
``reference_based`` imputes repeated measures after an intercurrent event under
jump-to-reference, copy-reference or copy-increment assumptions (with a delta for
tipping-point analyses), as R's rbmi does by its approximate Bayesian method.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis.imputation import impute, pool
>>> from analysis.response import logistic
>>> rng = np.random.default_rng(3)
>>> d = pd.DataFrame({"baseline": rng.normal(20, 4, 300)})
>>> d["response"] = (rng.uniform(size=300) < 1 / (1 + np.exp(0.15 * (d.baseline - 20)))).astype(float)
>>> d.loc[rng.uniform(size=300) < 0.2, "response"] = np.nan
>>> pooled = pool(impute(d, m=5, seed=1).fit(lambda data: logistic("response ~ baseline", data)))
>>> pooled.summary.loc["baseline", ["ratio", "fmi"]].round(2).tolist()
[0.83, 0.11]
"""

from ._chained import Imputed, impute
from ._pool import PooledResult, barnard_rubin_df, complete_data_df, pool, pool_estimates
from ._reference import STRATEGIES, ReferenceImputed, reference_based, strategy_mean
from ._response import ImputedRate, imputed_response_rate

__all__ = ["Imputed", "ImputedRate", "PooledResult", "ReferenceImputed", "STRATEGIES", "barnard_rubin_df",
           "complete_data_df", "impute", "imputed_response_rate", "pool", "pool_estimates", "reference_based",
           "strategy_mean"]
