"""Build an OMOP CDM v5.4 database (the tables the reader uses) from a format-v1 dataset.

The vocabulary tables hold the real codes the reader resolves (RxNorm ingredients, SNOMED
routes, LOINC totals, the Gender vocabulary) under arbitrary concept ids, which the reader
must never rely on: ``id_offset`` shifts them all, and the tests build databases with two
different offsets. Each drug is an ingredient with one clinical-drug descendant in
``concept_ancestor`` (plus the self rows the CDM has), and the exposures use the
descendants, so resolution must go through ``concept_ancestor``.

What OMOP cannot hold is changed in the source first (:func:`omop_source`): MADRS rows are
left out (the vocabulary bundles no LOINC code for the MADRS total, so an OMOP import
cannot find them; the measurement rows written for them are logged as dropped), and
rapamycin is written as its RxNorm ingredient, sirolimus. Extra rows that must be dropped
and logged: an atorvastatin exposure, an exposure with drug_concept_id 0, a body-weight
measurement, a PHQ-9 measurement without a value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import analysis

#: (name, vocabulary_id, concept_class_id, code); esketamine's RxNorm code is not bundled in
#: the package's vocabulary, so the reader finds it by its ingredient name and this fixture
#: claims no code for it (``"(not used)"``); nor for atorvastatin and body weight (unknown to the
#: vocabulary, so their rows are dropped) or the clinical drugs (found through concept_ancestor)
CONCEPTS = [
    ("ketamine", "RxNorm", "Ingredient", "6130"),
    ("esketamine", "RxNorm", "Ingredient", "(not used)"),
    ("lorazepam", "RxNorm", "Ingredient", "6470"),
    ("clonazepam", "RxNorm", "Ingredient", "2598"),
    ("alprazolam", "RxNorm", "Ingredient", "596"),
    ("diazepam", "RxNorm", "Ingredient", "3322"),
    ("lamotrigine", "RxNorm", "Ingredient", "28439"),
    ("sirolimus", "RxNorm", "Ingredient", "35302"),
    ("atorvastatin", "RxNorm", "Ingredient", "(not used)"),
    ("Intravenous route", "SNOMED", "Qualifier Value", "47625008"),
    ("Intramuscular route", "SNOMED", "Qualifier Value", "78421000"),
    ("Nasal route", "SNOMED", "Qualifier Value", "46713006"),
    ("Oral route", "SNOMED", "Qualifier Value", "26643006"),
    ("Sublingual route", "SNOMED", "Qualifier Value", "37839007"),
    ("Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", "LOINC", "Clinical Observation", "44261-6"),
    ("Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]", "LOINC", "Clinical Observation",
     "70274-6"),
    ("Body weight", "LOINC", "Clinical Observation", "(not used)"),
    ("FEMALE", "Gender", "Gender", "F"),
    ("MALE", "Gender", "Gender", "M"),
]
_ROUTE = {"iv": "Intravenous route", "im": "Intramuscular route", "intranasal": "Nasal route", "oral": "Oral route",
          "sublingual": "Sublingual route"}
_DRUG = {"rapamycin": "sirolimus"}


def omop_source(dataset) -> analysis.Dataset:
    """The format-v1 dataset an OMOP import can give back (see the module docstring)."""
    t = {n: f.copy() for n, f in dataset.tables.items()}
    t["assessments"] = t["assessments"][t["assessments"]["instrument"] != "MADRS"].reset_index(drop=True)
    med = t["medications"].drop(columns=["drug_class", "dose_dze_mg"])
    med["drug"] = med["drug"].replace(_DRUG)
    t["medications"] = med
    return analysis.Dataset.from_frames(**t)


def omop_tables(dataset, *, id_offset: int = 1000) -> dict[str, pd.DataFrame]:
    """The OMOP tables of a format-v1 dataset; an import gives back :func:`omop_source` of it."""
    names = [c[0] for c in CONCEPTS]
    cid = {name: id_offset + i for i, name in enumerate(names)}
    drug_of = {name: id_offset + 500 + i for i, name in enumerate(names) if CONCEPTS[i][1] == "RxNorm"}
    concept = pd.DataFrame({
        "concept_id": [cid[c[0]] for c in CONCEPTS] + list(drug_of.values()),
        "concept_name": names + [f"{n} clinical drug" for n in drug_of],
        "domain_id": [{"RxNorm": "Drug", "SNOMED": "Route", "LOINC": "Measurement", "Gender": "Gender"}[c[1]]
                      for c in CONCEPTS] + ["Drug"] * len(drug_of),
        "vocabulary_id": [c[1] for c in CONCEPTS] + ["RxNorm"] * len(drug_of),
        "concept_class_id": [c[2] for c in CONCEPTS] + ["Clinical Drug"] * len(drug_of),
        "standard_concept": "S",
        "concept_code": [c[3] for c in CONCEPTS] + [f"(not used {i})" for i in range(len(drug_of))],
    })
    ancestor = pd.DataFrame({
        "ancestor_concept_id": [cid[n] for n in drug_of] * 2,
        "descendant_concept_id": [cid[n] for n in drug_of] + list(drug_of.values()),
        "min_levels_of_separation": [0] * len(drug_of) + [1] * len(drug_of),
        "max_levels_of_separation": [0] * len(drug_of) + [1] * len(drug_of),
    })

    pats = dataset.patients.reset_index(drop=True)
    base = pd.Timestamp("2022-11-07")
    # index dates spread over about 27 years (a registry of 100,000 patients stays in range)
    reference = {p: base - pd.Timedelta(days=5 * (i % 2000)) for i, p in enumerate(pats["patient_id"])}
    person_id = {p: 100 + 3 * i for i, p in enumerate(pats["patient_id"])}
    sites = sorted(pats["site"].dropna().unique())
    care_site = pd.DataFrame({"care_site_id": np.arange(1, len(sites) + 1), "care_site_name": sites})
    site_id = dict(zip(sites, care_site["care_site_id"]))
    person = pd.DataFrame({
        "person_id": pats["patient_id"].map(person_id).astype("int64"),
        "gender_concept_id": pats["sex"].map({"female": cid["FEMALE"], "male": cid["MALE"]}).fillna(0).astype("int64"),
        "year_of_birth": [reference[p].year - int(a) for p, a in zip(pats["patient_id"], pats["age"])],
        "month_of_birth": None, "day_of_birth": None, "birth_datetime": None,
        "race_concept_id": 0, "ethnicity_concept_id": 0,
        "care_site_id": pats["site"].map(site_id).astype("int64"),
        "person_source_value": None,
    })

    def on(pids, days):
        when = pd.Series(list(pids)).map(reference) + pd.to_timedelta(pd.Series(list(days), dtype=float), unit="D")
        return pd.Series(when.dt.date.to_numpy(), dtype=object).where(when.notna(), None).tolist()

    ses = dataset.sessions.reset_index(drop=True)
    per_kg = ses["dose_mg_per_kg"].notna()
    drug = np.where(ses["route"] == "intranasal", "esketamine", "ketamine")
    exposures = pd.DataFrame({
        "person_id": ses["patient_id"].map(person_id), "drug_concept_id": [drug_of[d] for d in drug],
        "drug_exposure_start_date": on(ses["patient_id"], ses["day"]),
        "drug_exposure_end_date": on(ses["patient_id"], ses["day"]),
        "quantity": np.where(per_kg, ses["dose_mg_per_kg"], ses["dose_mg"]).astype(float),
        "dose_unit_source_value": np.where(per_kg, "mg/kg", "mg"),
        "route_concept_id": ses["route"].map(lambda r: cid[_ROUTE[r]]), "route_source_value": ses["route"],
    })
    med = dataset.medications.reset_index(drop=True)
    meds = pd.DataFrame({
        "person_id": med["patient_id"].map(person_id), "drug_concept_id": [drug_of[_DRUG.get(d, d)] for d in med["drug"]],
        "drug_exposure_start_date": on(med["patient_id"], med["start_day"]),
        "drug_exposure_end_date": on(med["patient_id"], med["end_day"]),
        "quantity": med["dose_mg"].astype(float), "dose_unit_source_value": "mg",
        "route_concept_id": cid["Oral route"], "route_source_value": "oral",
    })
    first = pats["patient_id"].iloc[0]
    others = pd.DataFrame({
        "person_id": [person_id[first]] * 2, "drug_concept_id": [drug_of["atorvastatin"], 0],
        "drug_exposure_start_date": on([first, first], [-20, -10]), "drug_exposure_end_date": on([first, first], [5, -9]),
        "quantity": [20.0, 1.0], "dose_unit_source_value": ["mg", "mg"],
        "route_concept_id": [cid["Oral route"], 0], "route_source_value": ["oral", "unknown"],
    })
    drug_exposure = pd.concat([exposures, meds, others], ignore_index=True)
    drug_exposure.insert(0, "drug_exposure_id", np.arange(5001, 5001 + len(drug_exposure)))
    drug_exposure["drug_type_concept_id"] = 0

    a = dataset.assessments.reset_index(drop=True)
    loinc = {"PHQ-9": CONCEPTS[14][0], "GAD-7": CONCEPTS[15][0], "MADRS": "Body weight"}
    scores = pd.DataFrame({
        "person_id": a["patient_id"].map(person_id), "concept_id": a["instrument"].map(lambda i: cid[loinc[i]]),
        "date": on(a["patient_id"], a["day"]), "value_as_number": a["score"].astype(float),
        "instrument": a["instrument"],
    })
    # PHQ-9 (and the MADRS rows, under an unrelated code) in measurement, GAD-7 in observation
    in_obs = scores["instrument"] == "GAD-7"
    extra = pd.DataFrame({"person_id": [person_id[first]] * 2, "concept_id": [cid["Body weight"], cid[loinc["PHQ-9"]]],
                          "date": on([first, first], [0, 1]), "value_as_number": [70.5, np.nan],
                          "instrument": ["weight", "PHQ-9"]})
    m = pd.concat([scores[~in_obs], extra], ignore_index=True)
    measurement = pd.DataFrame({
        "measurement_id": np.arange(70001, 70001 + len(m)), "person_id": m["person_id"],
        "measurement_concept_id": m["concept_id"], "measurement_date": m["date"],
        "measurement_type_concept_id": 0, "value_as_number": m["value_as_number"], "unit_concept_id": 0,
    })
    o = scores[in_obs].reset_index(drop=True)
    observation = pd.DataFrame({
        "observation_id": np.arange(90001, 90001 + len(o)), "person_id": o["person_id"],
        "observation_concept_id": o["concept_id"], "observation_date": o["date"],
        "observation_type_concept_id": 0, "value_as_number": o["value_as_number"], "value_as_string": None,
    })
    return {"concept": concept, "concept_ancestor": ancestor, "care_site": care_site, "person": person,
            "drug_exposure": drug_exposure, "measurement": measurement, "observation": observation}


def _sql_type(series: pd.Series, sa):
    name = str(series.name)
    if name.endswith("_date"):
        return sa.Date
    if name == "birth_datetime":
        return sa.DateTime
    if name in ("month_of_birth", "day_of_birth"):
        return sa.Integer
    if pd.api.types.is_integer_dtype(series):
        return sa.BigInteger
    if pd.api.types.is_float_dtype(series):
        return sa.Double  # sa.Float is single precision (REAL) in DuckDB
    return sa.String


def write_omop(url: str, tables: dict[str, pd.DataFrame], *, schema: str | None = None) -> str:
    """Create the tables in the database at ``url`` (in ``schema``) and fill them; returns ``url``."""
    import sqlalchemy as sa

    from analysis.io._omop_sql import connect

    engine = connect(url)
    try:
        meta = sa.MetaData(schema=schema)
        made = {name: sa.Table(name, meta, *(sa.Column(c, _sql_type(f[c], sa)) for c in f.columns))
                for name, f in tables.items()}
        with engine.begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            meta.create_all(conn)
            for name, frame in tables.items():
                records = frame.astype(object).where(frame.notna(), None).to_dict("records")
                if records:
                    conn.execute(made[name].insert(), records)
    finally:
        engine.dispose()
    return url
