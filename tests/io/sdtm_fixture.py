"""Build a CDISC SDTM submission (DM, EX, QS, CM, SUPPDM as SAS transport files) from a format-v1 dataset.

The dataset's day 0 is each subject's reference start (RFSTDTC). SDTM study days have no
day 0, so a format-v1 day d becomes --DY d + 1 when d >= 0 and stays d when d < 0. To cover
both ways of placing a record, odd-numbered subjects get --DY variables and even-numbered
ones only --DTC dates; QS always has both. Instruments are written three ways: PHQ-9 as a
total record with the bundled total code (PHQ0111) plus its nine item records (the total is
used, the items are logged as dropped), GAD-7 as a total record found by its QSTEST
("GAD-7 Total Score"), MADRS as ten item records without a total (summed on import). EX
also holds a placebo record for the first subject (dropped on import).

The checks at the end (same records, same derived outcomes, every row accounted for) are
shared with the OMOP tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import analysis

STUDY = "KET01"
_ROUTE = {"iv": "INTRAVENOUS", "im": "INTRAMUSCULAR", "intranasal": "NASAL", "oral": "ORAL", "sublingual": "SUBLINGUAL"}
_SEX = {"female": "F", "male": "M", "unknown": "U", "other": "UNDIFFERENTIATED"}


def usubjid(patient_id: str) -> str:
    return f"{STUDY}-{patient_id}"


def sdtm_day(day: pd.Series) -> pd.Series:
    """Format-v1 day (difference of dates) -> SDTM --DY (no day 0)."""
    day = day.astype(float)
    return day.where(day < 0, day + 1)


def _split(total: float, n_items: int, item_max: int) -> list[float]:
    """Item scores in 0..item_max that sum to ``total`` (filled from the first item on)."""
    items, left = [], float(total)
    for _ in range(n_items):
        take = min(item_max, left)
        items.append(take)
        left -= take
    assert left == 0, "total exceeds the item range"
    return items


def sdtm_tables(dataset) -> dict[str, pd.DataFrame]:
    """The SDTM domains of a format-v1 :class:`analysis.Dataset` as DataFrames."""
    pats = dataset.patients.reset_index(drop=True)
    base = pd.Timestamp("2023-01-02")
    reference = {pid: base + pd.Timedelta(days=3 * i) for i, pid in enumerate(pats["patient_id"])}
    with_dy = {pid: i % 2 == 0 for i, pid in enumerate(pats["patient_id"])}  # P0001 (i = 0) has --DY

    def dates(pids: pd.Series, days: pd.Series) -> list[str]:
        return [("" if pd.isna(d) else (reference[p] + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d"))
                for p, d in zip(pids, days)]

    dm = pd.DataFrame({
        "STUDYID": STUDY, "DOMAIN": "DM", "USUBJID": [usubjid(p) for p in pats["patient_id"]],
        "SUBJID": pats["patient_id"].astype(str), "RFSTDTC": [reference[p].strftime("%Y-%m-%d") for p in pats["patient_id"]],
        "SITEID": pats["site"].astype(str), "AGE": pats["age"].astype(float), "AGEU": "YEARS",
        "SEX": pats["sex"].astype(str).map(_SEX),
    })
    suppdm = pd.DataFrame({
        "STUDYID": STUDY, "RDOMAIN": "DM", "USUBJID": dm["USUBJID"], "IDVAR": "", "IDVARVAL": "",
        "QNAM": "DIAGNOSIS", "QLABEL": "Primary diagnosis", "QVAL": pats["diagnosis"].astype(str), "QORIG": "CRF",
    })

    ses = dataset.sessions.reset_index(drop=True)
    per_kg = ses["dose_mg_per_kg"].notna()
    dy_rows = ses["patient_id"].map(with_dy).to_numpy(dtype=bool)
    ex = pd.DataFrame({
        "STUDYID": STUDY, "DOMAIN": "EX", "USUBJID": [usubjid(p) for p in ses["patient_id"]],
        "EXSEQ": np.arange(1, len(ses) + 1, dtype=float),
        "EXTRT": np.where(ses["route"] == "intranasal", "ESKETAMINE", "KETAMINE"),
        "EXDOSE": np.where(per_kg, ses["dose_mg_per_kg"], ses["dose_mg"]).astype(float),
        "EXDOSU": np.where(per_kg, "mg/kg", "mg"),
        "EXROUTE": ses["route"].astype(str).map(_ROUTE),
        "EXSTDTC": np.where(dy_rows, "", dates(ses["patient_id"], ses["day"])),
        "EXSTDY": np.where(dy_rows, sdtm_day(ses["day"]), np.nan),
    })
    first = ex.iloc[[0]].copy()
    first["EXSEQ"] = float(len(ex) + 1)
    first["EXTRT"], first["EXDOSE"], first["EXDOSU"] = "PLACEBO", 0.0, "mg"
    ex = pd.concat([ex, first], ignore_index=True)

    rows = []
    for a in dataset.assessments.itertuples(index=False):
        common = {"USUBJID": usubjid(a.patient_id), "QSDY": float(sdtm_day(pd.Series([a.day])).iloc[0]),
                  "QSDTC": dates(pd.Series([a.patient_id]), pd.Series([a.day]))[0]}
        if a.instrument == "PHQ-9":
            rows.append({**common, "QSCAT": "PHQ-9", "QSTESTCD": "PHQ0111", "QSTEST": "PHQ-9 Total Score",
                         "QSSTRESN": float(a.score)})
            for k, item in enumerate(_split(a.score, 9, 3), start=1):
                rows.append({**common, "QSCAT": "PHQ-9", "QSTESTCD": f"PHQ01{k:02d}", "QSTEST": f"PHQ-9 item {k}",
                             "QSSTRESN": item})
        elif a.instrument == "GAD-7":
            rows.append({**common, "QSCAT": "GAD-7", "QSTESTCD": "GAD0108", "QSTEST": "GAD-7 Total Score",
                         "QSSTRESN": float(a.score)})
        elif a.instrument == "MADRS":
            for k, item in enumerate(_split(a.score, 10, 6), start=1):
                rows.append({**common, "QSCAT": "MADRS", "QSTESTCD": f"MADRS1{k:02d}", "QSTEST": f"MADRS item {k}",
                             "QSSTRESN": item})
        else:
            raise ValueError(f"sdtm_tables: no SDTM layout for instrument {a.instrument!r}")
    qs = pd.DataFrame(rows)
    qs.insert(0, "STUDYID", STUDY)
    qs.insert(1, "DOMAIN", "QS")
    qs["QSORRES"] = qs["QSSTRESN"].map(lambda v: f"{v:g}")
    qs["QSSEQ"] = np.arange(1, len(qs) + 1, dtype=float)

    med = dataset.medications.reset_index(drop=True)
    med_dy = med["patient_id"].map(with_dy).to_numpy(dtype=bool)
    cm = pd.DataFrame({
        "STUDYID": STUDY, "DOMAIN": "CM", "USUBJID": [usubjid(p) for p in med["patient_id"]],
        "CMSEQ": np.arange(1, len(med) + 1, dtype=float),
        "CMTRT": med["drug"].astype(str).str.upper(), "CMDECOD": med["drug"].astype(str).str.upper(),
        "CMDOSE": med["dose_mg"].astype(float), "CMDOSU": np.where(med["dose_mg"].notna(), "mg", ""),
        "CMSTDTC": np.where(med_dy, "", dates(med["patient_id"], med["start_day"])),
        "CMENDTC": np.where(med_dy, "", dates(med["patient_id"], med["end_day"])),
        "CMSTDY": np.where(med_dy, sdtm_day(med["start_day"]), np.nan),
        "CMENDY": np.where(med_dy, sdtm_day(med["end_day"]), np.nan),
    })
    return {"dm": dm, "suppdm": suppdm, "ex": ex, "qs": qs, "cm": cm}


def write_sdtm(folder: Path, tables: dict[str, pd.DataFrame], fmt: str = "xpt") -> Path:
    """Write the domains as ``<domain>.xpt`` (SAS transport v5, pyreadstat) or ``.csv``."""
    import pyreadstat

    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "xpt":
            pyreadstat.write_xport(frame, str(folder / f"{name}.xpt"), table_name=name.upper(), file_format_version=5)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


# --- checks shared by the SDTM and OMOP import tests ------------------------------------------
# same records, same derived outcomes, every source row accounted for

OUTCOME_TABLES = ("courses", "relapse", "durability", "attrition", "exclusions", "sessions")


def _renamed(frame: pd.DataFrame, ids: dict[str, str]) -> pd.DataFrame:
    out = frame.copy()
    if "patient_id" in out:
        dtype = out["patient_id"].dtype
        out["patient_id"] = out["patient_id"].map(lambda k: ids.get(k, k)).astype(dtype)
    return out


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    keys = [c for c in by if c in frame]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame.reset_index(drop=True)


def assert_same_records(imported, source, ids: dict[str, str], *, session_columns=("day", "route", "dose_mg_per_kg",
                                                                                   "dose_mg"),
                        patient_columns=("site", "age", "sex")) -> None:
    """The imported tables hold the source's records (ids mapped back with ``ids``)."""
    pats = _sorted(_renamed(imported.patients, ids), ["patient_id"])
    pd.testing.assert_frame_equal(pats[["patient_id", *patient_columns]],
                                  _sorted(source.patients, ["patient_id"])[["patient_id", *patient_columns]])
    cols = ["patient_id", *session_columns]
    pd.testing.assert_frame_equal(_sorted(_renamed(imported.sessions, ids)[cols], cols),
                                  _sorted(source.sessions[cols], cols))
    cols = ["patient_id", "day", "instrument", "score"]
    pd.testing.assert_frame_equal(_sorted(_renamed(imported.assessments, ids)[cols], cols),
                                  _sorted(source.assessments[cols], cols))
    cols = ["patient_id", "drug", "start_day", "end_day", "dose_mg", "drug_class", "dose_dze_mg"]
    pd.testing.assert_frame_equal(_sorted(_renamed(imported.medications, ids)[cols], cols),
                                  _sorted(source.medications[cols], cols))


