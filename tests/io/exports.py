"""Realistic source exports built from a format-v1 dataset, for the import tests.

Each builder takes a validated :class:`analysis.Dataset` (a small simulated one) and writes
what a clinic or a REDCap project would hold for the same patients: calendar dates (each
patient's first session on its own date, so study days come back only through the index),
record-number keys, brand-name drugs, spelled-out routes, identifying columns the import
must drop, REDCap events, repeating forms, coded choices, checkboxes and item-only
questionnaires. Importing them must give back the derived outcomes of the dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: generic name -> brand name written in the exports
BRANDS = {"lorazepam": "Ativan", "clonazepam": "Klonopin", "diazepam": "Valium", "alprazolam": "Xanax",
          "lamotrigine": "Lamictal", "rapamycin": "rapamycin"}
ROUTE_TEXT = {"iv": "IV infusion", "intranasal": "esketamine nasal spray", "im": "IM injection",
              "sublingual": "sublingual lozenge", "oral": "by mouth"}


def first_dates(ds, start: str = "2022-03-07") -> dict[str, pd.Timestamp]:
    """A calendar date for each patient's study day 0 (a week apart, then some odd days)."""
    base = pd.Timestamp(start)
    return {pid: base + pd.Timedelta(days=7 * i + (i % 3)) for i, pid in enumerate(ds.patients["patient_id"])}


def _date(ds_dates: dict, pid: str, day: float) -> str:
    return (ds_dates[pid] + pd.Timedelta(days=float(day))).strftime("%Y-%m-%d")


def mrn_of(ds) -> dict[str, str]:
    """An MRN-like key (8 digits) per patient."""
    return {pid: f"{40012345 + 37 * i}" for i, pid in enumerate(ds.patients["patient_id"])}


def write_clinic_export(ds, folder: Path) -> dict[str, Path]:
    """A wide clinic export: patients.csv, visits.csv (one row per visit), meds.csv; and map.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    dates = first_dates(ds)
    mrn = mrn_of(ds)
    p = ds.patients
    patients = pd.DataFrame({
        "MRN": p["patient_id"].map(mrn), "patient_name": [f"Test Person {i}" for i in range(len(p))],
        "dob": "1970-01-01", "clinic": p["site"], "age_years": p["age"].astype("Int64"),
        "gender": p["sex"].map({"female": "F", "male": "M"}).fillna(p["sex"]), "dx": p["diagnosis"],
        "weight": p["weight_kg"], "prior_tx": p["prior_treatment_failures"].astype("Int64"),
        "ptsd": p["comorbid_ptsd"].map({True: "yes", False: "no"}),
    })
    s = ds.sessions
    sessions = pd.DataFrame({
        "pid": s["patient_id"], "day": s["day"], "visit_type": "infusion",
        "medication": np.where(s["route"] == "intranasal", "Spravato", "Ketalar"),
        "route": s["route"].map(ROUTE_TEXT),
        "dose": s["dose_mg_per_kg"].fillna(s["dose_mg"]),
        "dose_unit": np.where(s["dose_mg_per_kg"].notna(), "mg/kg", np.where(s["dose_mg"].notna(), "mg", None)),
        "minutes": s["duration_min"], "bolus": s["bolus_mg"], "cadss": s["dissociation"],
        "completed": s["completed"].map({True: "Y", False: "N"}), "phase": s["phase"],
    })
    a = ds.assessments
    wide = a.pivot_table(index=["patient_id", "day"], columns="instrument", values="score", aggfunc="first").reset_index()
    wide = wide.rename(columns={"patient_id": "pid", "PHQ-9": "phq9_total", "GAD-7": "gad7_total", "MADRS": "madrs_total"})
    visits = sessions.merge(wide, on=["pid", "day"], how="outer").sort_values(["pid", "day"], kind="stable")
    visits["visit_type"] = visits["visit_type"].fillna("check-in")
    visits.insert(0, "visit_date", [_date(dates, pid, d) for pid, d in zip(visits["pid"], visits["day"])])
    visits.insert(0, "MRN", visits["pid"].map(mrn))
    visits["clinician_phone"] = "+1 617 555 0134"
    visits = visits.drop(columns=["pid", "day"])
    m = ds.medications
    meds = pd.DataFrame({
        "MRN": m["patient_id"].map(mrn), "drug_name": m["drug"].map(BRANDS).fillna(m["drug"]),
        "start": [_date(dates, pid, d) for pid, d in zip(m["patient_id"], m["start_day"])],
        "stop": [None if pd.isna(d) else _date(dates, pid, d) for pid, d in zip(m["patient_id"], m["end_day"])],
        "mg": m["dose_mg"], "when": m["timing"],
    })
    paths = {"patients": folder / "patients.csv", "visits": folder / "visits.csv", "meds": folder / "meds.csv",
             "mapping": folder / "map.toml"}
    patients.to_csv(paths["patients"], index=False)
    visits.to_csv(paths["visits"], index=False)
    meds.to_csv(paths["meds"], index=False)
    paths["mapping"].write_text(CLINIC_MAPPING, encoding="utf-8")
    return paths


CLINIC_MAPPING = """
[source]
key = "MRN"

