"""Privacy of cohort reports: no count from 1 to 10 in any output, directly or by subtraction;
no machine paths or data-folder file lists; every value escaped in HTML.

Fast tests close each route one by one (on the sample, the hand-built 30-patient clinic
and a 12-patient cohort); the slow ones render whole reports once per cohort (module-scoped)
and scan every file they write. Rendered tests are marked ``slow``.
"""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.report import CohortReport, ReportParameters
from analysis.report.privacy import (HIDDEN, Disclosure, format_percent, hide_at_risk_rows, sensitivity_table,
                                     suppress_adjunct_estimates, suppress_counts_in_text, suppress_table,
                                     suppress_table_one)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "data"
K = 11

#: words after which a number is a count of people or rows in prose
COUNT_WORDS = (r"patients?|responders?|relapsed|remitters?|sessions?|assessments?|intervals?|people|responded|"
               r"were|had|exposed|reference|events?|relapses?")
SMALL_IN_TEXT = re.compile(rf"(?<![\w.<-])(10|[1-9])\s+(?:{COUNT_WORDS})\b")
SMALL_N = re.compile(r"\bn\s*=\s*(10|[1-9])\b")
#: columns of the report's tables that hold no counts
NOT_COUNTS = {"week", "day", "infusion", "shape", "smd", "p", "level"}


# --- small helpers ---------------------------------------------------------------------------


def visible_text(page: str) -> str:
    """The text a reader sees in an HTML page: no styles, no image data, no tags."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<img[^>]*>", " ", page)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def small_counts_in_prose(text: str) -> list[str]:
    return [m.group(0) for m in SMALL_IN_TEXT.finditer(text)] + [m.group(0) for m in SMALL_N.finditer(text)]


def small_counts_in_table(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Cells of count columns that show 1 to 10 (alone, or as ``n (x%)``)."""
    found = []
    for col in table.columns:
        if str(col).split(" (")[0] in NOT_COUNTS or str(col).startswith(("median", "mean", "still responding")):
            continue
        for v in table[col].astype(str):
            m = re.fullmatch(r"(\d+)(?: \([\d.]+%\))?", v.strip())
            if m and 1 <= int(m.group(1)) < K:
                found.append((str(col), v))
    return found


PATIENT_WORDS = r"patients?|responders?|people|remitters?|responded|were followed"


def patient_counts_in_prose(text: str) -> set[int]:
    """Numbers a reader takes for a number of patients: before a word naming patients, or ``n = N``."""
    found = {int(m.group(1)) for m in re.finditer(rf"(?<![\w.<-])(\d+)\s+(?:{PATIENT_WORDS})\b", text)}
    return found | {int(m.group(1)) for m in re.finditer(r"\bn\s*=\s*(\d+)\b", text)}


def patient_counts_in_table(table: pd.DataFrame) -> set[int]:
    """Cells of columns counting patients (not sessions, assessments, intervals or events)."""
    found = set()
    for col in table.columns:
        name = str(col).lower()
        if not re.search(r"patients|overall|responder|partial|^n$|at risk|remaining|patients in|excluded|on it|"
                         r"reference|followed|with endpoint", name) or re.search(r"sessions|assessments|intervals",
                                                                                 name):
            continue
        for v in table[col].astype(str):
            m = re.match(r"(\d+)(?: \(|$)", v.strip())
            if m:
                found.add(int(m.group(1)))
    return found


# --- the rule and its tools ------------------------------------------------------------------


