"""``lsmeans`` and ``contrast`` for the response models (mixed, GEE, logistic, ordinal): what
each model hands to the model-independent machinery of :mod:`analysis._kernel.marginal`
(its coefficients, the covariance its inference uses, its df rule and, on a link, the
inverse link), and the ordinal model's two emmeans modes.

Conventions (R's ``emmeans``; ``docs/response.md``, "Least-squares means"):

* ``scale="response"`` (default) for a model with a logit link (logistic, binomial GEE):
  the linear predictor is averaged over the reference grid, then back-transformed, with
  delta-method standard errors; intervals are back-transformed from the link scale and
  differences are of probabilities (emmeans' ``type = "response"``, and ``regrid`` before
  ``contrast``). ``scale="link"``: everything on the log-odds scale (differences are log
  odds ratios). For identity-link models (mixed, Gaussian GEE) both scales are the same.
* the ordinal (proportional-odds) model: ``mode="prob"`` (default) gives, for every outcome
  category, the probability of that category averaged over the reference grid *on the
  probability scale* (emmeans' ``mode = "prob"``, which regrids each grid point before
  averaging), with analytic delta-method standard errors and intervals estimate +/- z se;
  ``mode="latent"`` the linear predictor x'beta minus the mean of the thresholds (emmeans'
  ``mode = "latent"`` with its default ``rescale = c(0, 1)``), whose differences are log
  odds ratios.
* df: ``mixed`` follows its ``df=`` option (``satterthwaite``, ``kenward-roger`` with its
  adjusted covariance, ``asymptotic``: z, ``inf``); GEE (robust covariance), logistic and
  ordinal are z-based.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from .._kernel import check_choice
from .._kernel.marginal import ADJUSTMENTS, MarginalInputs, contrast_table, lsmeans_table

__all__ = ["MarginalMeansMixin", "ORDINAL_MODES", "SCALES", "logit_inverse_link", "ordinal_category_mean", "z_df"]

#: the scale= choices of lsmeans/contrast
SCALES = ("response", "link")
#: the mode= choices of the ordinal model's lsmeans/contrast
ORDINAL_MODES = ("prob", "latent")


def z_df(L: np.ndarray) -> np.ndarray:
    """Infinite df (z tests) for every row of L."""
    return np.full(np.atleast_2d(L).shape[0], np.inf)


def logit_inverse_link(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, dp / deta) of the logit link.

    Examples
    --------
    >>> [v.round(4).tolist() for v in logit_inverse_link(np.array([0.0, 2.0]))]
    [[0.5, 0.8808], [0.25, 0.105]]
    """
    p = expit(eta)
    return p, p * (1.0 - p)


