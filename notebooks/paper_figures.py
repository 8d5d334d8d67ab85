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
# # Paper figures
#
# The figure set of a paper, sized for journal columns (single 3.5 in, double 7.2 in) and
# saved as PDF, SVG and PNG (300 dpi). `ketamine-outcomes figures` renders this notebook and
# writes a manifest of SHA-256 hashes; two runs on the same data give identical files.

# %% tags=["parameters"]
data = ""
output_dir = ""
instrument = "PHQ-9"
min_cell_count = 11
formats = ["pdf", "svg", "png"]
dpi = 300

# %%
import analysis
from analysis.report import paper

params = paper.FigureParameters.from_namespace(globals())
dataset = analysis.load_dataset(params.data_path())
outcomes = analysis.derive_outcomes(dataset, params.instrument)
save = dict(out=params.output_dir, formats=params.formats, dpi=params.dpi)

# %% [markdown]
# **Figure 1.** Improvement at the end of induction and the response categories (double column).

# %%
fig1 = paper.figure_response(outcomes, width="double", k=params.min_cell_count)
paper.save_paper_figure(fig1, name="figure1_response", **save)
fig1

# %% [markdown]
# **Figure 2.** Relapse after induction among responders (single column).

# %%
fig2 = paper.figure_relapse(outcomes, width="single", k=params.min_cell_count)
paper.save_paper_figure(fig2, name="figure2_relapse", **save)
fig2

# %% [markdown]
# **Figure 3.** How long each maintenance infusion held, by rapamycin exposure (single column).

# %%
fig3 = paper.figure_durability(outcomes, width="single", k=params.min_cell_count)
paper.save_paper_figure(fig3, name="figure3_durability", **save)
fig3

# %% [markdown]
# **Figure 4.** Mean scores by week since the first session, by response category (single column).

# %%
fig4 = paper.figure_trajectories(dataset, outcomes, width="single", k=params.min_cell_count)
paper.save_paper_figure(fig4, name="figure4_trajectories", **save)
fig4