def test_a_second_round_of_suppression_cannot_be_solved():
    """n = 13 with female 11 shown and male, other hidden would make both 1 (0 shows as 0)."""
    sex = pd.DataFrame({"n": [11, 1, 1]}, index=["female", "male", "other"]).T
    assert suppress_table(sex, K, row_totals=True, column_totals=False).loc["n"].all()
    # two hidden cells whose sum is at least k protect each other
    fine = pd.DataFrame({"n": [40, 6, 7]}, index=["female", "male", "other"]).T
    assert suppress_table(fine, K, row_totals=True, column_totals=False).loc["n"].tolist() == [False, True, True]
    # one hidden cell in a row with a shown total is given back: another is hidden with it
    grid = pd.DataFrame({"yes": [40, 3], "no": [25, 30]}, index=["a", "b"])
    hide = suppress_table(grid, K)
    for axis in (0, 1):
        assert ((hide.sum(axis=axis) == 0) | (hide.sum(axis=axis) >= 2)).all()


def test_every_hidden_cell_shows_the_same_mark():
    """"<11" for small cells and "suppressed" for their protectors would say which is which."""
    from analysis.report.privacy import masked_counts

    t = pd.DataFrame({"site": ["a", "b", "c"], "patients": [120, 4, 30]})
    shown = masked_counts(t, ["patients"], K, row_totals=False, column_totals=True)["patients"].tolist()
    assert shown == ["120", HIDDEN, HIDDEN]


def test_percentages_that_give_back_a_small_count_are_hidden():
    assert format_percent(5, 100, K) == "suppressed"          # of a small count
    assert format_percent(95, 100, K) == "suppressed"         # its complement is small
    assert format_percent(50, 100, K) == "50.0%"
    d = Disclosure(K, analysed=100, categories={"non-responder": 30, "partial": 5, "responder": 65}, followed=60,
                   remitters=40)
    assert [d.category_percent(c) for c in ("non-responder", "partial", "responder")] == ["suppressed"] * 2 + ["65.0%"]


def test_numbers_inside_names_are_never_suppressed():
    note = "imbalance: max |SMD| 0.4 (baseline_gad7); few events in exposed (7); 3 rows dropped; PHQ-9 and GAD-7"
    assert suppress_counts_in_text(note, K) == ("imbalance: max |SMD| 0.4 (baseline_gad7); few events in exposed "
                                                "(<11); <11 rows dropped; PHQ-9 and GAD-7")


def test_table_one_blocks_stay_closed_across_groups_and_the_overall_column():
    from analysis import table_one

    rows = ([("a", "female")] * 30 + [("a", "male")] * 20 + [("a", "other")] * 1
            + [("b", "female")] * 25 + [("b", "male")] * 24)
    data = pd.DataFrame(rows, columns=["g", "sex"])
    table = suppress_table_one(table_one(data, "g", ["sex"]), K)
    other = table[table["level"] == "other"].iloc[0]
    assert other["a"] == HIDDEN and other["overall"] == HIDDEN
    # the column of group a and the overall column each hide a second cell, and b (0 other) may show
    assert (table["a"] == HIDDEN).sum() >= 2 and (table["overall"] == HIDDEN).sum() >= 2


def test_kaplan_meier_rows_past_the_at_risk_cut_off_show_no_survival():
    at = pd.DataFrame({"group": "all", "time": [0.0, 28.0, 56.0], "at_risk": [40, 12, 3], "events": [0, 20, 5],
                       "survival": [1.0, 0.6, 0.536], "ci_lower": [1.0, 0.4, 0.2], "ci_upper": [1.0, 0.7, 0.8]})
    shown = hide_at_risk_rows(at, K)
    assert shown.loc[2, "at_risk"] == "<11" and pd.isna(shown.loc[2, "survival"]) and shown.loc[2, "events"] == ""
    assert shown.loc[1, "survival"] == 0.6


def test_the_sensitivity_table_compares_every_row_with_every_other():
    counts = pd.DataFrame({
        "analysis": ["as defined", "on MADRS"], "instrument": ["PHQ-9", "MADRS"],
        "with_endpoint": [494, 490], "responders": [284, 282], "remitters": [153, 120], "followed": [284, 282],
        "median_days": [22.0, 25.0]})
    table = sensitivity_table(counts, K)
    assert table.loc[1, "patients with endpoint"] == "suppressed" and table.loc[1, "response"] == "suppressed"
    assert table.loc[1, "followed after induction"] == "suppressed"
    assert table.loc[1, "median days to relapse"] == "25"


