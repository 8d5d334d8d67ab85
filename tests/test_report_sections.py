"""The report's sections for issues 13 and 14: cumulative incidence beside the Kaplan-Meier curve,
the treatment course, NNT and E-values in the adjunct table, reliable change, the MMRM and the
imputed response rate; on the sample, a 30-patient clinic and a 12-patient cohort.

Numbers are checked against the library's own estimators called directly on the same data (the
estimators themselves are checked against R in tests/survival, tests/effects, tests/response),
and against closed forms (NNT = 1 / |RD|; E-value = RR + sqrt(RR (RR - 1)), VanderWeele and Ding 2017).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.report import CohortReport, ReportParameters
from analysis.report import clinical, prose
from analysis.report.privacy import Disclosure

DATA = Path(__file__).resolve().parent / "fixtures" / "data"
NEW_SECTIONS = ["response", "relapse", "course", "adjuncts", "mmrm"]
#: a count from 1 to 10 standing alone in a table cell
SMALL_CELL = re.compile(r"^(?:[1-9]|10)$")


@pytest.fixture(scope="module")
def sample():
    return CohortReport(ReportParameters())


@pytest.fixture(scope="module", params=["clinic30", "cohort12"])
def small(request):
    report = CohortReport(ReportParameters(data=str(DATA / request.param)))
    return report, {name: getattr(report, name)() for name in NEW_SECTIONS}


# --- the sample ------------------------------------------------------------------------------


def test_relapse_section_shows_the_cumulative_incidence_beside_the_km_curve(sample):
    from analysis.survival import cumulative_incidence

    section = sample.relapse()
    assert {"relapse_km", "relapse_cif"} <= set(section.figures)
    ci = cumulative_incidence(sample.outcomes.relapse_competing, "time", "cause", censor="censored")
    at28 = ci.at([28]).set_index("cause").loc["relapse"]
    km28 = float(sample.relapse_km.at([28])["survival"].iloc[0])
    # the text gives the CIF at day 28 with its interval and 1 - KM beside it; the CIF is the smaller
    assert f"By day 28, {100 * at28['estimate']:.1f}% had relapsed" in section.text
    assert f"{100 * at28['ci_lower']:.1f}% to {100 * at28['ci_upper']:.1f}%" in section.text
    assert f"1 − Kaplan-Meier gives {100 * (1 - km28):.1f}%" in section.text
    assert at28["estimate"] < 1 - km28
    assert "overstates" in section.text
    # a cause with 1 to k - 1 events is not drawn (its curve's steps would count them), nor boosting
    # here: 284 followed - 123 relapses - 159 boosted would leave 2 (one stopped, one censored)
    counts = sample.outcomes.relapse_competing["cause"].astype(str).value_counts()
    assert 1 <= len(sample.outcomes.relapse_competing) - counts["relapse"] - counts["boosted"] < 11
    assert section.text.endswith("censored to be worked out): stopped for no benefit, boosted before a relapse was "
                                 "confirmed.")
    assert "56.0% boosted" not in section.text


def test_course_section_stacks_the_states_and_gives_days_in_response(sample):
    from analysis.survival import state_occupation

    section = sample.course()
    assert "course_states" in section.figures
    rows = sample.course_transitions
    ms = state_occupation(rows, id="patient_id", start="tstart", stop="tstop", to="to_state",
                          from_state="from_state", censor="censored")
    days = ms.rmean(90).set_index("state")["rmean"]
    assert f"**{days['response'] + days['re-response']:.1f} days in response**" in section.text
    table = section.tables["course_rmean"]
    assert table["state"].tolist()[:4] == ["induction", "response", "relapse", "re-response"]
    # the course is that of the analysis population only (its size is the one every table shows)
    assert rows["patient_id"].nunique() == len(sample.with_endpoint)


def test_reliable_change_counts_are_suppressed_as_counts(sample):
    section = sample.response()
    table = section.tables["reliable_change"]
    rc = sample.reliable_change.table.set_index("category")["n"]
    assert rc["deteriorated"] == 1                     # the sample's one reliable worsening
    shown = table.set_index("category")["patients"]
    assert shown["deteriorated"] == "*" and (shown == "*").sum() >= 2     # and one more, so it cannot be subtracted
    assert shown["recovered"] == str(rc["recovered"])
    assert not any(SMALL_CELL.match(str(v)) for v in table.to_numpy().ravel())
    note = " ".join(section.notes["reliable_change"])
    assert "Reliability 0.84 (test-retest; Kroenke, Spitzer & Williams 2001" in note


def test_imputed_rate_is_not_shown_when_few_were_imputed(sample):
    rate = sample.imputed_rate
    assert 1 <= rate.n_imputed < 11                    # six patients of the sample lack an endpoint
    text = sample.response().text
    assert "the response rate with their scores imputed is not shown" in text
    assert f"{100 * rate.estimate:.1f}%" not in text
    limitations = sample.limitations().text
    assert "Response rates are among the patients with an end-of-induction score." in limitations


def test_imputed_rate_line_when_enough_were_imputed():
    rate = SimpleNamespace(estimate=0.5612, ci_lower=0.5101, ci_upper=0.6110, complete_case=0.575, n=520,
                           n_imputed=26, m=20)
    d = Disclosure(11, analysed=494, categories={"responder": 284, "partial": 98, "non-responder": 112})
    line = prose.imputed_rate(rate, d, 0.95)
    assert line.startswith("With the 26 missing end-of-induction scores imputed (20 imputations")
    assert "56.1% (95% CI 51.0% to 61.1%), against 57.5%" in line
    assert "520" not in line                           # with the analysed shown, it would give the imputed back


@pytest.mark.slow
def test_adjunct_table_has_nnt_and_e_values_of_the_adjusted_estimates(sample):
    section = sample.adjuncts()
    effects = section.tables["adjunct_effects"]
    est = sample.adjunct_comparison.estimates.set_index(["adjunct", "measure"])
    rd = est.loc[("class_benzodiazepine", "response_rd_adjusted")]
    row = effects[effects["outcome"] == "Response, risk difference"]
    benzo = row.loc[row.index[(effects.loc[:row.index[-1], "adjunct"].replace("", np.nan).ffill()
                               == "Benzodiazepine use").loc[row.index]]]
    nnt_text = benzo["NNT, adjusted (95% CI)"].iloc[0]
    assert nnt_text.startswith(f"NNTH {1 / abs(rd['estimate']):.1f} (NNTH {1 / abs(rd['ci_lower']):.1f} to "
                               f"{1 / abs(rd['ci_upper']):.1f})")
    # E-value of the RD with the reference risk (closed form)
    p0 = rd["events_reference"] / rd["n_reference"]
    rr = (p0 + rd["estimate"]) / p0
    inv = 1 / rr
    assert benzo["E-value, adjusted"].iloc[0].startswith(f"{inv + math.sqrt(inv * (inv - 1)):.2f}")
    # a common outcome's OR through the square root (VanderWeele and Ding 2017)
    orow = est.loc[("class_benzodiazepine", "response_or_adjusted")]
    sq = 1 / math.sqrt(orow["estimate"])
    shown = effects.loc[benzo.index[0] - 1, "E-value, adjusted"]
    assert shown.startswith(f"{sq + math.sqrt(sq * (sq - 1)):.2f}")
    # hidden estimates keep their NNT and E-value hidden (alprazolam: 7 of 18 responded)
    alprazolam = effects.iloc[:3]
    assert (alprazolam["E-value, adjusted"] == "not shown").all()
    assert alprazolam["NNT, adjusted (95% CI)"].iloc[1] == "not shown"
    assert "VanderWeele and Ding 2017" in " ".join(section.notes["adjunct_effects"])


@pytest.mark.slow
def test_mmrm_section_compares_an_adjunct_by_week_of_induction(sample):
    from analysis.report import analyses, longitudinal
    from analysis.response import mmrm

    section = sample.mmrm()
    result = section.result
    assert result.adjunct == "class_benzodiazepine" and result.covariance == "us"
    fit = mmrm("change ~ group * visit + baseline", result.data, subject="patient_id", visit="visit",
               covariance="us", reml=True, df="satterthwaite")
    diff = fit.contrast("group", by="visit").set_index("visit").loc[result.end_visit]
    assert diff["estimate"] == pytest.approx(result.difference["estimate"], rel=1e-10)
    text = section.text
    assert f"{abs(diff['estimate']):.1f} points less" in text
    assert f"{diff['ci_lower']:.1f} to {diff['ci_upper']:.1f}" in text and f"{diff['df']:.0f} df" in text
    assert "unstructured" in text and "observational comparison" in text
    # 97 with benzodiazepines here against 90 in the adjunct table: the difference is small, so not shown
    table = sample.adjunct_comparison.table.set_index("adjunct")
    assert 1 <= abs(result.n_exposed - table.loc["class_benzodiazepine", "n_exposed"]) < 11
    assert "benzodiazepine use (number not shown)" in text
    assert {"mmrm_lsmeans", "mmrm_lsmeans_plot"} <= set(section.tables) | set(section.figures)
    assert len(section.tables["mmrm_lsmeans"]) == 2 * len(result.visits)


def test_mmrm_prose_names_the_fallback_structure_and_why():
    tried = pd.DataFrame({"covariance": ["us", "toeph", "ar1h", "csh", "ar1", "cs"],
                          "aic": [np.nan, 101.0, 99.5, 103.2, 100.1, 104.0],
                          "converged": [False, True, True, True, True, True]})
    result = SimpleNamespace(difference=pd.Series({"estimate": -1.5, "ci_lower": -2.9, "ci_upper": -0.1, "df": 88.2,
                                                   "p_value": 0.04}), covariance="ar1h", tried=tried,
                             visits=["week 1", "week 2"], end_visit="week 2")
    text = prose.mmrm(result, "Rapamycin", 0.95, counts=("25", "60"), instrument="PHQ-9")
    assert "heterogeneous AR(1): the unstructured fit did not converge" in text
    assert "heterogeneous AR(1) 99.5" in text and "1.5 points more with rapamycin" in text


# --- the pieces on their own ---------------------------------------------------------------------


def test_course_display_merges_small_states_and_cuts_where_few_remain():
    rows = []
    for i in range(30):                                   # 30 induction -> response at day 10 + i % 5
        rows.append((f"p{i}", 0.0, 10.0 + i % 5, "induction", "response"))
        rows.append((f"p{i}", 10.0 + i % 5, 40.0 + i, "response", "relapse" if i < 14 else "censored"))
        if i < 14:
            rows.append((f"p{i}", 40.0 + i, 80.0, "relapse", "re-response" if i < 3 else "censored"))
    table = pd.DataFrame(rows, columns=["patient_id", "tstart", "tstop", "from_state", "to_state"])
    shown, merged = clinical.cut_course_for_display(table, 11)
    assert merged == {"re-response": "response"}          # 3 re-responses, shown with response
    assert "re-response" not in set(shown["to_state"]) | set(shown["from_state"])
    moves = shown[shown["to_state"] != "censored"]
    transient = shown
    for t in moves["tstop"].unique():                      # every drawn move leaves at least k at risk
        after = ((transient["tstart"] <= t) & (transient["tstop"] > t)).sum()
        assert after >= 11


def test_incidence_rows_hide_days_with_few_at_risk():
    from analysis.survival import cumulative_incidence

    d = pd.DataFrame({"time": [float(t) for t in range(1, 41)],
                      "cause": (["relapse", "boosted", "censored", "relapse"] * 10)})
    ci = cumulative_incidence(d, "time", "cause", censor="censored")
    rows = clinical.incidence_rows(ci, d, [10, 35], ["relapse", "boosted"], 11)
    assert rows.loc[rows["day"] == 10, "estimate"].notna().all()
    assert rows.loc[rows["day"] == 35, "estimate"].isna().all()    # 5 remain after day 35


# --- small cohorts ---------------------------------------------------------------------------------


def test_small_cohorts_render_every_new_section_with_reasons(small):
    report, sections = small
    for name, section in sections.items():
        assert section.text, name
        for key, table in section.tables.items():
            cells = [str(v) for v in table.drop(columns=[c for c in table.columns if "CI" in c or c == "df"],
                                                 errors="ignore").to_numpy().ravel()]
            assert not any(SMALL_CELL.match(c) for c in cells), (name, key)
    assert "The mixed model for repeated measures is not shown: no adjunct had 11 or more" in sections["mmrm"].text
    if report.privacy.category_hidden.get("responder"):
        assert sections["course"].text.startswith("The treatment course is not shown:")
    else:
        assert "course_states" in sections["course"].figures
        # follow-up ends before day 90: the time in state is not extrapolated past it
        assert "Over the first 90 days" not in sections["course"].text
