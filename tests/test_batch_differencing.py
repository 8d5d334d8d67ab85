"""A batch never publishes reports whose difference is a group of 1 to k - 1 patients."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import analysis
from analysis.cli import main
from analysis.report.batch import plan_batch
from analysis.report.differencing import CohortMembers, withheld_cohorts


def cohort(row, patients, k=11, name=None):
    return CohortMembers(row, name or f"c{row}", np.asarray(sorted(patients), dtype=np.int64), k)


def test_a_nested_cohort_three_patients_short_is_withheld_and_eleven_short_is_not():
    everyone = cohort(1, range(100), name="all")
    assert set(withheld_cohorts([everyone, cohort(2, range(3, 100))])) == {2}
    assert set(withheld_cohorts([everyone, cohort(2, range(10, 100))])) == {2}
    assert withheld_cohorts([everyone, cohort(2, range(11, 100))]) == {}
    reason = withheld_cohorts([everyone, cohort(2, range(3, 100))])[2]
    assert "row 1 ('all')" in reason and "fewer than 11 patients" in reason
    assert "3" not in reason.replace("row 1", "")          # never the size of the group


def test_the_network_less_all_its_clinics_but_a_small_one_withholds_the_last_large_clinic():
    a, b, c = range(0, 218), range(218, 495), range(495, 500)       # clinic C: 5 patients
    network = cohort(1, range(500), name="network")
    spec = [network, cohort(2, a, name="A"), cohort(3, b, name="B"), cohort(4, c, name="C")]
    withheld = withheld_cohorts(spec)
    assert set(withheld) == {3}                     # network - A - B would be C; C itself shows nothing small
    assert "row 1 ('network') and row 2 ('A')" in withheld[3]
    # the order of the spec decides which report is kept
    assert set(withheld_cohorts([spec[1], spec[2], spec[3], cohort(5, range(500))])) == {5}
    # clinics that are all large: every report is published
    assert withheld_cohorts([network, cohort(2, a), cohort(3, range(218, 500))]) == {}


def test_cohorts_that_overlap_without_nesting_cannot_be_subtracted_to_their_small_part():
    x, small, large = range(0, 100), range(100, 105), range(105, 200)
    assert withheld_cohorts([cohort(1, [*x, *small]), cohort(2, [*x, *large])]) == {}
    # but with the union of the two as well, (x + small) + (x + large) - union = x, and union - second = small
    spec = [cohort(1, [*x, *small]), cohort(2, [*x, *large]), cohort(3, [*x, *small, *large])]
    assert set(withheld_cohorts(spec)) == {3}


def test_identical_cohorts_and_disjoint_folders_are_no_difference():
    same = [cohort(1, range(50)), cohort(2, range(50)), cohort(3, range(50))]
    assert withheld_cohorts(same) == {}
    # a second folder's patients are keyed apart: its 45 patients are not "the first 45 of folder one"
    assert withheld_cohorts([cohort(1, range(50)), cohort(2, range(1000, 1045))]) == {}


def test_two_small_groups_adding_up_to_a_small_one_are_found_together():
    # A = x + s1, B = x + s2, C = x: A - C = s1 (4), B - C = s2 (5): both withheld after C
    x, s1, s2 = range(0, 50), range(50, 54), range(54, 59)
    spec = [cohort(1, x), cohort(2, [*x, *s1]), cohort(3, [*x, *s2])]
    assert set(withheld_cohorts(spec)) == {2, 3}
    # two small groups no combination separates, but whose union it gives: P - Q = s1 + s2 (9)
    y = range(100, 150)
    spec = [cohort(1, [*x, *s1, *s2], name="P"), cohort(2, [*y, *s1], name="R"), cohort(3, x, name="Q")]
    withheld = withheld_cohorts(spec)
    assert set(withheld) == {3} and "row 1 ('P')" in withheld[3] and "'R'" not in withheld[3]


def test_a_lower_threshold_on_shared_patients_is_withheld_but_not_on_other_patients():
    withheld = withheld_cohorts([cohort(1, range(100)), cohort(2, range(50), k=5)])
    assert set(withheld) == {2} and "one min_cell_count" in withheld[2]
    assert withheld_cohorts([cohort(1, range(100)), cohort(2, range(100, 150), k=5)]) == {}
    # a small cohort with a lower threshold shows counts from 5 to 10 the other report hides
    assert set(withheld_cohorts([cohort(1, range(100)), cohort(2, range(8), k=5)])) == {2}


def brute_force_leaks(sets: list[set], k: int) -> bool:
    """Whether some union of atoms with 1 to k - 1 patients is a linear combination of the
    cohorts' indicators, by exact rank over every such union (independent of the module)."""
    patients = sorted(set().union(*sets))
    signature = {p: tuple(p in s for s in sets) for p in patients}
    atoms = sorted(set(signature.values()))
    sizes = [sum(signature[p] == a for p in patients) for a in atoms]
    m = np.array([[a[i] for a in atoms] for i in range(len(sets))], dtype=float)
    rank = np.linalg.matrix_rank(m)
    for r in range(1, len(atoms) + 1):
        for union in itertools.combinations(range(len(atoms)), r):
            if 1 <= sum(sizes[i] for i in union) < k:
                u = np.zeros(len(atoms))
                u[list(union)] = 1
                if np.linalg.matrix_rank(np.vstack([m, u])) == rank:
                    return True
    return False