class MarginalMeansMixin:
    """Least-squares means and their contrasts for a fitted model.

    A model provides ``_marginal_blocks(scale)``: a list of (extra columns, MarginalInputs),
    one block per table part (a single block, except for the ordinal model's ``mode="prob"``:
    one per outcome category, labelled by a ``category`` column).
    """

    def _marginal_blocks(self, scale: str) -> list[tuple[dict, MarginalInputs]]:  # pragma: no cover - models define it
        raise NotImplementedError

    def _marginal(self, table, scale: str, weights: str, *args, **kwargs) -> pd.DataFrame:
        parts = []
        for extra, inputs in self._marginal_blocks(scale):
            tab = table(inputs, *args, weights=weights, **kwargs)
            for name, value in extra.items():
                tab.insert(_extra_position(tab), name, value)
            parts.append(tab)
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        for name, levels in self._marginal_extra_levels().items():
            if name in out.columns:
                out[name] = pd.Categorical(out[name], categories=levels, ordered=True)
        return out

    def _marginal_extra_levels(self) -> dict:
        """Levels of the extra columns (the ordinal model's ``category``)."""
        return {}

    def lsmeans(self, spec, by=None, *, weights: str = "equal", scale: str = "response") -> pd.DataFrame:
        """Least-squares means of the levels of ``spec`` (within each level of ``by``).

        The reference grid is every combination of the model's factor levels with numeric
        covariates at their means over the rows fitted; the mean of a level averages the
        grid's predictions over the other factors with equal weights (emmeans' default) or,
        ``weights="proportional"``, weights proportional to how often each combination of
        the other factors occurs in the rows fitted (for a logistic fit with case weights:
        to the sum of their weights; ``docs/api.md``).

        Parameters
        ----------
        spec : str or list of str
            Factor(s) of the formula whose levels get a mean.
        by : str or list of str, optional
            Factor(s) within whose levels the means are computed.
        weights : {"equal", "proportional"}, default "equal"
        scale : {"response", "link"}, default "response"
            For a logit link (logistic, binomial GEE): probabilities, averaged on the link
            scale and back-transformed (delta-method se, interval back-transformed), as
            emmeans' ``type = "response"``; or the log odds. The same for identity links.

        Returns
        -------
        pandas.DataFrame
            Columns named after the factors, then ``estimate, se, df, ci_lower, ci_upper``
            (``df`` is ``inf`` for z-based inference).

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.response import logistic
        >>> d = pd.DataFrame({"remitted": [1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0], "arm": ["ketamine", "placebo"] * 6,
        ...                   "age": [30, 41, 52, 35, 47, 60, 28, 39, 44, 55, 33, 50]})
        >>> fit = logistic("remitted ~ arm + age", d)
        >>> fit.lsmeans("arm").round(3)  # P(remitted) at the mean age
                arm  estimate     se   df  ci_lower  ci_upper
        0  ketamine     0.734  0.335  inf     0.087     0.988
        1   placebo     0.263  0.323  inf     0.013     0.904
        """
        check_choice("scale", scale, SCALES)
        return self._marginal(lsmeans_table, scale, weights, spec, by)

    def contrast(self, spec, by=None, *, method: str = "trt.vs.ctrl", reference=None, adjust: str = "none",
                 weights: str = "equal", scale: str = "response") -> pd.DataFrame:
        """Differences of least-squares means: each level minus the reference level
        (``method="trt.vs.ctrl"``, the first level unless ``reference``) or every pair
        (``"pairwise"``, earlier minus later), within each level of ``by``; ``adjust`` one of
        ``"none", "holm", "bonferroni", "dunnett"`` within each ``by`` group.

        On ``scale="response"`` with a logit link the differences are of probabilities
        (emmeans' ``regrid`` then ``contrast``); on ``scale="link"`` of log odds.

        Returns
        -------
        pandas.DataFrame
            The ``by`` columns, ``contrast`` ("TRT - PBO"), ``estimate, se, df, statistic,
            p_value, ci_lower, ci_upper``.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.response import logistic
        >>> d = pd.DataFrame({"remitted": [1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0], "arm": ["ketamine", "placebo"] * 6,
        ...                   "age": [30, 41, 52, 35, 47, 60, 28, 39, 44, 55, 33, 50]})
        >>> fit = logistic("remitted ~ arm + age", d)
        >>> fit.contrast("arm").round(3)[["contrast", "estimate", "se", "p_value"]]  # difference of probabilities
                     contrast  estimate     se  p_value
        0  placebo - ketamine    -0.471  0.543    0.386
        """
        check_choice("adjust", adjust, ADJUSTMENTS)
        check_choice("scale", scale, SCALES)
        return self._marginal(contrast_table, scale, weights, spec, by, method=method, reference=reference,
                              adjust=adjust)


def _extra_position(tab: pd.DataFrame) -> int:
    """Where the extra (category) column goes: after the factor columns of an lsmeans table,
    before ``contrast`` in a contrast table."""
    anchor = "contrast" if "contrast" in tab.columns else "estimate"
    return list(tab.columns).index(anchor)


# ---------------------------------------------------------------------------------------
# the ordinal model's probabilities on the reference grid
# ---------------------------------------------------------------------------------------
def ordinal_category_mean(k: int, theta: np.ndarray, n_beta: int, intercept: int):
    """``grid_mean(W, X)`` of the probability of outcome category k (0-based) of a
    proportional-odds model with parameters theta = (beta, zeta): W P_k(theta) with
    P_k(x) = F(zeta_k - x'beta) - F(zeta_{k-1} - x'beta) (F logistic, zeta_{-1} = -inf,
    zeta_{K-1} = inf) and its analytic Jacobian in theta. ``intercept`` is the position of
    the intercept column of the grid's design, which polr's linear predictor leaves out."""

    def grid_mean(W: np.ndarray, X: np.ndarray):
        Xb = np.delete(X, intercept, axis=1)
        beta, zeta = theta[:n_beta], theta[n_beta:]
        q = zeta.size
        eta = Xb @ beta
        upper = np.full(eta.shape, np.inf) if k == q else zeta[k] - eta
        lower = np.full(eta.shape, -np.inf) if k == 0 else zeta[k - 1] - eta
        Fu, Fl = stats.logistic.cdf(upper), stats.logistic.cdf(lower)
        fu, fl = Fu * (1.0 - Fu), Fl * (1.0 - Fl)
        P = Fu - Fl
        dP = np.zeros((eta.size, theta.size))
        dP[:, :n_beta] = -(fu - fl)[:, None] * Xb
        if k < q:
            dP[:, n_beta + k] = fu
        if k > 0:
            dP[:, n_beta + k - 1] = -fl
        return W @ P, W @ dP

    return grid_mean
