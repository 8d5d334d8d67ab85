"""The SDTM reader on SAS data sets: a folder of .sas7bdat domains imports as the same tables as .xpt.

pyreadstat reads .sas7bdat but cannot write it, so the .sas7bdat files are committed, made by
R's haven::write_sas from committed CSVs (tests/fixtures/sdtm_sas7bdat/: make_csv.py writes the
tables of tests/io/sdtm_fixture.py for a small simulated dataset, make_sas7bdat.R converts them).
The tests write the same CSVs as SAS transport files (the XPT fixture's writer) and compare.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pyreadstat = pytest.importorskip("pyreadstat")

from analysis.io.sdtm import read_sdtm  # noqa: E402
from analysis.problems import DataValidationError  # noqa: E402
from tests.io.sdtm_fixture import assert_all_rows_accounted, write_sdtm  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sdtm_sas7bdat"
#: the numeric SDTM variables, the rule of make_csv.py and make_sas7bdat.R
NUMERIC = re.compile(r"^(AGE|VISITNUM|[A-Z]{2}(SEQ|DY|STDY|ENDY|DOSE|STRESN))$")
DOMAINS = ("cm", "dm", "ex", "qs", "suppdm")


def _csv_tables() -> dict[str, pd.DataFrame]:
    """The committed CSVs, typed as make_sas7bdat.R types them."""
    tables = {}
    for name in DOMAINS:
        frame = pd.read_csv(FIXTURE / "csv" / f"{name}.csv", dtype=str, keep_default_na=False)
        for col in frame.columns:
            if NUMERIC.match(col):
                frame[col] = pd.to_numeric(frame[col].replace("", None)).astype(float)
        tables[name] = frame
    return tables


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return _csv_tables()


@pytest.fixture(scope="module")
def xpt_folder(tmp_path_factory, tables) -> Path:
    return write_sdtm(tmp_path_factory.mktemp("xpt"), tables)


@pytest.fixture(scope="module")
def from_sas():
    return read_sdtm(FIXTURE / "sas7bdat")


def test_the_committed_sas7bdat_files_hold_the_csv_tables(tables):
    assert sorted(p.name for p in (FIXTURE / "sas7bdat").iterdir()) == [f"{d}.sas7bdat" for d in DOMAINS]
    for name, expected in tables.items():
        frame, meta = pyreadstat.read_sas7bdat(str(FIXTURE / "sas7bdat" / f"{name}.sas7bdat"))
        pd.testing.assert_frame_equal(frame, expected, check_dtype=False, obj=f"{name}.sas7bdat")
        assert meta.number_rows == len(expected)
    qs = tables["qs"]
    assert {"PHQ-9", "GAD-7", "MADRS"} <= set(qs["QSCAT"])  # totals by code, by name, and items only
    assert (tables["ex"]["EXSTDTC"] == "").any() and tables["ex"]["EXSTDY"].isna().any()


def test_sas7bdat_folder_gives_the_same_dataset_as_xpt(from_sas, xpt_folder):
    from_xpt = read_sdtm(xpt_folder)
    assert from_sas.equals(from_xpt)
    assert len(from_sas.sessions) > 10 and from_sas.assessments["instrument"].nunique() == 3
    renamed = {name.replace(".xpt", ".sas7bdat"): counts for name, counts in from_xpt.import_log.counts().items()}
    assert from_sas.import_log.counts() == renamed


def test_every_sas7bdat_record_is_accounted_for_by_record_number(from_sas, tables):
    assert_all_rows_accounted(from_sas.import_log, {f"{name}.sas7bdat": [f"row={i}" for i in range(1, len(t) + 1)]
                                                    for name, t in tables.items()})
    dropped = {a.reason for a in from_sas.import_log.accounts if a.fate == "dropped"}
    assert "EXTRT 'PLACEBO' is not ketamine or esketamine." in dropped


def test_an_unreadable_sas7bdat_file_is_reported_by_name(tmp_path, tables):
    folder = write_sdtm(tmp_path / "s", {k: v for k, v in tables.items() if k != "qs"}, fmt="csv")
    (folder / "qs.sas7bdat").write_bytes(b"not a SAS data set")
    with pytest.raises(DataValidationError) as info:
        read_sdtm(folder)
    assert "qs.sas7bdat" in str(info.value) and "cannot read .sas7bdat file" in str(info.value)