def test_adjunct_estimates_that_give_back_hidden_events_are_hidden():
    """Alprazolam on the sample: 18 exposed, events hidden, reference 219/355: the crude risk
    difference -0.228 would give back 7 responders, the remission odds ratio 1 remitter."""
    est = pd.DataFrame({
        "adjunct": ["drug_alprazolam"] * 3 + ["drug_lorazepam"],
        "measure": ["response_or_crude", "response_rd_crude", "response_or_adjusted", "response_or_crude"],
        "outcome": ["response", "response (risk difference)", "response", "response"],
        "n_exposed": [18, 18, 18, 34], "n_reference": [355] * 4, "events_exposed": [7, 7, 7, 16],
        "events_reference": [219] * 4})
    assert suppress_adjunct_estimates(est, K).tolist() == [True, True, True, False]


# --- the reports' decisions, on real cohorts (fast: no rendering) -----------------------------------


@pytest.fixture(scope="module")
def sample_report():
    return CohortReport(ReportParameters())


@pytest.fixture(scope="module")
def clinic_report():
    return CohortReport(ReportParameters(data=str(DATA / "clinic30"), name="clinic30"))


def test_key_figures_show_the_total_the_tables_show(sample_report):
    """The flow hides the dataset's 500 as "494 + <11": no output may print 500."""
    report = sample_report
    assert len(report.dataset.patients) == 500 and len(report.with_endpoint) == 494
    figures = report.key_figures()
    assert figures["patients"] == "494"
    flow = report.attrition()
    shown = " ".join(flow.tables["attrition"].astype(str).to_numpy().ravel())
    assert "494 + <11" in shown and "500" not in shown
    assert "500" not in report.data_summary().text and "500" not in report.summary().text


def test_adjunct_tables_keep_names_and_hide_recoverable_estimates(sample_report):
    section = sample_report.adjuncts()
    detail = section.tables["adjunct_estimates"]
    assert not detail.astype(str).apply(lambda c: c.str.contains("gad<")).any().any()
    assert "baseline_gad7" in " ".join(detail["design"].astype(str))
    alprazolam = detail[(detail["adjunct"] == "drug_alprazolam") & detail["outcome"].str.startswith("response")]
    assert alprazolam["estimate"].isna().all() and alprazolam["ci_lower"].isna().all()
    effects = section.tables["adjunct_effects"].replace("", np.nan).ffill()
    row = effects[(effects["adjunct"] == "Alprazolam") & (effects["outcome"] == "Response, risk difference")]
    assert row.iloc[0]["crude (95% CI)"] == "not shown (small counts)"


def test_no_population_beside_a_subset_differing_by_a_small_count(sample_report):
    """Responder models no longer print "Among 491 patients" beside a "left out (<11)"."""
    section = sample_report.responder_models()
    models = section.result
    if models.n_dropped:
        assert str(models.n_obs) not in section.text


def test_small_counts_never_reach_prose_or_tables(clinic_report):
    report = clinic_report
    for name in ("summary", "data_summary", "attrition", "table_one", "trajectories", "waterfall", "response",
                 "responder_models", "relapse", "relapse_models", "durability", "adjuncts", "sensitivity"):
        section = getattr(report, name)()
        assert not small_counts_in_prose(section.text), (name, section.text)
        for key, table in section.tables.items():
            assert not small_counts_in_table(table), (name, key, table)
        for fig in section.figures.values():
            texts = [t.get_text() for ax in fig.axes for t in ax.texts]
            assert not [t for t in texts if re.fullmatch(r"n = ([1-9]|10)", t.split("\n")[-1].strip())], (name, texts)


# --- rendered reports: every output scanned --------------------------------------------------------

