"""Turnbull NPMLE against R's survfit on interval2 data and npsurv (fixtures from
make_survival_aft.R), conventions, input checks, and a simulation with known truth."""

from __future__ import annotations

import doctest
import importlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.survival import kaplan_meier, turnbull

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
CASES = pd.read_csv(R_DIR / "turnbull_cases.csv", dtype=str, keep_default_na=False)


def _cases(frame):
    return [pytest.param(row, id=row.case) for row in frame.itertuples(index=False)]


def case_data(cs) -> pd.DataFrame:
    data = load_data(cs.dataset)
    if cs.weights == "w":
        data["w"] = 1 + (np.arange(len(data)) + 1) % 3  # R: 1 + seq_len(n) %% 3
    return data


def fit_case(cs, **extra):
    kw = dict(group=cs.group or None, weights=cs.weights or None, n_boot=0)
    kw.update(extra)
    return turnbull(case_data(cs), cs.lower, cs.upper, **kw)


@pytest.fixture(scope="module")
def fits():
    return {cs.case: fit_case(cs) for cs in CASES.itertuples(index=False)}


# ---------------------------------------------------------------------------------------
# agreement with R
# ---------------------------------------------------------------------------------------
#: below this, a survival probability is 0 up to rounding (R's iterations leave 1e-18, ours 1e-14)
TINY = 1e-9

# survfit's quirk: in a group with no left- or interval-censored row, survival 3.5-3's
# survfitTurnbull adds a phantom observation of weight 1 allowing every jump point (its
# 'wtmat' is then a single row of ones with weight 1), so its curve is not the Kaplan-Meier
# curve that the NPMLE is there. The leukemia case has such a group.
NO_INTERVAL_ROWS = {"leukemia_by_group"}


def _zero_tiny(x):
    x = np.asarray(x, dtype=float).copy()
    x[np.abs(x) < TINY] = 0.0
    return x


def _compare_with_r(tb, r, column, what, rtol):
    for level, rg in r.groupby("group", sort=False):
        ours = tb.at(rg["time"].to_numpy())
        ours = ours[ours["group"].astype(str) == str(level)]
        # R keeps the curve after the last bound; ours is NaN there unless S = 0
        ok = ours["survival"].notna().to_numpy()
        assert ok.mean() > 0.9
        close(_zero_tiny(ours["survival"].to_numpy()[ok]), _zero_tiny(rg[column].to_numpy()[ok]), what,
              context=f"{r['case'].iloc[0]} {level}", rtol=rtol)


@pytest.mark.parametrize("cs", _cases(CASES[~CASES.case.isin(NO_INTERVAL_ROWS)]))
def test_survival_matches_survfit_iterated_to_convergence(cs, fits):
    tb = fits[cs.case]
    assert all(tb.converged.values())
    r = ref("turnbull_surv")
    _compare_with_r(tb, r[r["case"] == cs.case], "surv", "turnbull.survival (R converged)", 1e-6)


def test_survfit_without_interval_rows_adds_a_phantom_observation(fits):
    """Where a group has only exact and right-censored rows, the NPMLE is the Kaplan-Meier
    curve (see test_exact_and_right_censored_only_is_kaplan_meier); R's survfit differs
    from it by exactly one phantom observation of weight 1 allowing (0, last jump]."""
    d = load_data("ic_leukemia")
    r = ref("turnbull_surv")
    r = r[r["case"] == "leukemia_by_group"]
    for level, rg in r.groupby("group", sort=False):
        g = d[d["group"] == level].copy()
        jumps = g.loc[g["L"] == g["R"], "L"]
        phantom = pd.DataFrame({"L": [0.0], "R": [float(jumps.max())], "group": [level]})
        tb = turnbull(pd.concat([g, phantom], ignore_index=True), "L", "R", n_boot=0)
        ours = tb.at(rg["time"].to_numpy())
        ok = ours["survival"].notna().to_numpy()
        close(_zero_tiny(ours["survival"].to_numpy()[ok]), _zero_tiny(rg["surv"].to_numpy()[ok]),
              "turnbull.survival (R phantom quirk)", context=str(level), rtol=1e-6)


