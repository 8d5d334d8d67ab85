# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a dataset
#
# A guided start for interactive work in JupyterLab: load and validate a dataset, derive the
# outcomes, look at relapse after induction. Change `data` to your export's folder. Unlike the
# rendered reports, this notebook shows patient-level tables: keep it on the clinic's machines.

# %% tags=["parameters"]
data = ""
instrument = "PHQ-9"

# %%
import analysis
from analysis.survival import kaplan_meier

dataset = analysis.load_dataset(data or analysis.sample_path())
dataset

# %% [markdown]
# Warnings found while loading (errors would have stopped the load, each with its file, line and column):

# %%
dataset.report.to_frame()

# %% [markdown]
# The outcome definitions are parameters (docs/outcomes.md); for example
# `analysis.derive_outcomes(dataset, instrument, relapse_confirmations=1)`.

# %%
outcomes = analysis.derive_outcomes(dataset, instrument)
outcomes.attrition

# %%
outcomes.response_summary()

# %%
outcomes.courses.head()

# %% [markdown]
# Relapse after induction among responders, and how long each later infusion held:

# %%
relapse = kaplan_meier(outcomes.relapse, "time", "event")
relapse.plot()
relapse.median

# %%
kaplan_meier(outcomes.durability, "time", "event", group="drug_rapamycin").median