RENDERED = {
    "sample": dict(),
    "site_A": dict(sites=["site_A"]),
    "clinic30": dict(data=str(DATA / "clinic30")),
    "cohort12": dict(data=str(DATA / "cohort12")),
}


@pytest.fixture(scope="module", params=list(RENDERED))
def rendered(request, tmp_path_factory):
    from analysis.report.render import render_report

    name = request.param
    params = ReportParameters(name=name, **RENDERED[name])
    result = render_report(params, tmp_path_factory.mktemp("privacy") / name)
    return name, params, result


def _populations(params: ReportParameters) -> dict[str, int]:
    """The report's populations, unsuppressed: two of them differing by 1 to 10 must never both show."""
    from analysis.report.selection import select_cohort

    full = analysis.load_dataset(params.data_path())
    ds = select_cohort(full, params)
    out = analysis.derive_outcomes(ds, params.instrument, **params.definitions)
    with_endpoint = out.courses[out.courses["category"].notna()]
    cats = with_endpoint["category"].astype(str).value_counts()
    return {"patients in the data": len(ds.patients), "courses": len(out.courses), "analysed": len(with_endpoint),
            "responders": int(cats.get("responder", 0)), "followed": len(out.relapse),
            "remitters": int(with_endpoint["remission"].fillna(False).sum())}


def _outputs(out: Path) -> dict[str, str]:
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in (".html", ".csv", ".json", ".txt"):
            files[str(path.relative_to(out))] = path.read_text(encoding="utf-8")
    return files


