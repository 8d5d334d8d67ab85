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
# The figure set of a paper, drawn at each journal column width asked for (single 3.5 in,
# double 7.2 in; files end in `_single` and `_double`) and saved as PDF (fonts embedded), SVG,
# PNG and, if asked for, TIFF (300 dpi). `ketamine-outcomes figures` renders this notebook and
# writes a manifest of SHA-256 hashes; two runs on the same data give identical files.

# %% tags=["parameters"]
data = ""
output_dir = ""
instrument = "PHQ-9"
min_cell_count = 11
formats = ["pdf", "svg", "png"]
dpi = 300
widths = ["single", "double"]

# %%
import analysis
from analysis.report import paper

params = paper.FigureParameters.from_namespace(globals())
dataset = analysis.load_dataset(params.data_path())
outcomes = analysis.derive_outcomes(dataset, params.instrument)
save = dict(out=params.output_dir, formats=params.formats, dpi=params.dpi)

# %% [markdown]
# **Figure 1.** Improvement at the end of induction and the response categories.

# %%
for width in params.widths:
    fig1 = paper.figure_response(outcomes, width=width, k=params.min_cell_count)
    paper.save_paper_figure(fig1, name=f"figure1_response_{width}", **save)
fig1

# %% [markdown]
# **Figure 2.** Relapse after induction among responders.

# %%
for width in params.widths:
    fig2 = paper.figure_relapse(outcomes, width=width, k=params.min_cell_count)
    paper.save_paper_figure(fig2, name=f"figure2_relapse_{width}", **save)
fig2

# %% [markdown]
# **Figure 3.** How long each maintenance infusion held, by rapamycin exposure.

# %%
for width in params.widths:
    fig3 = paper.figure_durability(outcomes, width=width, k=params.min_cell_count)
    paper.save_paper_figure(fig3, name=f"figure3_durability_{width}", **save)
fig3

# %% [markdown]
# **Figure 4.** Mean scores by week since the first session, by response category.

# %%
for width in params.widths:
    fig4 = paper.figure_trajectories(dataset, outcomes, width=width, k=params.min_cell_count)
    paper.save_paper_figure(fig4, name=f"figure4_trajectories_{width}", **save)
fig4