[patients]
file = "patients.csv"
site = "clinic"
age = "age_years"
sex = "gender"
diagnosis = "dx"
keep = { weight_kg = "weight", prior_treatment_failures = "prior_tx", comorbid_ptsd = "ptsd" }

[sessions]
file = "visits.csv"
when = { visit_type = "infusion" }
date = "visit_date"
drug = "medication"
route = "route"
dose = "dose"
dose_unit = "dose_unit"
keep = { duration_min = "minutes", bolus_mg = "bolus", dissociation = "cadss", completed = "completed", phase = "phase" }

[assessments]
file = "visits.csv"
date = "visit_date"
wide = { "PHQ-9" = "phq9_total", "GAD-7" = "gad7_total", "MADRS" = "madrs_total" }

[medications]
file = "meds.csv"
drug = "drug_name"
start_date = "start"
end_date = "stop"
keep = { dose_mg = "mg", timing = "when" }
"""


# --- REDCap -------------------------------------------------------------------------------

DICTIONARY_HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
                     "Choices, Calculations, OR Slider Labels", "Field Note",
                     "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max",
                     "Identifier?", "Branching Logic (Show field only if...)", "Required Field?"]
SITE_CODES = {"site_A": "1", "site_B": "2", "site_C": "3", "site_D": "4"}
DX_CODES = {"MDD": "1", "bipolar depression": "2"}
DRUG_CODES = {"Ketalar": "1", "Spravato": "2"}
ROUTE_CODES = {"iv": "1", "intranasal": "2", "im": "3", "sublingual": "4"}
PHASE_CODES = {"induction": "1", "maintenance": "2", "booster": "3"}
MED_CODES = {"lorazepam": "1", "clonazepam": "2", "diazepam": "3", "alprazolam": "4", "lamotrigine": "5",
             "rapamycin": "6"}
MED_LABELS = {"1": "Ativan", "2": "Klonopin", "3": "Valium", "4": "Xanax", "5": "Lamictal", "6": "rapamycin"}


def _choices(codes: dict[str, str], labels: dict[str, str] | None = None) -> str:
    return " | ".join(f"{c}, {labels[c] if labels else v}" for v, c in codes.items())


def phq9_items(total: float) -> list[int]:
    """Nine item scores (0-3) that sum to ``total``: the points spread from item 1 on."""
    total = int(total)
    items = [total // 9 + (1 if k < total % 9 else 0) for k in range(9)]
    assert sum(items) == total and max(items) <= 3
    return items


def write_redcap_export(ds, folder: Path) -> dict[str, Path]:
    """A longitudinal REDCap project: records.csv (raw export), dictionary.csv and map.toml.

    Events: ``screening_arm_1`` (demographics, non-repeating, with identifier fields) and
    ``treatment_arm_1`` with repeating forms ``infusion`` (drug dropdown, route as a
    checkbox, dose with a unit radio), ``phq9`` (items only), ``gad7`` and ``madrs`` (totals)
    and ``medication``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dates = first_dates(ds, "2021-09-13")
    record = {pid: str(1001 + i) for i, pid in enumerate(ds.patients["patient_id"])}
    rows = []
    base = {"redcap_event_name": None, "redcap_repeat_instrument": None, "redcap_repeat_instance": None}
    for _, p in ds.patients.iterrows():
        rows.append({**base, "record_id": record[p["patient_id"]], "redcap_event_name": "screening_arm_1",
                     "first_name": "Alex", "last_name": "Sample", "email": "alex@example.org", "dob": "1971-05-02",
                     "site": SITE_CODES[p["site"]], "age": int(p["age"]),
                     "sex": {"female": "1", "male": "2"}.get(p["sex"], "3"), "dx": DX_CODES[p["diagnosis"]],
                     "weight": p["weight_kg"], "prior_tx": p["prior_treatment_failures"],
                     "ptsd": int(bool(p["comorbid_ptsd"])), "demographics_complete": "2"})
    for pid, group in ds.sessions.groupby("patient_id", sort=False):
        for k, (_, s) in enumerate(group.iterrows(), start=1):
            rows.append({**base, "record_id": record[pid], "redcap_event_name": "treatment_arm_1",
                         "redcap_repeat_instrument": "infusion", "redcap_repeat_instance": k,
                         "inf_date": _date(dates, pid, s["day"]),
                         "inf_drug": DRUG_CODES["Spravato" if s["route"] == "intranasal" else "Ketalar"],
                         **{f"inf_route___{c}": int(ROUTE_CODES[s["route"]] == c) for c in ROUTE_CODES.values()},
                         "inf_dose": s["dose_mg_per_kg"] if pd.notna(s["dose_mg_per_kg"]) else s["dose_mg"],
                         "inf_unit": "1" if pd.notna(s["dose_mg_per_kg"]) else ("2" if pd.notna(s["dose_mg"]) else None),
                         "inf_minutes": s["duration_min"], "inf_bolus": s["bolus_mg"], "inf_cadss": s["dissociation"],
                         "inf_completed": int(bool(s["completed"])), "inf_phase": PHASE_CODES[s["phase"]],
                         "infusion_complete": "2"})
    for (pid, instrument), group in ds.assessments.groupby(["patient_id", "instrument"], sort=False):
        form = {"PHQ-9": "phq9", "GAD-7": "gad7", "MADRS": "madrs"}[instrument]
        for k, (_, a) in enumerate(group.iterrows(), start=1):
            row = {**base, "record_id": record[pid], "redcap_event_name": "treatment_arm_1",
                   "redcap_repeat_instrument": form, "redcap_repeat_instance": k,
                   f"{form}_date": _date(dates, pid, a["day"]), f"{form}_complete": "2"}
            if form == "phq9":
                row.update({f"phq9_{i}": v for i, v in enumerate(phq9_items(a["score"]), start=1)})
            else:
                row[f"{form}_total"] = a["score"]
            rows.append(row)
    for pid, group in ds.medications.groupby("patient_id", sort=False):
        for k, (_, m) in enumerate(group.iterrows(), start=1):
            rows.append({**base, "record_id": record[pid], "redcap_event_name": "treatment_arm_1",
                         "redcap_repeat_instrument": "medication", "redcap_repeat_instance": k,
                         "med_drug": MED_CODES[m["drug"]], "med_start": _date(dates, pid, m["start_day"]),
                         "med_stop": None if pd.isna(m["end_day"]) else _date(dates, pid, m["end_day"]),
                         "med_dose": m["dose_mg"], "med_timing": m["timing"], "medication_complete": "2"})
    fields = _dictionary_rows()
    columns = ["record_id", *base]
    for f in fields:
        name, kind, choices = f[0], f[3], f[5]
        if name == "record_id":
            continue
        if kind == "checkbox":
            columns += [f"{name}___{c.split(',')[0].strip()}" for c in choices.split("|")]
        else:
            columns.append(name)
    records = pd.DataFrame(rows).reindex(columns=columns).map(_as_text)
    records = records.sort_values("record_id", kind="stable")
    paths = {"records": folder / "records.csv", "dictionary": folder / "dictionary.csv", "mapping": folder / "map.toml"}
    records.to_csv(paths["records"], index=False)
    pd.DataFrame(fields, columns=DICTIONARY_HEADER).to_csv(paths["dictionary"], index=False)
    paths["mapping"].write_text(REDCAP_MAPPING, encoding="utf-8")
    return paths


