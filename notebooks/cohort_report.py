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
figure_formats = ["png"]
html_path = ""

# %%
# The cohort report: every number, table and figure below comes from analysis.report.CohortReport,
# which suppresses small counts once for the whole report (docs/reports.md). Code is hidden in the HTML.
from analysis.report import CohortReport, ReportParameters

params = ReportParameters.from_namespace(globals())
report = CohortReport(params)
report.header()

# %%
report.summary()

# %%
report.contents()

# %%
report.methods()

# %%
report.data_summary()

# %%
report.attrition()

# %%
report.table_one()

# %%
report.trajectories()

# %%
report.waterfall()

# %%
report.response()

# %%
responders = report.responder_models()
responders

# %%
report.relapse()

# %%
report.course()

# %%
relapse_models = report.relapse_models()
relapse_models

# %%
report.durability()

# %%
report.adjuncts()

# %%
report.mmrm()

# %%
report.sensitivity()

# %%
report.limitations(responder_models=responders.result, relapse_models=relapse_models.result)

# %%
# key_figures.json for the batch index (the semicolon keeps the dict out of the report)
report.save_summary();

# %% tags=["export"]
# Plain papermill writes the HTML report here: `-p html_path report.html --inject-paths`
# (`ketamine-outcomes report` leaves html_path empty and writes report.html itself).
if html_path:
    from analysis.report.render import export_html

    export_html(html_path, globals())
