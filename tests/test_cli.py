"""The command line: exit codes, messages, no tracebacks for bad data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main

from tests.datasets import write_tables

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_validate_good_data_exits_0(valid_folder, capsys):
    assert main(["validate", str(valid_folder)]) == 0
    assert "usable" in capsys.readouterr().out


def test_validate_bad_data_exits_1_with_places(valid_folder, valid_tables, capsys):
    sessions = valid_tables["sessions"].astype({"day": object})
    sessions.loc[2, "day"] = "soon"
    write_tables(valid_folder, {"sessions": sessions})
    assert main(["validate", str(valid_folder)]) == 1
    err = capsys.readouterr().err
    assert "ERROR sessions.csv line 4, column 'day': value 'soon'" in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


@pytest.mark.slow
def test_console_script_on_corrupted_copy_of_the_sample(tmp_path):
    """The 'done when' check: a corrupted copy exits 1 naming table, line and column."""
    copy = Path(shutil.copytree(SAMPLE, tmp_path / "sample"))
    lines = (copy / "assessments.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[9].split(",")
    cells[header.index("score")] = "lots"
    lines[9] = ",".join(cells)
    (copy / "assessments.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("ketamine-outcomes")
    run = subprocess.run([str(exe), "validate", str(copy)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "ERROR assessments.csv line 10, column 'score': value 'lots'" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    ok = subprocess.run([str(exe), "validate", str(SAMPLE)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_default_sample_path_is_deprecated_for_analysis_sample_path():
    import analysis
    from analysis.cli import default_sample_path

    with pytest.warns(DeprecationWarning, match=r"analysis\.sample_path\(\)"):
        assert default_sample_path() == analysis.sample_path() == SAMPLE


def test_outcomes_command_writes_tables_and_definitions(valid_folder, tmp_path):
    out = tmp_path / "out"
    assert main(["outcomes", str(valid_folder), "--out", str(out), "--relapse-confirmations", "1",
                 "--include-partial-responders"]) == 0
    import json

    used = json.loads((out / "definitions.json").read_text())
    assert used["relapse_confirmations"] == 1 and used["include_partial_responders"] is True
    assert used["baseline_window_days"] == 14
    attrition = pd.read_csv(out / "attrition.csv")
    assert attrition.loc[0, "n_remaining"] == 3
    for name in ("courses", "relapse", "durability"):
        assert (out / f"{name}.csv").exists()


def test_outcomes_command_rejects_bad_definitions(valid_folder, tmp_path, capsys):
    code = main(["outcomes", str(valid_folder), "--out", str(tmp_path), "--partial-response-pct", "70"])
    assert code == 2
    assert "partial_response_pct" in capsys.readouterr().err
    assert main(["outcomes", str(valid_folder), "--out", str(tmp_path), "--instrument", "HADS"]) == 2