def _as_text(value) -> str | None:
    """A value as REDCap writes it: whole numbers without a decimal point, empty for missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) == round(float(value)):
        return str(int(value))
    return str(value)


def _dictionary_rows() -> list[list[str]]:
    def field(name, form, kind, label, choices="", identifier="", validation=""):
        return [name, form, "", kind, label, choices, "", validation, "", "", identifier, "", ""]

    item_choices = "0, Not at all | 1, Several days | 2, More than half the days | 3, Nearly every day"
    return [
        field("record_id", "demographics", "text", "Record ID"),
        field("first_name", "demographics", "text", "First name", identifier="y"),
        field("last_name", "demographics", "text", "Last name", identifier="y"),
        field("email", "demographics", "text", "E-mail", identifier="y", validation="email"),
        field("dob", "demographics", "text", "Date of birth", identifier="y", validation="date_ymd"),
        field("site", "demographics", "dropdown", "Site", _choices(SITE_CODES)),
        field("age", "demographics", "text", "Age", validation="integer"),
        field("sex", "demographics", "radio", "Sex", "1, Female | 2, Male | 3, Other"),
        field("dx", "demographics", "radio", "Diagnosis", _choices(DX_CODES)),
        field("weight", "demographics", "text", "Weight (kg)", validation="number"),
        field("prior_tx", "demographics", "text", "Failed antidepressant trials", validation="integer"),
        field("ptsd", "demographics", "yesno", "Comorbid PTSD"),
        field("demographics_complete", "demographics", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
        field("inf_date", "infusion", "text", "Infusion date", validation="date_ymd"),
        field("inf_drug", "infusion", "dropdown", "Drug", _choices(DRUG_CODES)),
        field("inf_route", "infusion", "checkbox", "Route",
              "1, IV infusion | 2, Esketamine nasal spray | 3, IM injection | 4, Sublingual lozenge"),
        field("inf_dose", "infusion", "text", "Dose", validation="number"),
        field("inf_unit", "infusion", "radio", "Dose unit", "1, mg/kg | 2, mg"),
        field("inf_minutes", "infusion", "text", "Duration (min)", validation="number"),
        field("inf_bolus", "infusion", "text", "Bolus (mg)", validation="number"),
        field("inf_cadss", "infusion", "text", "CADSS total", validation="number"),
        field("inf_completed", "infusion", "truefalse", "Completed"),
        field("inf_phase", "infusion", "dropdown", "Phase", _choices(PHASE_CODES)),
        field("infusion_complete", "infusion", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
        field("phq9_date", "phq9", "text", "Date", validation="date_ymd"),
        *[field(f"phq9_{i}", "phq9", "radio", f"PHQ-9 item {i}", item_choices) for i in range(1, 10)],
        field("phq9_complete", "phq9", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
        field("gad7_date", "gad7", "text", "Date", validation="date_ymd"),
        field("gad7_total", "gad7", "calc", "GAD-7 total", "sum([gad7_1],[gad7_2])"),
        field("gad7_complete", "gad7", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
        field("madrs_date", "madrs", "text", "Date", validation="date_ymd"),
        field("madrs_total", "madrs", "text", "MADRS total", validation="integer"),
        field("madrs_complete", "madrs", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
        field("med_drug", "medication", "dropdown", "Medication", _choices(MED_CODES, MED_LABELS)),
        field("med_start", "medication", "text", "Start", validation="date_ymd"),
        field("med_stop", "medication", "text", "Stop", validation="date_ymd"),
        field("med_dose", "medication", "text", "Dose (mg)", validation="number"),
        field("med_timing", "medication", "text", "Timing"),
        field("medication_complete", "medication", "dropdown", "Complete?", "0, Incomplete | 1, Unverified | 2, Complete"),
    ]


REDCAP_MAPPING = """
[source]
key = "record_id"

[patients]
form = "demographics"
event = "screening_arm_1"
site = "site"
age = "age"
sex = "sex"
diagnosis = "dx"
keep = { weight_kg = "weight", prior_treatment_failures = "prior_tx", comorbid_ptsd = "ptsd" }

[sessions]
form = "infusion"
date = "inf_date"
drug = "inf_drug"
route = "inf_route"
dose = "inf_dose"
dose_unit = "inf_unit"
keep = { duration_min = "inf_minutes", bolus_mg = "inf_bolus", dissociation = "inf_cadss", completed = "inf_completed", phase = "inf_phase" }

[[assessments]]
form = "phq9"
date = "phq9_date"
items = { "PHQ-9" = ["phq9_1", "phq9_2", "phq9_3", "phq9_4", "phq9_5", "phq9_6", "phq9_7", "phq9_8", "phq9_9"] }

[[assessments]]
form = "gad7"
date = "gad7_date"
wide = { "GAD-7" = "gad7_total" }

[[assessments]]
form = "madrs"
date = "madrs_date"
wide = { "MADRS" = "madrs_total" }

[medications]
form = "medication"
drug = "med_drug"
start_date = "med_start"
end_date = "med_stop"
keep = { dose_mg = "med_dose", timing = "med_timing" }



"""
