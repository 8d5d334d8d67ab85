"""A render hands the kernel no path of this machine: the data folder comes by the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.report import ParameterError, ReportParameters
from analysis.report.render import DATA_VARIABLE

ROOT = Path(__file__).resolve().parents[1]


def test_data_may_name_an_environment_variable(monkeypatch):
    monkeypatch.setenv(DATA_VARIABLE, str(ROOT / "data" / "sample"))
    assert ReportParameters.checked({"data": f"${DATA_VARIABLE}"}).data == str(ROOT / "data" / "sample")
    assert ReportParameters.checked({"data": "${%s}" % DATA_VARIABLE}).data_path() == ROOT / "data" / "sample"
    monkeypatch.setenv("KO_TEST_ROOT", str(ROOT))
    assert ReportParameters.checked({"data": "$KO_TEST_ROOT/data/sample"}).data_path().name == "sample"


def test_an_unset_variable_is_an_error_naming_it(monkeypatch):
    monkeypatch.delenv("KO_NOT_SET", raising=False)
    with pytest.raises(ParameterError, match=r"data: environment variable KO_NOT_SET is not set \(in '\$KO_NOT_SET/x'\)"):
        ReportParameters.checked({"data": "$KO_NOT_SET/x"})


def test_render_report_passes_the_data_by_the_environment(tmp_path, monkeypatch):
    """What the kernel is given, without running it: no absolute path among the literals."""
    from analysis.report import render

    seen = {}

    def fake_render(notebook, out_notebook, parameters, **kw):
        seen.update(parameters=parameters, **kw)
        raise KeyboardInterrupt  # stop before anything else: render_report cleans up and re-raises

    monkeypatch.setattr(render, "render_notebook", fake_render)
    params = ReportParameters(data=str(ROOT / "data" / "sample"), name="x")
    with pytest.raises(KeyboardInterrupt):
        render.render_report(params, tmp_path / "x")
    assert seen["parameters"]["data"] == f"${DATA_VARIABLE}" and seen["parameters"]["output_dir"] == "."
    assert seen["env"] == {DATA_VARIABLE: str(ROOT / "data" / "sample")}
    assert seen["cwd"].name.startswith(".partial-x-")
    assert not any(str(v).startswith("/") for v in seen["parameters"].values() if isinstance(v, str))
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".partial-*"))
