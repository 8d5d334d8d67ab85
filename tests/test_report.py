"""Cohort reports: parameters, rendering end to end, batches, byte-identical figures, suppression.

Renders and other long tests are marked ``slow`` (``pytest -m "not slow"`` leaves them out)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.cli import main
from analysis.report import ParameterError, ReportParameters, merge_small_steps, suppress_table
from analysis.report.paper import FigureParameters
from analysis.report.privacy import format_count, format_percent

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def parameters_cell(name: str) -> dict:
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{name}: exactly one cell tagged 'parameters'"
    values = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        assert isinstance(node, ast.Assign), f"{name}: the parameters cell holds only assignments of literals"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


# --- notebooks ------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook, model", [("cohort_report", ReportParameters), ("paper_figures", FigureParameters)])
def test_parameters_cell_matches_the_model(notebook, model):
    cell = parameters_cell(notebook)
    defaults = model().model_dump()
    assert cell == defaults


@pytest.mark.parametrize("name", ["cohort_report", "paper_figures", "explore"])
def test_notebooks_are_committed_without_outputs_and_match_their_scripts(name):
    import jupytext

    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    paired = jupytext.read(NOTEBOOKS / f"{name}.py")
    assert [c.source for c in paired.cells] == ["".join(c["source"]) for c in nb["cells"]]


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"min_cel_count": 5}, "min_cel_count: unknown parameter"),
        # text is parsed (papermill passes text): only what cannot be read as the type fails
        ({"min_cell_count": "eleven"}, "min_cell_count: expected a whole number, got 'eleven'"),
        ({"min_cell_count": [1]}, "min_cell_count: Input should be a valid integer"),
        ({"min_cell_count": 0}, "min_cell_count: must be at least 1"),
        ({"conf_level": 1.5}, "conf_level: must be at least 0.5 and below 1"),
        ({"instrument": "HADS"}, "instrument: unknown instrument 'HADS'"),
        ({"routes": ["rectal"]}, "routes: unknown route(s) ['rectal']"),
        ({"definitions": {"relapse_confirmation": 2}}, "definitions: unknown definition(s) ['relapse_confirmation']"),
        ({"data": "/no/such/folder"}, "data: folder does not exist"),
        ({"name": "a/b"}, "name: must be a plain folder name"),
        ({"sites": 5}, "sites: Input should be a valid list"),
    ],
)
def test_bad_parameters_are_clear_errors(values, message):
    with pytest.raises(ParameterError) as info:
        ReportParameters.checked(values)
    assert message in str(info.value)


def test_bad_parameters_fail_fast_on_the_command_line(tmp_path, capsys):
    code = main(["report", "--out", str(tmp_path / "r"), "-p", "min_cell_count", "eleven"])
    assert code == 2
    assert "min_cell_count: expected a whole number, got 'eleven'" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path / "r"), "-p", "colour", "red"]) == 2
    assert "colour: unknown parameter" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()     # nothing started


# --- suppression ------------------------------------------------------------------------------


def test_format_count_and_percent():
    assert [format_count(n, 11) for n in (0, 1, 10, 11, 250)] == ["0", "<11", "<11", "11", "250"]
    assert format_percent(5, 100, 11) == "suppressed" and format_percent(50, 100, 11) == "50.0%"


def test_complementary_suppression_blocks_subtraction():
    counts = pd.DataFrame({"iv": [120, 40, 3], "im": [30, 12, 20]}, index=["a", "b", "c"])
    hide = suppress_table(counts, 11)
    assert hide.loc["c", "iv"]                     # primary: 3
    assert hide["iv"].sum() >= 2                   # its column total is shown: a second cell hidden
    assert hide.loc["c"].sum() >= 2                # its row total is shown: a second cell hidden
    for axis in (0, 1):
        assert ((hide.sum(axis=axis) == 0) | (hide.sum(axis=axis) >= 2)).all()


def test_small_attrition_steps_are_merged():
    steps = pd.DataFrame({"step": ["all", "a", "b", "c"], "n_in": [500, 500, 497, 300],
                          "n_excluded": [0, 3, 197, 4], "n_remaining": [500, 497, 300, 296], "reason": ["", "x", "y", "z"]})
    shown = merge_small_steps(steps, 11)
    assert shown["step"].tolist() == ["all", "a; b; c"]
    assert shown.iloc[1][["n_in", "n_excluded", "n_remaining"]].tolist() == ["500", "204", "296"]
    lone = merge_small_steps(steps.iloc[:2].assign(n_remaining=[500, 497]), 11)
    assert lone.iloc[0]["n_in"] == "497 + <11" and lone.iloc[0]["n_excluded"] == "<11"


@pytest.fixture(scope="module")
def small_site_data(tmp_path_factory):
    """A cohort with a small subgroup: one site with few patients."""
    sim = analysis.simulate(n_patients=160, seed=3, n_sites=3, site_size_decay=4)
    folder = tmp_path_factory.mktemp("small") / "data"
    sim.write(folder)
    return folder


def _shown_counts(table: pd.DataFrame, columns) -> list[int]:
    values = []
    for col in columns:
        if col in table:
            for v in table[col].astype(str):
                if re.fullmatch(r"\d+", v):
                    values.append(int(v))
                m = re.fullmatch(r"(\d+) \(", v[: v.find("(") + 1] if "(" in v else "")
                if m:
                    values.append(int(m.group(1)))
    return values


@pytest.mark.slow
def test_small_cells_never_show_in_report_tables(small_site_data, tmp_path):
    from analysis.report import CohortReport

    params = ReportParameters(data=str(small_site_data), name="small")
    report = CohortReport(params, output_dir=tmp_path)
    sites = report.dataset.patients["site"].value_counts()
    assert sites.min() < 11, "the fixture must have a small site"
    for method in ("data_summary", "attrition", "table_one", "response", "relapse", "adjuncts", "sensitivity"):
        getattr(report, method)()
    tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in (tmp_path / "tables").glob("*.csv")}
    count_columns = {
        "patients_by_site": ["patients"], "sessions_by_route": ["patients", "sessions"],
        "assessments_by_instrument": ["patients", "assessments"],
        "attrition": ["patients in", "excluded", "remaining"], "response": ["patients"],
        "table_one": [c for c in tables.get("table_one", pd.DataFrame()).columns if c not in ("characteristic", "level", "smd")],
        "sensitivity": ["patients with endpoint", "followed after induction"],
        "adjunct_counts": ["patients on it", "patients on no adjunct", "within-patient comparison"],
        "adjunct_balance": ["on it", "reference"],
        "adjunct_estimates": ["n_exposed", "n_reference", "events_exposed", "events_reference"],
    }
    for name, columns in count_columns.items():
        if name not in tables:      # a section with nothing to compare writes no table
            continue
        shown = _shown_counts(tables[name], columns)
        assert not [v for v in shown if 1 <= v < 11], (name, tables[name])
    assert any(re.search(r"<11|\*", " ".join(t.astype(str).to_numpy().ravel())) for t in tables.values())


def test_sensitivity_counts_differing_by_a_small_count_are_suppressed():
    from analysis.report.privacy import sensitivity_table

    counts = pd.DataFrame({
        "analysis": ["as defined", "response at 40%", "on MADRS"], "instrument": ["PHQ-9", "PHQ-9", "MADRS"],
        "with_endpoint": [200, 200, 150], "responders": [100, 104, 60], "remitters": [50, 50, 30],
        "followed": [100, 104, 60], "median_days": [30.0, np.nan, 21.4]})
    table = sensitivity_table(counts, 11)
    assert table.columns.tolist() == ["analysis", "instrument", "patients with endpoint", "response", "remission",
                                      "followed after induction", "median days to relapse"]
    assert table.loc[0].tolist() == ["as defined", "PHQ-9", "200", "50.0%", "25.0%", "100", "30"]
    # 104 - 100 = 4 responders would be recovered by subtraction; remission is unchanged (0 may show)
    assert table.loc[1].tolist() == ["response at 40%", "PHQ-9", "200", "suppressed", "25.0%", "suppressed",
                                     "not reached"]
    # another instrument's patients are not a subset of the first row's: nothing to subtract
    assert table.loc[2, "response"] == "40.0%" and table.loc[2, "followed after induction"] == "60"


# --- sections -----------------------------------------------------------------------------------


def test_limitations_take_the_model_results_as_arguments():
    """No section leaves results on the report for another to pick up: limitations are noted
    from the model results passed in."""
    from analysis.report import CohortReport
    from analysis.report.analyses import RelapseModels, ResponderModels

    report = CohortReport(ReportParameters())
    plain = report.limitations().values["notes"]
    assert not any("proportional" in n for n in plain)
    flagged = report.limitations(responder_models=ResponderModels([], 494, brant_p=0.01),
                                 relapse_models=RelapseModels([], 284, 123, ph_p=0.02)).values["notes"]
    assert flagged[: len(plain)] == plain
    assert [n.split(" (")[0] for n in flagged[len(plain):]] == [
        "The proportional-odds assumption of the category model is doubtful",
        "The Cox model of relapse after induction may violate proportional hazards"]
    # results that pass their assumption tests add nothing
    passing = report.limitations(responder_models=ResponderModels([], 494, brant_p=0.5),
                                 relapse_models=RelapseModels([], 284, 123, ph_p=0.5))
    assert passing.values["notes"] == plain


def test_cohort_selection_is_shared_by_the_report_and_the_batch():
    import analysis.report.batch as batch
    import analysis.report.cohort as cohort
    from analysis.report import selection

    assert cohort.select_cohort is selection.select_cohort and cohort.CohortError is selection.CohortError
    assert "from .cohort" not in Path(batch.__file__).read_text()     # the batch checks cohorts without the report


def test_the_batch_spec_of_the_docs_is_a_valid_batch(tmp_path):
    from analysis.report.batch import load_spec, plan_batch

    (block,) = re.findall(r"^```toml\n(.*?)^```", (ROOT / "docs" / "reports.md").read_text(), re.M | re.S)
    spec = tmp_path / "spec.toml"
    spec.write_text(block)
    jobs = plan_batch(load_spec(spec), tmp_path)
    assert [(j.name, j.error) for j in jobs] == [("site_A", None), ("iv_only", None)]


# --- rendering ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from analysis.report.render import render_report

    out = tmp_path_factory.mktemp("report") / "sample"
    return render_report(ReportParameters(), out)


@pytest.mark.slow
def test_sample_report_renders_end_to_end(rendered):
    assert rendered.status == "ok", rendered.error
    out = rendered.out
    for name in ("cohort_report.ipynb", "report.html", "provenance.json", "key_figures.json"):
        assert (out / name).exists(), name
    assert {p.name for p in (out / "figures").glob("*.png")} >= {"relapse_km.png", "waterfall.png", "attrition_flow.png"}
    assert (out / "tables" / "response.csv").exists()
    provenance = json.loads((out / "provenance.json").read_text())
    assert set(provenance) >= {"package_version", "git", "data", "parameters", "python", "dependencies", "timings_seconds"}
    assert set(provenance["data"]["sha256"]) >= {"patients.csv", "sessions.csv", "assessments.csv"}
    assert provenance["parameters"]["min_cell_count"] == 11
    # the key figures are the derivation's numbers
    outcomes = analysis.derive_outcomes(analysis.load_dataset(ROOT / "data" / "sample"))
    with_endpoint = outcomes.courses[outcomes.courses.category.notna()]
    expected = f"{100 * (with_endpoint.category == 'responder').mean():.1f}%"
    assert rendered.key_figures["response"] == expected


@pytest.mark.slow
def test_html_is_self_contained_with_provenance_footer(rendered):
    page = (rendered.out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<script|<link|@import", page, re.IGNORECASE)
    assert page.count("data:image/png;base64") >= 4
    assert "Provenance" in page and "ketamine-outcomes" in page and "sha256" in page
    assert "import analysis" not in page and "ReportParameters" not in page     # code hidden


@pytest.mark.slow
def test_batch_with_an_invalid_cohort_and_skipping(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[defaults]\ninstrument = "PHQ-9"\n\n'
        '[[cohort]]\nname = "site_A"\nsites = ["site_A"]\n\n'
        '[[cohort]]\nname = "iv"\nroutes = ["iv"]\n\n'
        '[[cohort]]\nname = "nowhere"\nsites = ["site_Z"]\n'
    )
    out = tmp_path / "out"
    assert main(["batch", str(spec), "--out", str(out), "--workers", "2"]) == 1
    index = json.loads((out / "index.json").read_text())
    assert [(r["name"], r["status"]) for r in index] == [("site_A", "ok"), ("iv", "ok"), ("nowhere", "invalid")]
    assert index[2]["error"].startswith("row 3: ") and "site_Z" in index[2]["error"]
    assert not list(out.glob(".partial-*")) and not list(out.glob(".replaced-*"))
    assert json.loads((out / "site_A" / "result.json").read_text())["status"] == "ok"
    page = (out / "index.html").read_text()
    assert all(name in page for name in ("site_A", "iv", "nowhere")) and 'href="site_A/report.html"' in page
    assert (out / "site_A" / "report.html").exists() and (out / "iv" / "report.html").exists()
    # unchanged: skipped; forced: rendered again
    assert main(["batch", str(spec), "--out", str(out), "--workers", "2"]) == 1
    index = json.loads((out / "index.json").read_text())
    assert [r["status"] for r in index] == ["skipped", "skipped", "invalid"]
    assert index[0]["key_figures"]["patients"]


def test_batch_spec_formats_and_timeout(tmp_path, monkeypatch):
    import tempfile

    from analysis.report.batch import load_spec, run_batch

    csv = tmp_path / "spec.csv"
    csv.write_text("name,sites,min_cell_count\nA,site_A,11\nAB,\"site_A,site_B\",\n")
    rows = load_spec(csv)
    assert rows == [{"name": "A", "sites": ["site_A"], "min_cell_count": 11}, {"name": "AB", "sites": ["site_A", "site_B"]}]
    yaml = tmp_path / "spec.yaml"
    yaml.write_text("defaults:\n  min_cell_count: 5\ncohorts:\n  - name: A\n    sites: [site_A]\n")
    assert load_spec(yaml) == [{"min_cell_count": 5, "name": "A", "sites": ["site_A"]}]
    sockets = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))      # this test's own: kernel socket folders go here
    monkeypatch.setattr(tempfile, "tempdir", str(sockets))
    results = run_batch(yaml, tmp_path / "out", workers=1, timeout=0.5, progress=False)
    assert [(r.status, r.error) for r in results] == [("timeout", "stopped after 0.5 s (--timeout)")]
    # nothing half-done is left behind: no temporary folder, no socket folder; the folder says what happened
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["A", "index.html", "index.json"]
    assert json.loads((tmp_path / "out" / "A" / "result.json").read_text())["status"] == "timeout"
    assert not (tmp_path / "out" / "A" / "report.html").exists()
    assert not list(sockets.iterdir())
    sockets.rmdir()


@pytest.mark.slow
def test_paper_figures_are_byte_identical(tmp_path):
    assert main(["figures", "--out", str(tmp_path / "one")]) == 0
    assert main(["figures", "--out", str(tmp_path / "two")]) == 0
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert one == two
    # four figures at both column widths, in three formats
    assert {Path(n).suffix for n in one} == {".pdf", ".svg", ".png"} and len(one) == 24
    assert {Path(n).stem.rsplit("_", 1)[1] for n in one} == {"single", "double"}


@pytest.mark.slow
def test_paper_figures_in_tiff_are_byte_identical_at_300_dpi(tmp_path):
    from PIL import Image

    for run in ("one", "two"):
        assert main(["figures", "--out", str(tmp_path / run), "-p", "formats", "tiff", "-p", "widths", "single"]) == 0
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert one == json.loads((tmp_path / "two" / "manifest.json").read_text()) and len(one) == 4
    with Image.open(tmp_path / "one" / "figures" / "figure2_relapse_single.tiff") as im:
        assert round(im.info["dpi"][0]) == 300 and im.width == round(3.5 * 300)


@pytest.mark.slow
def test_plain_papermill_runs_the_notebook(tmp_path):
    """Users may run the notebook with papermill itself, parameters given on its command line."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("papermill")
    out = tmp_path / "out"
    run = subprocess.run(
        [str(exe), str(NOTEBOOKS / "cohort_report.ipynb"), str(tmp_path / "executed.ipynb"),
         "-p", "output_dir", str(out), "-p", "min_cell_count", "11", "-y", "sites: [site_B]", "--no-progress-bar"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads((out / "key_figures.json").read_text())
    assert figures["patients"] and (out / "tables" / "response.csv").exists()
    bad = subprocess.run(
        [str(exe), str(NOTEBOOKS / "cohort_report.ipynb"), str(tmp_path / "bad.ipynb"), "-p", "min_cell_count", "0",
         "--no-progress-bar"], capture_output=True, text=True, timeout=600,
    )
    assert bad.returncode != 0 and "min_cell_count: must be at least 1" in bad.stderr


def test_the_report_command_hands_its_validated_data_and_cohort_to_the_kernel(tmp_path, monkeypatch, capsys):
    """``ketamine-outcomes report`` validates the data before the kernel starts; the kernel
    reads them (and the cohort's patients) from the command's private cache instead of
    validating again, and the cache is gone when the command ends."""
    from analysis.report import render
    from analysis.report.cache import ENV_VAR, DatasetCache, dataset_digest
    from analysis.report.render import RenderResult
    from analysis.report.selection import load_cohort, select_cohort
    from analysis.report.zygote import ENV_VAR as ZYGOTE_VAR

    seen = {}

    def fake_render(params, out, **kwargs):
        root = Path(os.environ[ENV_VAR])
        seen["root"], seen["mode"] = root, root.stat().st_mode & 0o777
        seen["entries"] = sorted(p.name for p in root.iterdir())
        seen["zygote"] = os.environ.get(ZYGOTE_VAR)             # the kernel is forked from the command's zygote
        if params.sites:                                        # a cohort's report reads its cohort only
            monkeypatch.setattr("analysis.report.selection.load_full_dataset",
                                lambda p: pytest.fail("read the whole dataset"))
        monkeypatch.setattr("analysis.report.cache.load_dataset", lambda folder: pytest.fail("validated again"))
        seen["cohort"] = load_cohort(params)                    # what the kernel's first cell does
        return RenderResult(params.name, Path(out), "ok", 0.1)

    monkeypatch.setattr(render, "render_report", fake_render)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(ZYGOTE_VAR, raising=False)
    sample = analysis.sample_path()
    assert main(["report", "--data", str(sample), "--out", str(tmp_path / "r"), "-p", "sites", "site_B"]) == 0
    cache = DatasetCache(seen["root"])
    assert seen["mode"] == 0o700 and seen["entries"] == [      # the cohort's patients only
        cache.cohort_entry(sample, {"sites": ["site_B"], "routes": [], "periods": [], "period_column": None}).name]
    expected = select_cohort(analysis.load_dataset(sample), ReportParameters(data=str(sample), sites=["site_B"]))
    assert seen["cohort"].equals(expected) and len(seen["cohort"].patients) == 155
    assert not seen["root"].exists() and ENV_VAR not in os.environ
    # without filters the whole validated dataset is handed over
    monkeypatch.undo()
    monkeypatch.setattr(render, "render_report", fake_render)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert main(["report", "--data", str(sample), "--out", str(tmp_path / "r")]) == 0
    assert seen["entries"] == [dataset_digest(sample)] and len(seen["cohort"].patients) == 500
    assert not seen["root"].exists() and ENV_VAR not in os.environ
    assert seen["zygote"] and ZYGOTE_VAR not in os.environ   # a later render here forks none from the stopped one