@pytest.mark.parametrize("cs", _cases(CASES[~CASES.case.isin(NO_INTERVAL_ROWS)]))
def test_survfit_default_is_within_its_own_stopping_error(cs, fits):
    """R's survfit stops at a change of 5e-5 per iteration; its curve is then within about
    1e-3 of the converged one (recorded, not a target)."""
    tb = fits[cs.case]
    r = ref("turnbull_surv")
    r = r[r["case"] == cs.case]
    for level, rg in r.groupby("group", sort=False):
        ours = tb.at(rg["time"].to_numpy())
        ours = ours[ours["group"].astype(str) == str(level)]
        diff = np.nanmax(np.abs(ours["survival"].to_numpy() - rg["surv_default"].to_numpy()))
        assert diff < 3e-3, f"{cs.case} {level}: {diff}"


@pytest.mark.parametrize("cs", _cases(CASES[CASES.weights == ""]))
def test_survival_matches_npsurv_at_interval_ends(cs, fits):
    """npsurv's constrained Newton method (Wang 2008): S at the right end of each of its
    Turnbull intervals, where S is identified whatever the convention inside intervals."""
    tb = fits[cs.case]
    r = ref("turnbull_npsurv")
    r = r[r["case"] == cs.case]
    for level, rg in r.groupby("group", sort=False):
        assert rg["converged"].astype(str).eq("True").all()
        s_np = 1.0 - np.cumsum(rg["p"].to_numpy())
        right = rg["right"].to_numpy()
        fin = np.isfinite(right)
        ours = tb.at(right[fin])
        ours = ours[ours["group"].astype(str) == str(level)]
        assert ours["identified"].all()
        close(_zero_tiny(ours["survival"]), _zero_tiny(np.clip(s_np[fin], 0, 1)), "turnbull.survival (npsurv)",
              context=f"{cs.case} {level}", rtol=1e-5)


def test_exact_and_right_censored_only_is_kaplan_meier():
    d = load_data("ic_leukemia")
    tb = turnbull(d, "L", "R", group="group", n_boot=0)
    d["time"] = d["L"]
    d["event"] = np.isfinite(d["R"]).astype(int)
    km = kaplan_meier(d, "time", "event", group="group")
    times = np.arange(0.5, 36, 0.5)
    a = tb.at(times)
    b = km.at(times, extend=True)
    ok = a["survival"].notna().to_numpy()
    np.testing.assert_allclose(a["survival"].to_numpy()[ok], b["survival"].to_numpy()[ok], rtol=1e-9)


# ---------------------------------------------------------------------------------------
# conventions
# ---------------------------------------------------------------------------------------
def test_table_and_masses():
    d = load_data("ic_bcos")
    tb = turnbull(d, "L", "R", group="group", n_boot=0)
    t = tb.table
    assert list(t.columns) == ["group", "time", "left", "right", "mass", "survival", "se", "ci_lower", "ci_upper"]
    for level, g in t.groupby("group"):
        total = g["mass"].sum() + tb.tail_mass[level]
        assert total == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.diff(g["survival"]) <= 1e-15)
        assert np.all((g["time"] >= g["left"]) & (g["time"] <= g["right"]))
    assert t[["se", "ci_lower"]].isna().all().all() and tb.ci_method == "none"
    m = tb.median
    assert list(m["group"]) == ["RCT", "RT"] and m["median"].notna().all()


def test_lower_nan_or_zero_and_upper_nan_or_inf():
    d = load_data("ic_bcos")
    d["L"] = d["L"].astype(float)
    base = turnbull(d, "L", "R", n_boot=0).table
    d2 = d.copy()
    d2.loc[d2["L"] == 0, "L"] = np.nan
    d2["R"] = d2["R"].replace(np.inf, np.nan)
    other = turnbull(d2, "L", "R", n_boot=0).table
    pd.testing.assert_frame_equal(base, other)


def test_integer_weights_equal_replicated_rows():
    d = load_data("ic_bcos")
    d["w"] = 1 + np.arange(len(d)) % 3
    a = turnbull(d, "L", "R", weights="w", n_boot=0).table
    rep = d.loc[d.index.repeat(d["w"])].reset_index(drop=True)
    b = turnbull(rep, "L", "R", n_boot=0).table
    np.testing.assert_allclose(a["survival"], b["survival"], atol=1e-9)