@pytest.mark.slow
def test_rendered_reports_show_no_small_count(rendered):
    name, params, result = rendered
    assert result.status == "ok", result.error
    out = result.out
    page = visible_text((out / "report.html").read_text(encoding="utf-8"))
    assert not small_counts_in_prose(page), (name, small_counts_in_prose(page))
    for path in sorted((out / "tables").glob("*.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert not small_counts_in_table(table), (name, path.name, small_counts_in_table(table))
    figures = json.loads((out / "key_figures.json").read_text())
    assert not re.fullmatch(r"([1-9]|10)", str(figures["patients"]))
    # the executed notebook's outputs are the report's: the same text
    nb = json.loads((out / "cohort_report.ipynb").read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", (name, "".join(output.get("text", "")))
            text = "".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", ""))
            assert not small_counts_in_prose(text), (name, small_counts_in_prose(text))


@pytest.mark.slow
def test_rendered_reports_show_no_two_populations_that_differ_by_a_small_count(rendered):
    name, params, result = rendered
    out = result.out
    shown = patient_counts_in_prose(visible_text((out / "report.html").read_text(encoding="utf-8")))
    for path in (out / "tables").glob("*.csv"):
        shown |= patient_counts_in_table(pd.read_csv(path, dtype=str, keep_default_na=False))
    shown |= {int(v) for v in json.loads((out / "key_figures.json").read_text()).values() if str(v).isdigit()}
    pops = _populations(params)
    for a, na in pops.items():
        for b, nb in pops.items():
            if a < b and 1 <= abs(na - nb) < K:
                assert not (na in shown and nb in shown), (name, a, na, b, nb)


@pytest.mark.slow
def test_rendered_reports_hold_no_machine_path_or_file_list(rendered):
    name, params, result = rendered
    out = result.out
    forbidden = [str(ROOT), str(out.parent), "/tmp/", "/home/", "ground_truth.json", "README.md"]
    for rel, text in _outputs(out).items():
        page = visible_text(text) if rel.endswith(".html") else text
        for bad in forbidden:
            assert bad not in page, (name, rel, bad)
    provenance = json.loads((out / "provenance.json").read_text())
    assert set(provenance["data"]["sha256"]) <= {"patients.csv", "sessions.csv", "assessments.csv",
                                                  "medications.csv", "instruments.toml"}
    assert all(len(h) == 64 for h in provenance["data"]["sha256"].values())
    nb = json.loads((out / "cohort_report.ipynb").read_text())
    for cell in nb["cells"]:
        outputs = json.dumps(cell.get("outputs", []))
        assert str(ROOT) not in outputs and str(out.parent) not in outputs, name


@pytest.mark.slow
def test_executed_notebook_metadata_holds_no_machine_path(rendered):
    name, params, result = rendered
    text = (result.out / "cohort_report.ipynb").read_text() + (result.out / "result.json").read_text()
    assert str(result.out.parent) not in text and str(ROOT) not in text


# --- markup in every kind of value -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_data(tmp_path_factory):
    """The 30-patient clinic with markup in its sites, diagnoses and an instrument's name."""
    folder = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(DATA / "clinic30", folder)
    patients = pd.read_csv(folder / "patients.csv")
    patients.loc[:14, "site"] = "<script>alert(1)</script>"
    patients.loc[15:, "site"] = "north & <b>south</b>"
    patients.loc[patients["diagnosis"] == "MDD", "diagnosis"] = '"><img src=x onmouseover="alert(2)">'
    patients.to_csv(folder / "patients.csv", index=False)
    (folder / "instruments.toml").write_text('["<b>MOOD</b>"]\nmin_score = 0\nmax_score = 27\nremission_max = 4\n'
                                             'domain = "depression"\n')
    scores = pd.read_csv(folder / "assessments.csv")
    mood = scores[scores["instrument"] == "PHQ-9"].assign(instrument="<b>MOOD</b>")
    pd.concat([scores, mood]).to_csv(folder / "assessments.csv", index=False)
    return folder


TITLE = '<img src=x onerror="alert(3)"> Clinic & co'


def _assert_inert(page: str) -> None:
    assert "<script" not in page.lower()
    assert "<img src=x" not in page and 'onmouseover="' not in page and 'onerror="' not in page
    assert "<b>MOOD</b>" not in page and "<b>south</b>" not in page


def test_markup_in_values_and_parameters_is_escaped_in_every_section(hostile_data):
    report = CohortReport(ReportParameters(data=str(hostile_data), title=TITLE))
    page = ""
    for name in ("header", "summary", "contents", "methods", "data_summary", "attrition", "table_one", "response",
                 "sensitivity"):
        page += getattr(report, name)().to_html()
    _assert_inert(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page                 # shown as text
    assert "&lt;b&gt;MOOD&lt;/b&gt;" in page and "Clinic &amp; co" in page


@pytest.mark.slow
def test_markup_in_values_and_parameters_is_escaped_in_the_rendered_report(hostile_data, tmp_path):
    from analysis.report.render import render_report

    result = render_report(ReportParameters(data=str(hostile_data), title=TITLE, name="hostile"), tmp_path / "h")
    assert result.status == "ok", result.error
    _assert_inert((result.out / "report.html").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_batch_index_lists_only_what_the_reports_show(tmp_path):
    """The index repeats each report's key figures: the analysis population, never the dataset's total."""
    from analysis.report.batch import run_batch

    spec = tmp_path / "spec.toml"
    spec.write_text(f'[[cohort]]\nname = "clinic30"\ndata = "{DATA / "clinic30"}"\n\n'
                    f'[[cohort]]\nname = "cohort12"\ndata = "{DATA / "cohort12"}"\n')
    results = run_batch(spec, tmp_path / "out", workers=1, progress=False)
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    index = {r["name"]: r for r in json.loads((tmp_path / "out" / "index.json").read_text())}
    assert index["clinic30"]["key_figures"]["patients"] == "29"         # 30 in the data, 1 without an endpoint
    assert index["cohort12"]["key_figures"]["response"] == "suppressed"
    page = visible_text((tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    assert not small_counts_in_prose(page) and " 30 " not in page
    assert str(tmp_path) not in (tmp_path / "out" / "index.json").read_text()   # folder names, not paths
