"""What a clinical reader sees in a cohort report: summary, formatting, labels, small cohorts.

Sections are built in-process (no rendering) once per cohort; the slow mark is for the
sample's durability and adjunct models (about 15 s)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import CohortReport, ReportParameters
from analysis.report.cohort import SECTION_TITLES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "data"
SECTIONS = ["header", "summary", "contents", "methods", "data_summary", "attrition", "table_one", "trajectories",
            "waterfall", "response", "responder_models", "relapse", "course", "relapse_models", "durability",
            "adjuncts", "mmrm", "sensitivity"]


def build(params: ReportParameters) -> dict:
    report = CohortReport(params)
    sections = {name: getattr(report, name)() for name in SECTIONS}
    sections["limitations"] = report.limitations(responder_models=sections["responder_models"].result,
                                                 relapse_models=sections["relapse_models"].result)
    return {"report": report, **sections}


@pytest.fixture(scope="module")
def sample():
    return build(ReportParameters())


@pytest.fixture(scope="module")
def clinic():
    return build(ReportParameters(data=str(DATA / "clinic30")))


@pytest.fixture(scope="module")
def tiny():
    return build(ReportParameters(data=str(DATA / "cohort12")))


DEVELOPER_TEXT = re.compile(r"CohortReport|min_cell_count|analysis\.report|\{'|\bnan\b|NaN|\[T\.|drug_[a-z]+=|/work/|"
                            r"/tmp/")


def _all_text(sections: dict) -> str:
    parts = []
    for name, s in sections.items():
        if name == "report":
            continue
        parts.append(re.sub(r"<img[^>]*>", "", s.to_html()))
        for key, table in s.tables.items():
            if key not in s.csv_only:
                parts.append(table.to_string())
    return "\n".join(parts)


@pytest.mark.slow
def test_the_sample_reads_as_a_report(sample):
    text = _all_text(sample)
    assert not DEVELOPER_TEXT.findall(text), DEVELOPER_TEXT.findall(text)[:5]
    # the plain-language summary gives each finding with its n and interval
    summary = sample["summary"].text
    assert "**57.5%** of 494 patients" in summary and "284 patients; 95% CI 53.1% to 61.8%" in summary
    assert "half had relapsed by **22 days** (95% CI 20 to 27)" in summary
    # one heading per section, in the order of the table of contents
    titles = [s.title for n, s in sample.items() if n not in ("report", "header", "contents")]
    assert titles == list(SECTION_TITLES.values())
    assert len(set(titles)) == len(titles)
    contents = sample["contents"].to_html()
    assert all(f'href="#{s.anchor}"' in contents for n, s in sample.items() if n not in ("report", "header",
                                                                                          "contents"))


@pytest.mark.slow
def test_tables_are_formatted_for_people(sample):
    cox = sample["relapse_models"].tables["relapse_cox"]
    assert cox.columns.tolist() == ["term", "hazard ratio (95% CI)", "p"]
    row = cox[cox["term"] == "Comorbid PTSD (yes vs no)"].iloc[0]
    assert re.fullmatch(r"\d\.\d\d \(\d\.\d\d to \d\.\d\d\)", row["hazard ratio (95% CI)"])
    assert row["p"] == "0.48"
    models = sample["responder_models"].tables["responder_models"]
    assert "Benzodiazepine use (yes vs no)" in set(models["term"])
    assert all(re.fullmatch(r"< 0\.001|0\.\d{2,3}|1\.00?", p) for p in models["p"])
    medians = sample["durability"].tables["durability_km_medians"]
    assert medians.loc[medians["infusion"] == "1", "median days (95% CI)"].iloc[0] == "22 (20 to 27)"


@pytest.mark.slow
def test_contradictions_are_explained_or_removed(sample):
    durability, adjuncts = sample["durability"], sample["adjuncts"]
    # two within-patient rapamycin hazard ratios on different populations: each place says why
    assert "27 patients who had infusions with and without rapamycin" in durability.text
    assert "(16 patients), so their hazard ratio differs" in durability.text
    assert "uses the 16 patients on no other listed adjunct" in adjuncts.text and "all 27 patients" in adjuncts.text
    # a median beyond where its curve is drawn is not shown (infusion 3: 37 days, drawn to fewer days)
    medians = durability.tables["durability_km_medians"].set_index("infusion")["median days (95% CI)"]
    assert medians["3"].startswith("beyond the drawn curve")
    km = durability.result.km
    drawn = km.table[(km.table["group"] == "3") & (km.table["at_risk"] >= 11)]["time"].max()
    assert km.median.set_index("group").loc["3", "median"] > drawn
    # the trajectory table counts patients, not assessments
    trajectory = sample["trajectories"].tables["trajectory"]
    report = sample["report"]
    week0 = report.dataset.assessments.merge(report.with_endpoint[["patient_id", "first_session_day"]])
    week0 = week0[(week0["instrument"] == "PHQ-9") & ((week0["day"] - week0["first_session_day"]) // 7 == 0)]
    assert trajectory.loc[trajectory["week"] == "0", "patients"].iloc[0] == str(week0["patient_id"].nunique())


@pytest.mark.slow
def test_figures_carry_publication_labels(sample):
    fig = sample["durability"].figures["durability_km"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["infusion 1", "infusion 2", "infusion 3", "infusion 4+"]
    assert "infusion 1" in texts and not any("=" in t for t in texts)
    waterfall = sample["waterfall"].figures["waterfall"].axes[0].get_legend().get_texts()
    assert [t.get_text() for t in waterfall][-2:] == ["50% line", "25% line"]
    flow = sample["attrition"].figures["attrition_flow"].axes[0]
    boxes = [t.get_text() for t in flow.texts]
    assert boxes[0] == "Patients in the dataset\nn = 494 + <11"
    assert boxes[-1] == "Analysed for relapse: followed after induction\nn = 284"
    assert len(flow.patches) >= 4                       # connected: arrows down and to each exclusion


def test_a_waterfall_would_give_hidden_categories_back_so_it_is_not_drawn(clinic):
    section = clinic["waterfall"]
    assert not section.figures and "share of bars above each line would give its size back" in section.text


def test_a_clinic_of_thirty_gets_its_report(clinic):
    text = _all_text(clinic)
    assert not DEVELOPER_TEXT.findall(text), DEVELOPER_TEXT.findall(text)[:5]
    t1 = clinic["table_one"].tables["table_one"]
    assert t1.columns.tolist() == ["characteristic", "level", "overall", "non-responder or partial", "responder",
                                   "smd"]
    assert t1.iloc[0][["overall", "non-responder or partial", "responder"]].tolist() == ["29", "14", "15"]
    # models that need more patients say so in one sentence
    assert clinic["responder_models"].text.startswith("The responder models are not shown: they need")
    assert clinic["durability"].text.startswith("Per-infusion durability is not shown")


def test_every_course_censored_by_boosters_is_explained_with_one_confirmation(clinic):
    relapse = clinic["relapse"]
    assert "No relapse was confirmed" in relapse.text and "boosts at the first worse score" in relapse.text
    # 8 of the 15 relapse on day 16, leaving 7: the curve stops before, and its median (16) is not shown
    assert ("With one confirming score, 15 of the 15 responders relapsed, their median beyond the drawn curve"
            in relapse.text)
    assert "16" not in relapse.text
    table = relapse.tables["relapse_km"]
    assert set(table["curve"]) == {"as defined", "relapse confirmed once"}
    legend = [t.get_text() for t in relapse.figures["relapse_km"].axes[0].get_legend().get_texts()]
    assert legend == ["as defined", "relapse confirmed once"]


def test_twelve_patients_get_a_report_with_every_category_hidden(tiny):
    text = _all_text(tiny)
    assert not DEVELOPER_TEXT.findall(text), DEVELOPER_TEXT.findall(text)[:5]
    assert tiny["table_one"].tables["table_one"].columns.tolist() == ["characteristic", "level", "overall"]
    assert "response categories are not shown separately" in tiny["table_one"].text
    assert tiny["response"].tables["response"]["patients"].tolist()[:3] == ["*", "*", "*"]
    assert "curve is not shown" in tiny["relapse"].text
    assert tiny["report"].key_figures() == {"patients": "12", "response": "suppressed", "remission": "suppressed",
                                            "median_days_to_relapse": "not shown"}


def test_each_figure_is_drawn_once_and_its_bytes_reused(clinic, tmp_path):
    section = clinic["relapse"]
    fig = section.figures["relapse_km"]
    calls = []
    original = fig.savefig

    def counting(*args, **kwargs):
        calls.append(kwargs.get("format"))
        return original(*args, **kwargs)

    fig.savefig = counting
    section._png.clear()
    html = section.to_html()
    written = section.save(tmp_path)
    assert calls.count("png") == 1
    png = (tmp_path / "figures" / "relapse_km.png").read_bytes()
    import base64

    assert base64.b64encode(png).decode() in html
    assert {p.suffix for p in written} == {".png", ".svg", ".csv"}


def test_a_report_writes_png_figures_and_other_formats_on_request(tmp_path):
    from analysis.report import ParameterError

    default = CohortReport(ReportParameters(sites=["site_C"], output_dir=str(tmp_path / "png")))
    default.waterfall()
    assert sorted(p.name for p in (tmp_path / "png" / "figures").iterdir()) == ["waterfall.png"]
    more = CohortReport(ReportParameters(sites=["site_C"], output_dir=str(tmp_path / "more"),
                                         figure_formats=["png", "svg", "pdf", "svg"]))
    more.waterfall()
    assert sorted(p.name for p in (tmp_path / "more" / "figures").iterdir()) == [
        "waterfall.pdf", "waterfall.png", "waterfall.svg"]
    assert (tmp_path / "png" / "figures" / "waterfall.png").read_bytes() == \
        (tmp_path / "more" / "figures" / "waterfall.png").read_bytes()
    with pytest.raises(ParameterError, match="figure_formats: unknown format 'jpg'; expected some of png, svg, pdf"):
        ReportParameters.checked({"figure_formats": ["png", "jpg"]})
