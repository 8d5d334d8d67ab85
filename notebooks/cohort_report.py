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
# # Cohort report
#
# Outcomes of ketamine therapy in one cohort: who responded, who partly responded, how long the
# response lasted after induction. Render it with `ketamine-outcomes report` (or plain papermill);
# every number below is computed by `analysis.report.CohortReport`, and every count from 1 to
# `min_cell_count - 1` is suppressed.

# %% tags=["parameters"]
data = ""
name = "sample"
title = "Cohort report"
instrument = "PHQ-9"
second_instrument = "auto"
sites = []
routes = []
period_column = "period"
periods = []
definitions = {}
min_cell_count = 11
conf_level = 0.95
seed = 2026
output_dir = ""

# %%
from analysis.report import CohortReport, ReportParameters

params = ReportParameters.from_namespace(globals())
report = CohortReport(params)
report.header()

# %% [markdown]
# The data as loaded and validated, and the patients each derivation step kept.

# %%
report.data_summary()

# %%
report.attrition()

# %%
report.table_one()

# %% [markdown]
# Scores over time and the distribution of improvement at the end of induction.

# %%
report.trajectories()

# %%
report.waterfall()

# %%
report.response()

# %% [markdown]
# Who responds: baseline covariates and response (logistic), and the ordered category
# (proportional odds). Associations in observational data, not effects.

# %%
responders = report.responder_models()
responders

# %% [markdown]
# How long the response lasted after induction, among responders.

# %%
report.relapse()

# %%
relapse_models = report.relapse_models()
relapse_models

# %% [markdown]
# How long each infusion from the end of induction on held, and whether adjuncts changed it.

# %%
report.durability()

# %% [markdown]
# Adjunct drugs: crude, adjusted and within-patient comparisons, and how well the groups balance.

# %%
report.adjuncts()

# %% [markdown]
# The same figures under other definitions, and on a second instrument where one was recorded.

# %%
report.sensitivity()

# %%
report.limitations(responder_models=responders.result, relapse_models=relapse_models.result)

# %% [markdown]
# Headline figures, as listed in a batch index.

# %%
report.save_summary()