@pytest.mark.parametrize("seed", range(40))
def test_published_cohorts_never_leak_and_each_withheld_one_would(seed):
    rng = np.random.default_rng(seed)
    universe = 60
    sets = []
    for _ in range(rng.integers(2, 6)):
        if sets and rng.random() < 0.5:          # a variant of an earlier cohort: a few patients more or fewer
            base = sets[int(rng.integers(0, len(sets)))]
            changed = set(rng.choice(universe, int(rng.integers(1, 12))).tolist())
            members = base - changed if rng.random() < 0.5 else base | changed
        else:
            start = int(rng.integers(0, 30))
            members = set(range(start, start + int(rng.integers(11, 40)))) - set(rng.choice(universe, 3).tolist())
        sets.append(members)
    spec = [cohort(i + 1, s) for i, s in enumerate(sets)]
    withheld = withheld_cohorts(spec)
    kept = [s for i, s in enumerate(sets) if i + 1 not in withheld and len(s) >= 11]
    assert not brute_force_leaks(kept, 11)
    for row in withheld:                                     # each was withheld for a reason
        before = [s for i, s in enumerate(sets[: row - 1]) if i + 1 not in withheld and len(s) >= 11]
        assert brute_force_leaks(before + [sets[row - 1]], 11)


def test_plan_batch_on_the_sample_withholds_a_site_less_its_sublingual_patients():
    sample = analysis.sample_path()
    rows = [{"name": "all"}, {"name": "site_A", "sites": ["site_A"]}, {"name": "site_B", "sites": ["site_B"]},
            {"name": "site_A_no_sl", "sites": ["site_A"], "routes": ["iv", "intranasal", "im"]},
            {"name": "no_im", "routes": ["iv", "intranasal", "sublingual"]}]
    jobs = plan_batch([{**r, "data": str(sample)} for r in rows], Path("reports"))
    status = {job.name: (job.status if job.params is None else "planned") for job in jobs}
    # site_A has 10 patients whose first session was sublingual; 21 patients of the sample started im
    assert status == {"all": "planned", "site_A": "planned", "site_B": "planned", "site_A_no_sl": "withheld",
                      "no_im": "planned"}
    job = next(j for j in jobs if j.name == "site_A_no_sl")
    assert job.error.startswith("row 4: its counts and those of ") and "row 2 ('site_A')" in job.error


@pytest.mark.slow
def test_a_withheld_cohort_gets_no_report_and_its_old_report_is_removed(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text('[[cohort]]\nname = "site_A"\nsites = ["site_A"]\n\n'
                    '[[cohort]]\nname = "site_A_no_sl"\nsites = ["site_A"]\nroutes = ["iv", "intranasal", "im"]\n')
    out = tmp_path / "out"
    (out / "site_A_no_sl").mkdir(parents=True)
    (out / "site_A_no_sl" / "report.html").write_text("an earlier batch's report")
    assert main(["batch", str(spec), "--out", str(out), "--workers", "1"]) == 1
    index = {r["name"]: r for r in json.loads((out / "index.json").read_text())}
    assert index["site_A"]["status"] == "ok" and index["site_A_no_sl"]["status"] == "withheld"
    assert "fewer than 11 patients" in index["site_A_no_sl"]["error"]
    assert not (out / "site_A_no_sl").exists()
    page = (out / "index.html").read_text()
    assert 'class="withheld"' in page and 'href="site_A_no_sl/report.html"' not in page
    assert "withheld" in capsys.readouterr().err


def test_a_copy_of_the_data_folder_is_the_same_patients(tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(analysis.sample_path(), copy)
    other = tmp_path / "other"
    analysis.simulate(n_patients=300, seed=5).write(other)
    rows = [{"name": "site_A", "sites": ["site_A"], "data": str(analysis.sample_path())},
            {"name": "other", "data": str(other)},
            {"name": "copy_no_sl", "sites": ["site_A"], "routes": ["iv", "intranasal", "im"], "data": str(copy)}]
    jobs = plan_batch(rows, tmp_path / "reports")
    assert [job.status if job.params is None else "planned" for job in jobs] == ["planned", "planned", "withheld"]


def test_a_published_cohort_inside_another_gets_a_note_for_the_index(tmp_path):
    from analysis.report.batch import write_index
    from analysis.report.differencing import nested_cohorts
    from analysis.report.render import RenderResult

    spec = [cohort(1, range(100), name="all"), cohort(2, range(40), name="A"), cohort(3, range(40, 100), name="B"),
            cohort(4, range(3, 100), name="short")]
    withheld = withheld_cohorts(spec)
    notes = nested_cohorts(spec, withheld)
    assert set(withheld) == {4} and set(notes) == {2, 3}          # the withheld one gets no note
    assert "row 1 ('all')" in notes[2] and "11 or more patients" in notes[2]
    assert nested_cohorts([cohort(1, range(40)), cohort(2, range(40, 80))], {}) == {}
    # the sample: both sites lie inside the whole sample
    sample = str(analysis.sample_path())
    jobs = plan_batch([{"name": "all", "data": sample}, {"name": "site_A", "sites": ["site_A"], "data": sample}],
                      tmp_path / "reports")
    assert jobs[0].note is None and "row 1 ('all')" in jobs[1].note
    results = [RenderResult("all", None, "invalid", error="x"), RenderResult("site_A", None, "invalid", error="y")]
    write_index(results, tmp_path, notes={"site_A": jobs[1].note})
    index = json.loads((tmp_path / "index.json").read_text())
    assert "note" not in index[0] and index[1]["note"] == jobs[1].note
    assert "<strong>note</strong>: lies inside row 1 (&#x27;all&#x27;)" in (tmp_path / "index.html").read_text()
