"""Known adjunct drugs: their class, and diazepam-equivalent doses for benzodiazepines.

The medications table may leave ``drug_class`` empty; the loader fills it from this map
for known drug names (case-insensitive). Unknown drugs keep an empty class and are still
analysed by name.

Diazepam equivalents are the approximate oral doses equivalent to 10 mg diazepam from the
Ashton manual (Ashton 2002, "Benzodiazepines: how they work and how to withdraw",
table 1), expressed as mg diazepam per mg of the drug. They are clinical approximations,
suited to dose bands and a continuous covariate, not to pharmacokinetic claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DRUG_CLASSES", "DIAZEPAM_EQUIVALENT_PER_MG", "drug_class_of", "diazepam_equivalent_mg"]

#: drug name (lower case) -> drug class
DRUG_CLASSES: dict[str, str] = {
    # mTORC1 inhibitor given about 2 h before an infusion (Abdallah et al. 2020)
    "rapamycin": "mtor_inhibitor",
    "sirolimus": "mtor_inhibitor",
    # benzodiazepines and Z-drugs acting on the same receptor
    "alprazolam": "benzodiazepine",
    "chlordiazepoxide": "benzodiazepine",
    "clobazam": "benzodiazepine",
    "clonazepam": "benzodiazepine",
    "diazepam": "benzodiazepine",
    "lorazepam": "benzodiazepine",
    "oxazepam": "benzodiazepine",
    "temazepam": "benzodiazepine",
    "nitrazepam": "benzodiazepine",
    "midazolam": "benzodiazepine",
    # anticonvulsants and mood stabilisers
    "lamotrigine": "lamotrigine",
    "lithium": "mood_stabiliser",
    "valproate": "mood_stabiliser",
    # antidepressants given alongside
    "sertraline": "ssri",
    "escitalopram": "ssri",
    "citalopram": "ssri",
    "fluoxetine": "ssri",
    "paroxetine": "ssri",
    "venlafaxine": "snri",
    "duloxetine": "snri",
    "bupropion": "ndri",
    "mirtazapine": "nassa",
    # others met in ketamine clinics
    "naltrexone": "opioid_antagonist",
    "psychotherapy": "psychotherapy",
    "ondansetron": "antiemetic",
}

#: mg diazepam equivalent to 1 mg of the drug (Ashton 2002, table 1: dose equivalent to 10 mg diazepam)
DIAZEPAM_EQUIVALENT_PER_MG: dict[str, float] = {
    "alprazolam": 10 / 0.5,
    "chlordiazepoxide": 10 / 25,
    "clobazam": 10 / 20,
    "clonazepam": 10 / 0.5,
    "diazepam": 1.0,
    "lorazepam": 10 / 1.0,
    "oxazepam": 10 / 20,
    "temazepam": 10 / 20,
    "nitrazepam": 10 / 10,
}


def drug_class_of(drugs: pd.Series) -> pd.Series:
    """Class of each drug name from :data:`DRUG_CLASSES` (missing for unknown drugs).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.drugs import drug_class_of
    >>> drug_class_of(pd.Series(["Lorazepam", "rapamycin", "foo"])).tolist()
    ['benzodiazepine', 'mtor_inhibitor', nan]
    """
    return drugs.astype("string").str.strip().str.lower().map(DRUG_CLASSES).astype(object)


def diazepam_equivalent_mg(drugs: pd.Series, dose_mg: pd.Series) -> pd.Series:
    """Dose in mg diazepam-equivalent, missing where the drug is not a known benzodiazepine
    or the dose is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.drugs import diazepam_equivalent_mg
    >>> diazepam_equivalent_mg(pd.Series(["lorazepam", "clonazepam"]), pd.Series([1.0, 2.0])).tolist()
    [10.0, 40.0]
    """
    factor = drugs.astype("string").str.strip().str.lower().map(DIAZEPAM_EQUIVALENT_PER_MG)
    return (pd.to_numeric(dose_mg, errors="coerce") * factor.astype(float)).astype(float).rename("dose_dze_mg")


def is_benzodiazepine(drugs: pd.Series) -> np.ndarray:
    """Boolean array: is each drug a benzodiazepine by the built-in map."""
    return (drug_class_of(drugs) == "benzodiazepine").to_numpy()