#: format-v1 covariates the simulator writes that SDTM DM/EX and OMOP have no place for; the
#: outcome tables carry covariates along, so these columns are absent after an import
NOT_CARRIED = {"weight_kg", "prior_treatment_failures", "comorbid_ptsd", "duration_min", "bolus_mg", "dissociation",
               "completed", "phase", "diagnosis"}


def assert_same_outcomes(imported, source, ids: dict[str, str], instrument: str = "PHQ-9",
                         not_carried: set[str] = NOT_CARRIED) -> None:
    """Derived outcomes of the imported dataset equal those of the source dataset (every
    column both have; the source's other columns must be covariates in ``not_carried``)."""
    got = analysis.derive_outcomes(imported, instrument=instrument)
    want = analysis.derive_outcomes(source, instrument=instrument)
    for name in OUTCOME_TABLES:
        a, b = getattr(got, name), getattr(want, name)
        assert set(b.columns) - set(a.columns) <= not_carried, (name, set(b.columns) - set(a.columns))
        common = [c for c in b.columns if c in a.columns]
        by = [c for c in ("patient_id", "day", "interval", "origin_day", "step", "reason") if c in b]
        pd.testing.assert_frame_equal(_sorted(_renamed(a[common], ids), by), _sorted(b[common], by),
                                      obj=f"outcomes.{name}")
    assert len(got.courses) > 10 and np.isfinite(got.courses.select_dtypes("number").to_numpy(dtype=float)).any()


def assert_all_rows_accounted(log, tables: dict[str, list[str]]) -> None:
    """Every row reference of every source table is in the log, exactly once as used or dropped."""
    for table, rows in tables.items():
        assert log.unaccounted(table, rows) == [], f"{table}: rows missing from the import log"
        counts = log.counts()[table]
        assert counts["rows"] == len(set(rows)) == counts["used"] + counts["dropped"], (table, counts)
