"""Multi-state models against R (fixtures from tests/fixtures/r/make_multistate.R).

* ``state_occupation``: survival's ``survfit(Surv(tstart, tstop, state) ~ group, id=,
  istate=, weights=)``: Aalen-Johansen state probabilities at every time, ``n.risk``,
  ``n.event``, the infinitesimal-jackknife ``std.err`` and the limits of conf.type log,
  log-log (95 % and 90 %) and plain, relative 1e-6 (closed forms); the restricted mean time
  in state (``summary(fit, rmean=)``) and its jackknife standard error (from survfit's
  influence matrix), relative 1e-6;
* ``transition_cox``: multi-state ``coxph`` (Efron and Breslow ties, robust variance by
  id): coefficients, robust and model-based standard errors per transition, relative 1e-4.

Data: survival's mgus2 as an illness-death model, myeloid as entry -> CR -> relapse ->
death, and a simulated treatment-course table with re-response, ties, delayed entry and
subjects starting in response (transitions layout with from-states), with and without
weights.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.survival import CoxResult, cox, state_occupation, transition_cox

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

RTOL_CLOSED = 1e-6
RTOL_FIT = 1e-4
MS_CASES = ref("ms_cases")
COX_CASES = ref("ms_cox_cases")
R_STATE_ORDER = {"ms_mgus2": ["censor", "pcm", "death"]}  # the vignette's order, as a Categorical
LIMITS = {"log": ("log", 0.95), "loglog": ("log-log", 0.95), "plain": ("plain", 0.95), "loglog90": ("log-log", 0.9)}


def _close(actual, expected, what, *, context, rtol):
    """``close``, with R's rounding residues (|value| < 1e-12 where the exact value is 0,
    e.g. the standard error of a probability that is exactly 0) compared as zeros."""
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    tiny = np.abs(e) < 1e-12
    assert np.all(np.abs(a[tiny]) < 1e-12), f"{what} [{context}]: expected 0, got {a[tiny][np.abs(a[tiny]) >= 1e-12][:5]}"
    return close(a[~tiny], e[~tiny], what, context=context, rtol=rtol)


def _r_term(term: str) -> str:
    """R's name of a patsy term: ``sex[T.M]`` is R's ``sexM``."""
    return re.sub(r"^(\w+)\[T\.(.+)\]$", r"\1\2", term)


def _cases(frame):
    frame = frame.rename(columns={"from": "from_state"})  # "from" is a Python keyword
    return [pytest.param(row, id=row.case) for row in frame.itertuples(index=False)]


def _data(cs) -> pd.DataFrame:
    d = load_data(cs.dataset)
    if cs.dataset in R_STATE_ORDER:
        d[cs.to] = pd.Categorical(d[cs.to], categories=R_STATE_ORDER[cs.dataset])
    return d


def _fit(cs, **kw):
    return state_occupation(_data(cs), id="id", start="tstart", stop="tstop", to=cs.to, censor=cs.censor,
                            from_state=cs.from_state or None, group=cs.group or None,
                            weights=cs.weights or None, **kw)


@pytest.mark.parametrize("cs", _cases(MS_CASES))
def test_state_probabilities_match_survfit(cs):
    exp_all = ref("ms_pstate")
    exp_all = exp_all[exp_all.case == cs.case]
    ms = _fit(cs)
    assert set(ms.states) == set(exp_all.state)
    if cs.dataset in R_STATE_ORDER:
        assert ms.states == ["(s0)", "pcm", "death"]
    for (group, state), exp in exp_all.groupby(["group", "state"], sort=False):
        got_all = ms.at(exp.time.to_numpy())
        got = got_all[(got_all.group.astype(str) == str(group)) & (got_all.state == state)]
        ctx = f"{cs.case} {group} {state}"
        _close(got.estimate, exp.estimate, "ms estimate", context=ctx, rtol=RTOL_CLOSED)
        _close(got.se, exp.std_err, "ms se", context=ctx, rtol=RTOL_CLOSED)
        np.testing.assert_array_equal(got.at_risk.to_numpy(), exp.n_risk.to_numpy(), err_msg=ctx)
        np.testing.assert_array_equal(got.events.to_numpy(), exp.n_event.to_numpy(), err_msg=ctx)
    # the limits: R's are NA where p is 0 (ours 0) or 1 (log-log: ours NaN as R's)
    for suffix, (conf_type, level) in LIMITS.items():
        ms_ct = _fit(cs, conf_type=conf_type, conf_level=level)
        for (group, state), exp in exp_all.groupby(["group", "state"], sort=False):
            got_all = ms_ct.at(exp.time.to_numpy())
            got = got_all[(got_all.group.astype(str) == str(group)) & (got_all.state == state)]
            defined = exp.estimate.to_numpy() > 0
            for side in ("lower", "upper"):
                _close(got[f"ci_{side}"].to_numpy()[defined], exp[f"{side}_{suffix}"].to_numpy()[defined],
                      f"ms {side} {conf_type}", context=f"{cs.case} {group} {state}", rtol=RTOL_CLOSED)


@pytest.mark.parametrize("cs", _cases(MS_CASES))
def test_table_rows_are_the_transition_times(cs):
    exp_all = ref("ms_pstate")
    exp_all = exp_all[exp_all.case == cs.case]
    ms = _fit(cs)
    for group, exp in exp_all.groupby("group"):
        moved = exp.groupby("time").n_event.sum()
        times = moved.index[moved > 0].to_numpy()
        tab = ms.table[ms.table.group.astype(str) == str(group)]
        for state in ms.states:
            np.testing.assert_array_equal(tab[tab.state == state].time.to_numpy(), times)
        sums = tab.groupby("time").estimate.sum().to_numpy()
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cs", _cases(MS_CASES))
def test_restricted_mean_time_in_state_matches_survfit(cs):
    exp = ref("ms_rmean")
    exp = exp[exp.case == cs.case]
    got = _fit(cs).rmean(float(cs.tau))
    merged = got.assign(group=got.group.astype(str)).merge(exp.assign(group=exp.group.astype(str)),
                                                            on=["group", "state"], suffixes=("", "_r"))
    assert len(merged) == len(exp) == len(got)
    close(merged.rmean, merged.rmean_r, "ms rmean", context=cs.case, rtol=RTOL_CLOSED)
    close(merged.se, merged.se_r, "ms rmean se", context=cs.case, rtol=RTOL_CLOSED)
    total = got.groupby("group").rmean.sum().to_numpy()
    np.testing.assert_allclose(total, float(cs.tau), rtol=1e-12)


@pytest.mark.parametrize("cs", _cases(COX_CASES))
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_transition_cox_matches_multistate_coxph(cs, ties):
    exp = ref("ms_cox")
    exp = exp[(exp.case == cs.case) & (exp.ties == ties)]
    d = _data(cs)
    fit = transition_cox(cs.rhs, d, id="id", start="tstart", stop="tstop", to=cs.to, censor=cs.censor,
                         from_state=cs.from_state or None, weights=cs.weights or None, ties=ties)
    assert set(fit) == set(zip(exp["from"], exp["to"]))
    for (a, b), rows in exp.groupby(["from", "to"]):
        res = fit[(a, b)]
        assert isinstance(res, CoxResult)
        summ = pd.DataFrame(res.summary)
        summ.index = [_r_term(t) for t in summ.index]
        s = summ.loc[rows.term]
        ctx = f"{cs.case} {ties} {a}->{b}"
        close(s.coef, rows.coef, "ms cox coef", context=ctx, rtol=RTOL_FIT)
        close(s.se, rows.se, "ms cox robust se", context=ctx, rtol=RTOL_FIT)
        close(s.naive_se, rows.naive_se, "ms cox naive se", context=ctx, rtol=RTOL_FIT)
    stacked = fit.summary
    assert stacked.index.names == ["from_state", "to_state", "term"]
    assert len(stacked) == len(exp)


def test_transition_cox_is_cox_on_the_rows_of_the_state():
    d = load_data("ms_mgus2")
    fit = transition_cox("age", d, id="id", start="tstart", stop="tstop", to="event", censor="censor")
    sub = d[d.groupby("id").cumcount() == 0].assign(e=lambda x: (x.event == "pcm").astype(int))
    direct = cox("age", sub, duration="tstop", entry="tstart", event="e", cluster="id")
    pd.testing.assert_frame_equal(pd.DataFrame(fit[("(s0)", "pcm")].summary), pd.DataFrame(direct.summary))


def test_layouts_agree():
    """The transitions layout (from, to) and survival's (event as state, from derived)."""
    d = load_data("ms_course")
    with_from = state_occupation(d, id="id", start="tstart", stop="tstop", to="to", from_state="from",
                                 censor="censored", group="arm")
    # survival's layout: only subjects starting in induction can drop the from-state
    starts = d.groupby("id")["from"].transform("first")
    d2 = d[starts == "induction"]
    a = state_occupation(d2, id="id", start="tstart", stop="tstop", to="to", from_state="from", censor="censored")
    b = state_occupation(d2.drop(columns="from"), id="id", start="tstart", stop="tstop", to="to",
                         censor="censored", initial_state="induction")
    pd.testing.assert_frame_equal(a.table, b.table)
    assert with_from.states == ["induction", "lost", "relapse", "response", "stopped"]
    tr = with_from.transitions
    assert tr.n.sum() == len(d)
    assert set(tr.columns) == {"from_state", "to_state", "n"}