def test_bootstrap_intervals_are_reproducible_and_bracket_the_estimate():
    d = load_data("ic_bcos")
    a = turnbull(d, "L", "R", group="group", n_boot=200, seed=7)
    b = turnbull(d, "L", "R", group="group", n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    t = a.table
    assert a.ci_method == "bootstrap percentile"
    assert (t["ci_lower"] <= t["survival"] + 1e-9).all() and (t["survival"] <= t["ci_upper"] + 1e-9).all()
    at = a.at([10, 20, 30])
    assert at["ci_lower"].notna().all() and (at["ci_lower"] <= at["ci_upper"]).all()
    m = a.median
    assert (m["ci_lower"] <= m["median"]).all() and (m["median"] <= m["ci_upper"]).all()
    c = turnbull(d, "L", "R", group="group", n_boot=200, seed=8).table
    assert not np.allclose(c["ci_lower"], t["ci_lower"])


def test_at_flags_unidentified_times_and_beyond_the_data():
    d = load_data("ic_bcos")
    tb = turnbull(d, "L", "R", n_boot=0)
    out = tb.at([4.5, 5.0, 100.0])
    assert list(out["identified"]) == [False, True, False]
    assert np.isnan(out["survival"].iloc[2])  # beyond the largest bound, mass left
    assert out["survival"].iloc[1] == pytest.approx(out["survival"].iloc[0])


def test_errors():
    d = pd.DataFrame({"lo": [1.0, 5.0, -2.0, np.nan], "hi": [2.0, 4.0, 3.0, np.nan]})
    with pytest.raises(DataValidationError) as err:
        turnbull(d, "lo", "hi")
    text = str(err.value)
    assert "lower bound is greater than the upper bound" in text and "row 2" in text
    assert "lower bound must be >= 0" in text and "row 3" in text
    assert "missing bound" in text
    ok = turnbull(d.iloc[[0, 3]], "lo", "hi", dropna=True, n_boot=0)
    assert ok.n_dropped == 1
    with pytest.raises(DataValidationError, match="column not found"):
        turnbull(d, "low", "hi")
    with pytest.raises(ValueError, match="n_boot"):
        turnbull(d, "lo", "hi", n_boot=-1)


def test_plot_returns_axes():
    import matplotlib.pyplot as plt

    d = load_data("ic_bcos")
    tb = turnbull(d, "L", "R", group="group", n_boot=50)
    fig, ax = plt.subplots()
    assert tb.plot(ax=ax, intervals=True) is ax
    plt.close(fig)


def test_docstring_examples():
    mod = importlib.import_module("analysis.survival._turnbull")  # analysis.survival.turnbull is the function
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_large_sample_is_fast():
    rng = np.random.default_rng(3)
    n = 20_000
    t = rng.weibull(1.4, n) * 21
    visit = 7.0 * np.ceil(t / 7.0)
    last = 7.0 * rng.integers(4, 20, n)
    seen = visit <= last
    df = pd.DataFrame({"lo": np.where(seen, visit - 7, last), "hi": np.where(seen, visit, np.inf)})
    tb = turnbull(df, "lo", "hi", n_boot=20)
    assert all(tb.converged.values())


# ---------------------------------------------------------------------------------------
# simulation with known truth
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.simulation
def test_weekly_inspection_recovers_true_survival_and_bootstrap_covers():
    """Weibull(shape 1.4, scale 21 days) times seen at weekly visits up to a follow-up of
    28-133 days. At the visit days (where S is identified) the estimate is close to the
    truth, and the 95% bootstrap percentile interval at day 14 covers it at about 95%."""
    reps = max(int(os.environ.get("KO_SIM_REPS", "800")) // 4, 25)
    rng = np.random.default_rng(20240613)
    days = np.array([7.0, 14.0, 21.0, 28.0])
    truth = np.exp(-((days / 21.0) ** 1.4))
    est = np.empty((reps, days.size))
    covered = np.empty(reps, dtype=bool)
    for i in range(reps):
        n = 150
        t = 21.0 * rng.weibull(1.4, n)
        last = 7.0 * rng.integers(4, 20, n)
        visit = 7.0 * np.ceil(t / 7.0)
        seen = visit <= last
        df = pd.DataFrame({"lo": np.where(seen, visit - 7.0, last), "hi": np.where(seen, visit, np.inf)})
        tb = turnbull(df, "lo", "hi", n_boot=200, seed=i)
        out = tb.at(days)
        est[i] = out["survival"].to_numpy()
        row = out.iloc[1]
        covered[i] = row["ci_lower"] <= truth[1] <= row["ci_upper"]
    bias = est.mean(axis=0) - truth
    assert np.all(np.abs(bias) < 0.02), f"bias {bias}"
    coverage = covered.mean()
    print(f"\nTurnbull weekly inspection, {reps} replicates: bias {np.round(bias, 4)}, coverage at day 14 {coverage:.3f}")
    half = max(0.02, 3.5 * np.sqrt(0.95 * 0.05 / reps))
    assert abs(coverage - 0.95) <= half, f"coverage {coverage:.3f} over {reps} replicates"
