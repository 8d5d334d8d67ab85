"""Plain papermill runs the cohort report as docs/reports.md documents it.

papermill passes ``-p`` values that are not numbers or booleans as text: every documented
parameter must accept the text a user types, and the documented commands must run exactly
as written (the HTML report included, from the notebook's last cell).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report import ParameterError, ReportParameters

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reports.md"


def papermill_value(text: str):
    """What papermill's ``-p NAME TEXT`` hands the notebook (its own command-line parsing)."""
    from papermill.cli import _resolve_type

    return _resolve_type(text)


#: one value per documented parameter, as typed after papermill's -p NAME, and what it means
TYPED = {
    "data": ("data/sample", "data/sample"),
    "name": ("2026", "2026"),
    "title": ("Clinic A, 2024", "Clinic A, 2024"),
    "instrument": ("MADRS", "MADRS"),
    "second_instrument": ("PHQ-9", "PHQ-9"),
    "sites": ('["site_A"]', ["site_A"]),
    "routes": ("iv,im", ["iv", "im"]),
    "period_column": ("period", "period"),
    "periods": ("2024, 2025", ["2024", "2025"]),
    "definitions": ('{"relapse_confirmations": 1}', {"relapse_confirmations": 1}),
    "min_cell_count": ("5", 5),
    "conf_level": ("0.9", 0.9),
    "seed": ("7", 7),
    "output_dir": ("reports/site_A", "reports/site_A"),
    "figure_formats": ("png,svg", ["png", "svg"]),
    "html_path": ("report.html", "report.html"),
}


def test_every_documented_parameter_is_covered():
    documented = set(re.findall(r"^\| ([a-z_, ]+) \| `", DOC.read_text(), re.MULTILINE))
    names = {n.strip() for row in documented for n in row.split(",")}
    assert names == set(ReportParameters.model_fields) == set(TYPED)


@pytest.mark.parametrize("name", sorted(TYPED))
def test_papermill_text_for_each_parameter_is_accepted(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the relative data folder
    text, expected = TYPED[name]
    params = ReportParameters.checked({name: papermill_value(text)})
    assert getattr(params, name) == expected


def test_raw_text_and_yaml_forms_are_accepted():
    # -r passes text as is; -y gives typed values
    assert ReportParameters.checked({"seed": "7", "min_cell_count": "5", "conf_level": "0.9"}).seed == 7
    assert ReportParameters.checked({"sites": ["site_B"], "definitions": {"relapse_confirmations": 1}}).sites == ["site_B"]
    assert ReportParameters.checked({"sites": "", "routes": "iv,"}).sites == []


def test_text_that_is_no_value_of_its_parameter_is_an_error_naming_it():
    with pytest.raises(ParameterError) as caught:
        ReportParameters.checked({"sites": '["site_A"', "definitions": "relapse_confirmations=1", "seed": "seven"})
    message = str(caught.value)
    assert message.startswith("report parameters: ")
    assert "sites: expected a JSON list or comma-separated text, got '[\"site_A\"'" in message
    assert "definitions: expected a JSON object, got 'relapse_confirmations=1'" in message
    assert "seed: expected a whole number, got 'seven'" in message
    with pytest.raises(ParameterError, match=r"sites: Input should be a valid list \(got 3\)"):
        ReportParameters.checked({"sites": 3})
    with pytest.raises(ParameterError, match="routes: unknown route"):
        ReportParameters.checked({"routes": papermill_value("iv,teleport")})


def documented_papermill_commands() -> list[str]:
    """The papermill command lines of docs/reports.md's shell blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("papermill ")]


def test_the_documentation_shows_both_commands():
    commands = documented_papermill_commands()
    assert len(commands) == 2 and any("html_path" in c and "--inject-paths" in c for c in commands)


@pytest.mark.slow
@pytest.mark.parametrize("command", documented_papermill_commands(),
                         ids=lambda c: "html" if "html_path" in c else "notebook")
def test_documented_papermill_command_runs_as_written(command, tmp_path):
    """Run in a folder that has the repository's notebooks/ (so no file lands in the repository)."""
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    (tmp_path / "data").symlink_to(ROOT / "data")
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).with_name("papermill"))
    run = subprocess.run(argv + ["--no-progress-bar"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    # (plain papermill uses jupyter_client's own kernel manager, which interrupts the kernel
    # before shutting it down: its "KeyboardInterrupt caught in kernel" line may appear here)
    executed = json.loads((tmp_path / argv[2]).read_text())
    injected = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "\nsites = " in "".join(injected["source"])
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    if "html_path" in command:
        page = (tmp_path / re.search(r"-p html_path (\S+)", command).group(1)).read_text()
        assert "Content-Security-Policy" in page and "<script" not in page.lower()
        assert page.count("data:image/png;base64,") >= 4 and "Provenance" in page
        assert str(tmp_path) not in page and str(ROOT) not in page.split("<footer>")[1]
        assert "sites=[&#x27;site_B&#x27;]" in page.split("<footer>")[1], "the list the text stood for"
    else:
        figures = json.loads((tmp_path / "reports" / "site_A" / "key_figures.json").read_text())
        assert figures["patients"]