def test_at_before_first_transition_and_beyond_follow_up():
    d = load_data("ms_course")
    ms = state_occupation(d, id="id", start="tstart", stop="tstop", to="to", from_state="from",
                          censor="censored")
    first = ms.table.time.min()
    early = ms.at([first / 2])
    p0 = ms.p0.set_index("state").estimate
    np.testing.assert_allclose(early.set_index("state").estimate.loc[p0.index], p0)
    assert p0.loc["response"] > 0 and p0.loc["induction"] > 0  # some subjects start in response
    late = ms.at([d.tstop.max() + 1])
    assert late.estimate.isna().all()
    kept = ms.at([d.tstop.max() + 1], extend=True)
    np.testing.assert_allclose(kept.estimate.sum(), 1.0)


def _course():
    return pd.DataFrame({"id": [1, 1, 2, 2, 3], "start": [0, 4, 0, 5, 0], "stop": [4, 9, 5, 8, 6],
                         "from": ["induction", "response", "induction", "response", "induction"],
                         "to": ["response", 0, "response", "relapse", "stopped"], "w": [1.0, 1.0, 2.0, 2.0, 1.0]})


def test_bad_input_errors_name_row_column_and_value():
    d = _course()
    gap = d.assign(start=[0, 5, 0, 5, 0])
    with pytest.raises(DataValidationError, match="gap after the previous interval") as err:
        state_occupation(gap, id="id", start="start", stop="stop", to="to", from_state="from", table="courses")
    assert "courses" in str(err.value) and "start" in str(err.value)
    overlap = d.assign(start=[0, 3, 0, 5, 0])
    with pytest.raises(DataValidationError, match="overlaps the previous interval"):
        state_occupation(overlap, id="id", start="start", stop="stop", to="to", from_state="from")
    jump = d.assign(**{"from": ["induction", "relapse", "induction", "response", "induction"]})
    with pytest.raises(DataValidationError, match="does not follow from the previous row") as err:
        state_occupation(jump, id="id", start="start", stop="stop", to="to", from_state="from")
    assert "'relapse'" in str(err.value)
    same = d.assign(to=["induction", 0, "response", "relapse", "stopped"])
    with pytest.raises(DataValidationError, match="already in"):
        state_occupation(same, id="id", start="start", stop="stop", to="to", from_state="from")
    varying = d.assign(w=[1.0, 2.0, 2.0, 2.0, 1.0])
    with pytest.raises(DataValidationError, match="same on every row of an id"):
        state_occupation(varying, id="id", start="start", stop="stop", to="to", from_state="from", weights="w")
    backwards = d.assign(stop=[4, 3, 5, 8, 6])
    with pytest.raises(DataValidationError, match="strictly before"):
        state_occupation(backwards, id="id", start="start", stop="stop", to="to", from_state="from")
    with pytest.raises(DataValidationError, match="not found"):
        state_occupation(d, id="patient", start="start", stop="stop", to="to")
    missing = d.assign(stop=[4, 9, 5, 8, np.nan])
    with pytest.raises(DataValidationError, match="missing"):
        state_occupation(missing, id="id", start="start", stop="stop", to="to", from_state="from")
    dropped = state_occupation(missing, id="id", start="start", stop="stop", to="to", from_state="from",
                               dropna=True)
    assert dropped.n_dropped == 1 and "stopped" not in dropped.states
    with pytest.raises(ValueError, match="horizon"):
        state_occupation(d, id="id", start="start", stop="stop", to="to", from_state="from").rmean(0)


def test_plots_return_axes():
    import matplotlib.pyplot as plt

    d = load_data("ms_course")
    ms = state_occupation(d, id="id", start="tstart", stop="tstop", to="to", from_state="from",
                          censor="censored", group="arm")
    fig, axes = plt.subplots(1, 2)
    assert ms.plot(ax=axes[0], states=["response", "relapse"]) is axes[0]
    assert ms.plot_stacked(ax=axes[1], group="ketamine") is axes[1]
    polys = axes[1].collections
    assert len(polys) == len(ms.states)
    with pytest.raises(ValueError, match="pass group="):
        ms.plot_stacked()
    with pytest.raises(ValueError, match="every state once"):
        ms.plot_stacked(group="ketamine", states=["response"])
    plt.close(fig)
