"""Kaplan-Meier and Nelson-Aalen against R's survfit (fixtures from make_survival_km.R)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.survival import kaplan_meier, nelson_aalen

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
KM_CASES = pd.read_csv(R_DIR / "km_cases.csv", dtype=str, keep_default_na=False)
NA_CASES = pd.read_csv(R_DIR / "na_cases.csv", dtype=str, keep_default_na=False)


def _opt(value: str):
    return value or None


def fit_case(cs, **extra):
    data = load_data(cs.dataset, cs.status, cs.event_value)
    variance = "auto"
    if cs.robust == "TRUE":
        variance = "robust"
    elif cs.robust == "FALSE":
        variance = "greenwood"
    return kaplan_meier(
        data, cs.time, "_event", group=_opt(cs.group), weights=_opt(cs.weights), entry=_opt(cs.entry),
        conf_type=cs.conf_type, conf_level=float(cs.conf_level), variance=variance, **extra,
    )


def _cases(frame):
    return [pytest.param(row, id=row.case) for row in frame.itertuples(index=False)]


# ---------------------------------------------------------------------------------------
# the curve, row by row: summary(survfit(...), censored = TRUE)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _cases(KM_CASES))
def test_km_table_matches_survfit(cs):
    km = fit_case(cs)
    r = ref("km_tables")
    r = r[r["case"] == cs.case].reset_index(drop=True)
    t = km.table
    assert len(r) > 0 and len(t) == len(r)
    assert t["group"].astype(str).tolist() == r["group"].astype(str).tolist()
    close(t["time"], r["time"], "km.time", context=cs.case)
    close(t["at_risk"], r["n.risk"], "km.at_risk", context=cs.case)
    close(t["events"], r["n.event"], "km.events", context=cs.case)
    close(t["censored"], r["n.censor"], "km.censored", context=cs.case)
    close(t["survival"], r["surv"], "km.survival", context=cs.case)
    close(t["se"], r["std.err"], "km.se (of S)", context=cs.case)
    if r["logse"].astype(bool).all():  # fit$std.err is then the se of log S
        close(t["se_log"], r["fit_std.err"], "km.se_log (fit$std.err)", context=cs.case)
    if cs.conf_type == "none":
        assert t["ci_lower"].isna().all() and t["ci_upper"].isna().all()
    else:
        close(t["ci_lower"], r["lower"], f"km.ci_lower {cs.conf_type}", context=cs.case)
        close(t["ci_upper"], r["upper"], f"km.ci_upper {cs.conf_type}", context=cs.case)
    fractional = bool(cs.weights) and cs.weights.startswith("w_frac")
    expected_variance = {"TRUE": "robust", "FALSE": "greenwood"}.get(cs.robust, "robust" if fractional else "greenwood")
    assert km.variance == expected_variance  # R: robust by default for non-integer weights


@pytest.mark.parametrize("cs", _cases(KM_CASES[KM_CASES.conf_type != "none"]))
def test_km_median_matches_print_survfit(cs):
    km = fit_case(cs)
    r = ref("km_median")
    r = r[r["case"] == cs.case].reset_index(drop=True)
    m = km.median
    assert m["group"].astype(str).tolist() == r["group"].astype(str).tolist()
    close(m["n"], r["records"], "km.median n", context=cs.case)
    close(m["events"], r["events"], "km.median events", context=cs.case)
    close(m["median"], r["median"], "km.median", context=cs.case)
    close(m["ci_lower"], r["lcl"], "km.median ci_lower", context=cs.case)
    close(m["ci_upper"], r["ucl"], "km.median ci_upper", context=cs.case)


def test_median_rule_when_curve_sits_at_one_half():
    km = kaplan_meier(load_data("toy_median"), "time", "status", group="group")
    med = km.median.set_index("group")["median"]
    assert med["A"] == 3.5  # S = 0.5 on [3, 4)
    assert med["B"] == 2.0  # S = 0.5 from 2 on, no later drop
    assert med["C"] == 6.0  # 5/6 * 3/5 = 0.5 up to rounding, on [4, 8)
    assert np.isnan(med["D"])


@pytest.mark.parametrize("cs", _cases(KM_CASES[KM_CASES.conf_type != "none"]))
def test_km_at_matches_summary_times(cs):
    km = fit_case(cs)
    r_all = ref("km_at")
    times = [0, 3.5, 10, 30, 100, 365, 500, 2000]
    for extend in (False, True):
        r = r_all[(r_all["case"] == cs.case) & (r_all["extend"].astype(bool) == extend)]
        assert len(r) > 0
        ours = km.at(times, extend=extend)
        ours["key"] = ours["group"].astype(str) + "@" + ours["time"].astype(str)
        r = r.assign(key=r["group"].astype(str) + "@" + r["time"].astype(float).astype(str))
        merged = r.merge(ours, on="key", how="left", suffixes=("_r", ""))
        assert merged["survival"].notna().all() or cs.conf_type == "none"
        ctx = f"{cs.case} extend={extend}"
        close(merged["at_risk"], merged["n.risk"], "km.at at_risk", context=ctx)
        close(merged["events"], merged["n.event"], "km.at events", context=ctx)
        close(merged["survival"], merged["surv"], "km.at survival", context=ctx)
        close(merged["se"], merged["std.err"], "km.at se", context=ctx)
        close(merged["ci_lower"], merged["lower"], "km.at ci_lower", context=ctx)
        close(merged["ci_upper"], merged["upper"], "km.at ci_upper", context=ctx)
        # rows R leaves out (beyond a group's last time, extend=False) are NaN here
        missing = ours[~ours["key"].isin(r["key"])]
        assert extend is False or missing.empty
        assert missing["survival"].isna().all()


# ---------------------------------------------------------------------------------------
# Nelson-Aalen: survfit(stype = 2, ctype = 1)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _cases(NA_CASES))
def test_nelson_aalen_matches_survfit(cs):
    data = load_data(cs.dataset, cs.status, cs.event_value)
    r = ref("na_tables")
    r = r[r["case"] == cs.case].reset_index(drop=True)
    kw = dict(group=_opt(cs.group), weights=_opt(cs.weights), entry=_opt(cs.entry), conf_level=float(cs.conf_level))
    if cs.robust == "TRUE":
        kw["variance"] = "robust"
    log = nelson_aalen(data, cs.time, "_event", conf_type="log", **kw).table
    plain = nelson_aalen(data, cs.time, "_event", conf_type="plain", **kw).table
    assert log["group"].astype(str).tolist() == r["group"].astype(str).tolist()
    close(log["time"], r["time"], "na.time", context=cs.case)
    close(log["at_risk"], r["n.risk"], "na.at_risk", context=cs.case)
    close(log["events"], r["n.event"], "na.events", context=cs.case)
    close(log["cumhaz"], r["cumhaz"], "na.cumhaz", context=cs.case)
    close(log["se"], r["std.chaz"], "na.se (std.chaz)", context=cs.case)
    close(log["ci_lower"], r["lower_log"], "na.ci_lower log", context=cs.case)
    close(log["ci_upper"], r["upper_log"], "na.ci_upper log", context=cs.case)
    close(plain["ci_lower"], r["lower_plain"], "na.ci_lower plain", context=cs.case)
    close(plain["ci_upper"], r["upper_plain"], "na.ci_upper plain", context=cs.case)


@pytest.mark.parametrize("cs", _cases(NA_CASES[NA_CASES.case.isin(ref("km_na_median")["case"])]))
def test_nelson_aalen_median_matches_print_survfit_stype2(cs):
    data = load_data(cs.dataset, cs.status, cs.event_value)
    r = ref("km_na_median")
    r = r[r["case"] == cs.case]
    kw = dict(group=_opt(cs.group), weights=_opt(cs.weights), entry=_opt(cs.entry), conf_level=float(cs.conf_level))
    for conf_type, rc in r.groupby("conf_type"):
        m = nelson_aalen(data, cs.time, "_event", conf_type=conf_type, **kw).median
        ctx = f"{cs.case} {conf_type}"
        assert list(m.columns) == ["group", "n", "events", "median", "ci_lower", "ci_upper"]
        assert m["group"].astype(str).tolist() == rc["group"].astype(str).tolist(), ctx
        close(m["n"], rc["records"], "na.median n", context=ctx)
        close(m["events"], rc["events"], "na.median events", context=ctx)
        close(m["median"], rc["median"], "na.median", context=ctx)
        close(m["ci_lower"], rc["lcl"], "na.median ci_lower", context=ctx)
        close(m["ci_upper"], rc["ucl"], "na.median ci_upper", context=ctx)


def test_nelson_aalen_at_reads_the_table_as_a_step_function():
    data = load_data("aml", "status", "1")
    na = nelson_aalen(data, "time", "_event", group="x")
    at = na.at([0, 9, 9.5, 200])
    assert list(at.columns) == ["group", "time", "at_risk", "events", "cumhaz", "se", "ci_lower", "ci_upper"]
    for level, part in na.table.groupby("group"):
        a = at[at["group"] == level].set_index("time")
        assert a.loc[0.0, "cumhaz"] == 0 and a.loc[0.0, "se"] == 0 and a.loc[0.0, "ci_lower"] == 0
        k = np.searchsorted(part["time"].to_numpy(), 9.5, side="right") - 1
        for col in ("cumhaz", "se", "ci_lower", "ci_upper"):
            assert a.loc[9.5, col] == part[col].iloc[k]
            assert np.isnan(a.loc[200.0, col])  # beyond the group's last time, unless extend=True
        assert a["events"].sum() == part.loc[part["time"] <= 161, "events"].sum()
    ext = na.at([200], extend=True)
    np.testing.assert_array_equal(ext["cumhaz"], na.table.groupby("group")["cumhaz"].last().to_numpy())


def test_cumhaz_is_in_the_km_fixture_too():
    # survfit's default ctype = 1 cumhaz/std.chaz stored alongside every KM case
    r = ref("km_tables")
    for cs in KM_CASES.itertuples(index=False):
        data = load_data(cs.dataset, cs.status, cs.event_value)
        variance = {"TRUE": "robust", "FALSE": "aalen"}.get(cs.robust, "auto")
        t = nelson_aalen(data, cs.time, "_event", group=_opt(cs.group), weights=_opt(cs.weights),
                         entry=_opt(cs.entry), variance=variance).table
        rc = r[r["case"] == cs.case]
        close(t["cumhaz"], rc["cumhaz"], "na.cumhaz", context=cs.case)
        close(t["se"], rc["std.chaz"], "na.se (std.chaz)", context=cs.case)


# ---------------------------------------------------------------------------------------
# behaviour and input checking
# ---------------------------------------------------------------------------------------
def test_defaults_and_shape():
    df = pd.DataFrame({"t": [1.0, 2, 2, 3, 4], "e": [True, True, False, True, False]})
    km = kaplan_meier(df, "t", "e")
    assert km.conf_type == "log-log" and km.conf_level == 0.95 and km.variance == "greenwood"
    assert list(km.table.columns) == [
        "group", "time", "at_risk", "events", "censored", "survival", "se", "ci_lower", "ci_upper", "se_log"]
    assert (km.table["group"] == "all").all()
    assert km.table["at_risk"].dtype == np.int64
    assert km.n_dropped == 0
    assert list(km.median.columns) == ["group", "n", "events", "median", "ci_lower", "ci_upper"]
    assert "KaplanMeierResult" in repr(km)


def test_categorical_group_keeps_category_order():
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1] * 6,
                       "arm": pd.Categorical(["b", "a", "b", "a", "c", "c"], categories=["c", "b", "a", "unused"])})
    km = kaplan_meier(df, "t", "e", group="arm")
    assert km.median["group"].tolist() == ["c", "b", "a"]


def test_integer_weights_equal_replicated_rows():
    df = pd.DataFrame({"t": [2, 3, 3, 5, 8, 9], "e": [1, 0, 1, 1, 0, 1], "w": [2, 1, 3, 1, 2, 1]})
    rep = df.loc[df.index.repeat(df["w"])].reset_index(drop=True)
    a = kaplan_meier(df, "t", "e", weights="w").table
    b = kaplan_meier(rep, "t", "e").table
    np.testing.assert_allclose(a["survival"], b["survival"], rtol=1e-12)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-12)
    np.testing.assert_allclose(a["at_risk"], b["at_risk"])


def test_all_problems_reported_at_once_with_row_column_and_value():
    df = pd.DataFrame({"t": [1.0, -2.0, 3.0, 4.0], "e": [1, 2, 0, 1], "w": [1.0, 1.0, 0.0, 1.0]})
    with pytest.raises(DataValidationError) as info:
        kaplan_meier(df, "t", "e", weights="w")
    text = str(info.value)
    assert "3 error(s)" in text
    assert "row 2, column 't': value -2.0: duration must be >= 0" in text
    assert "row 2, column 'e': value 2" in text and "0/1" in text
    assert "row 3, column 'w'" in text and "weight must be > 0" in text


def test_status_coded_one_two_gets_a_hint():
    lung = load_data("lung")
    with pytest.raises(ValueError, match="status == 2"):
        kaplan_meier(lung, "time", "status")


def test_missing_values_raise_unless_dropna():
    lung = load_data("lung", "status", "2")
    with pytest.raises(DataValidationError, match=r"1 row\(s\) have a missing group value \(row 14\)") as info:
        kaplan_meier(lung, "time", "_event", group="ph.ecog")
    assert "'ph.ecog'" in str(info.value) and "dropna=True" in str(info.value)
    km = kaplan_meier(lung, "time", "_event", group="ph.ecog", dropna=True)
    assert km.n_dropped == 1
    assert km.median["n"].sum() == len(lung) - 1
    same = kaplan_meier(lung.dropna(subset=["ph.ecog"]), "time", "_event", group="ph.ecog")
    pd.testing.assert_frame_equal(km.table, same.table)


def test_other_input_errors():
    df = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 0], "s": [2.0, 1.0], "txt": ["a", "b"]})
    with pytest.raises(DataValidationError, match="duration column not found"):
        kaplan_meier(df, "nope", "e")
    with pytest.raises(DataValidationError, match="entry time must be strictly before the duration"):
        kaplan_meier(df, "t", "e", entry="s")
    with pytest.raises(DataValidationError, match="duration must be a number"):
        kaplan_meier(df, "txt", "e")
    with pytest.raises(DataValidationError, match="must be finite"):
        kaplan_meier(df.assign(t=[1.0, np.inf]), "t", "e")
    with pytest.raises(ValueError, match="conf_type must be one of"):
        kaplan_meier(df, "t", "e", conf_type="loglog")
    with pytest.raises(ValueError, match="conf_level"):
        kaplan_meier(df, "t", "e", conf_level=95)
    with pytest.raises(ValueError, match="variance must be one of"):
        kaplan_meier(df, "t", "e", variance="jackknife")
    with pytest.raises(TypeError, match="DataFrame"):
        kaplan_meier(df.to_dict(), "t", "e")


def test_entry_before_first_exit_keeps_late_entries_out_of_early_risk_sets():
    df = pd.DataFrame({"start": [0, 0, 2, 2], "stop": [1, 3, 3, 4], "e": [1, 1, 0, 1]})
    t = kaplan_meier(df, "stop", "e", entry="start").table
    assert t["at_risk"].tolist() == [2, 3, 1]  # at 1: two entered at 0; at 3: 3 (two entered at 2)


def test_plot_draws_curves_bands_ticks_and_at_risk_table():
    import matplotlib.pyplot as plt

    aml = load_data("aml")
    km = kaplan_meier(aml, "time", "status", group="x")
    fig, ax = plt.subplots()
    out = km.plot(ax=ax)
    assert out is ax
    assert len(ax.get_lines()) >= 2 and len(ax.collections) >= 2
    texts = [t.get_text() for t in ax.texts]
    assert "Number at risk" in texts and "x=Maintained" in texts and "11" in texts
    plt.close(fig)
    fig, ax = plt.subplots()
    nelson_aalen(aml, "time", "status", group="x").plot(ax=ax)
    assert ax.get_ylabel() == "cumulative hazard"
    plt.close(fig)


def test_one_million_rows_with_ties_runs_vectorised():
    rng = np.random.default_rng(1)
    n = 1_000_000
    df = pd.DataFrame({"t": rng.integers(1, 366, n).astype(float), "e": rng.integers(0, 2, n),
                       "g": rng.integers(0, 3, n)})
    km = kaplan_meier(df, "t", "e", group="g")
    assert len(km.table) == 3 * 365
    assert km.table["at_risk"].iloc[0] == (df["g"] == 0).sum()


# ---------------------------------------------------------------------------------------
# coverage with a known truth
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.simulation
def test_pointwise_interval_covers_true_survival():
    """Exponential relapse times (rate 0.1/day), uniform censoring; at day 7 the true
    S = exp(-0.7). The default 95% log-log interval should cover it about 95% of the time."""
    reps = int(os.environ.get("KO_SIM_REPS", "4000"))
    rng = np.random.default_rng(20240601)
    rate, t0, n = 0.1, 7.0, 80
    truth = np.exp(-rate * t0)
    covered = np.zeros(reps, dtype=bool)
    for i in range(reps):
        event_t = rng.exponential(1 / rate, n)
        cens_t = rng.uniform(0, 30, n)
        df = pd.DataFrame({"t": np.minimum(event_t, cens_t), "e": event_t <= cens_t})
        row = kaplan_meier(df, "t", "e").at([t0])
        covered[i] = row["ci_lower"].iloc[0] <= truth <= row["ci_upper"].iloc[0]
    coverage = covered.mean()
    half = max(0.02, 3.5 * np.sqrt(0.95 * 0.05 / reps))  # 93-97% at the default size
    assert abs(coverage - 0.95) <= half, f"coverage {coverage:.3f} over {reps} replicates"
