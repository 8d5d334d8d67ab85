"""A batch never publishes reports from which a count of 1 to k - 1 patients can be worked out by subtraction."""

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


def test_a_cohort_inside_another_is_withheld_whatever_the_difference():
    everyone = cohort(1, range(100), name="all")
    for short in (3, 10, 11, 60):                  # 11 or more short: the rest's cells are still not suppressed
        assert set(withheld_cohorts([everyone, cohort(2, range(short, 100))])) == {2}
    reason = withheld_cohorts([everyone, cohort(2, range(3, 100))])[2]
    assert reason.startswith("all its patients are in the report of row 1 ('all')")
    assert not any(ch.isdigit() for ch in reason.replace("row 1", ""))      # never a count
    # the other way round: the larger cohort after the smaller one
    reason = withheld_cohorts([cohort(1, range(40), name="site"), cohort(2, range(100))])[2]
    assert reason.startswith("it holds every patient of row 1 ('site') that no other report covers")


def test_a_network_and_its_clinics_are_not_published_together():
    a, b, c = range(0, 218), range(218, 495), range(495, 500)
    network = cohort(1, range(500), name="network")
    clinics = [cohort(2, a, name="A"), cohort(3, b, name="B"), cohort(4, c, name="C")]
    withheld = withheld_cohorts([network, *clinics])
    assert set(withheld) == {2, 3}                  # C (5 patients) shows no count: it is not compared
    assert "row 1 ('network')" in withheld[2]
    # the clinics first: the network is withheld, also when some of its patients are in no clinic listed
    assert set(withheld_cohorts([*clinics, cohort(5, range(500))])) == {5}
    assert set(withheld_cohorts([*clinics[:2], cohort(5, range(600))])) == {5}
    # clinics alone, however many: disjoint, every report is published
    assert withheld_cohorts([cohort(i + 1, range(20 * i, 20 * i + 20)) for i in range(50)]) == {}


def test_overlapping_cohorts_are_published_while_each_keeps_patients_of_its_own():
    x, only_1, only_2 = range(0, 100), range(100, 105), range(105, 200)
    assert withheld_cohorts([cohort(1, [*x, *only_1]), cohort(2, [*x, *only_2])]) == {}
    # with their union as well, (x + only_1) + (x + only_2) - union = x, and union - second = only_1
    spec = [cohort(1, [*x, *only_1]), cohort(2, [*x, *only_2]), cohort(3, [*x, *only_1, *only_2])]
    assert set(withheld_cohorts(spec)) == {3}
    # a cohort covered by two others together, inside neither
    reason = withheld_cohorts([cohort(1, range(0, 60), name="P"), cohort(2, range(40, 100), name="Q"),
                               cohort(3, range(30, 70), name="R")])[3]
    assert "reports of row 1 ('P') and row 2 ('Q')" in reason
    # a cohort with patients of its own that takes every patient only an earlier one had
    spec = [cohort(1, range(0, 50), name="P"), cohort(2, range(30, 80), name="Q"),
            cohort(3, [*range(0, 35), *range(200, 250)], name="S")]
    reason = withheld_cohorts(spec)[3]
    assert reason.startswith("it holds every patient of row 1 ('P') that no other report covers")


def test_the_same_patients_twice_and_disjoint_folders():
    # the same patients under other definitions: the relapses one rule confirms and the other not
    same = [cohort(1, range(50)), cohort(2, range(50)), cohort(3, range(50))]
    assert set(withheld_cohorts(same)) == {2, 3}
    # a second folder's patients are keyed apart: its 45 patients are not "the first 45 of folder one"
    assert withheld_cohorts([cohort(1, range(50)), cohort(2, range(1000, 1045))]) == {}


def test_a_small_cohort_shows_no_count_and_is_not_compared():
    # 8 patients: its report shows no count from 1 to 10, so it neither conflicts nor protects
    spec = [cohort(1, range(100)), cohort(2, range(8)), cohort(3, range(100, 150))]
    assert withheld_cohorts(spec) == {}
    assert set(withheld_cohorts([cohort(1, range(8)), cohort(2, range(0, 60)), cohort(3, range(0, 20))])) == {3}


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


def brute_force_cell_leak(sets: list[set], cell_of: dict, k: int) -> bool:
    """Whether reports of these cohorts give, added and subtracted, a count from 1 to k - 1
    of some group of patients, each report showing its total and its two cells (both hidden
    when either is from 1 to k - 1). Every group, as a set of (atom, cell) pairs, is tried:
    it can be worked out when its indicator lies in the span of what the reports show
    (independent of the module: exact projection over all 2^(2 x atoms) groups)."""
    patients = sorted(set().union(*sets))
    signature = {p: tuple(p in s for s in sets) for p in patients}
    atoms = sorted(set(signature.values()))
    counts = np.zeros((len(atoms), 2))
    for p in patients:
        counts[atoms.index(signature[p]), cell_of[p]] += 1
    shown = []
    for i, members in enumerate(sets):
        inside = np.array([a[i] for a in atoms], dtype=float)
        shown.append(np.kron(inside, [1.0, 1.0]))                     # its total
        cells = [sum(cell_of[p] == x for p in members) for x in (0, 1)]
        if not any(1 <= c < k for c in cells):
            shown += [np.kron(inside, [1.0, 0.0]), np.kron(inside, [0.0, 1.0])]
    _, s, vt = np.linalg.svd(np.array(shown), full_matrices=False)
    basis = vt[: int((s > 1e-9 * s[0]).sum())]
    groups = np.array(list(itertools.product((0.0, 1.0), repeat=2 * len(atoms))))
    known = np.linalg.norm(groups - (groups @ basis.T) @ basis, axis=1) < 1e-8
    size = groups @ counts.ravel()
    return bool((known & (size >= 1) & (size < k)).any())


def random_family(seed: int) -> tuple[list[set], dict]:
    """2 to 4 cohorts of a 60-patient universe (some variants of earlier ones), at most 7
    atoms (so the brute force stays exhaustive), and one binary cell per patient."""
    rng = np.random.default_rng(seed)
    universe = 60
    while True:
        sets = []
        for _ in range(rng.integers(2, 5)):
            if sets and rng.random() < 0.5:          # a variant of an earlier cohort: a few patients more or fewer
                base = sets[int(rng.integers(0, len(sets)))]
                changed = set(rng.choice(universe, int(rng.integers(1, 12))).tolist())
                members = base - changed if rng.random() < 0.5 else base | changed
            else:
                start = int(rng.integers(0, 30))
                members = set(range(start, start + int(rng.integers(11, 40)))) - set(rng.choice(universe, 3).tolist())
            sets.append(members)
        everyone = set().union(*sets)
        if len({tuple(p in s for s in sets) for p in everyone}) <= 7:
            break
    share = rng.uniform(0.05, 0.5)
    return sets, {p: int(rng.random() < share) for p in sorted(set().union(*sets))}


def lies_within_the_others(sets: list[set]) -> bool:
    """Whether some cohort has no patient outside the others (plain sets, independent of the module)."""
    return any(not (s - set().union(*(t for j, t in enumerate(sets) if j != i))) for i, s in enumerate(sets))


@pytest.mark.parametrize("seed", range(40))
def test_published_cohorts_give_no_count_by_subtraction_and_each_withheld_one_lies_within(seed):
    sets, cell_of = random_family(seed)
    spec = [cohort(i + 1, s) for i, s in enumerate(sets)]
    withheld = withheld_cohorts(spec)
    kept = [s for i, s in enumerate(sets) if i + 1 not in withheld and len(s) >= 11]
    assert not brute_force_leaks(kept, 11)
    assert not brute_force_cell_leak(kept, cell_of, 11)
    for row in withheld:                                     # each was withheld for a reason
        before = [s for i, s in enumerate(sets[: row - 1]) if i + 1 not in withheld and len(s) >= 11]
        assert lies_within_the_others(before + [sets[row - 1]])


def test_the_families_withheld_from_would_have_given_counts_by_subtraction():
    leaking = 0
    for seed in range(40):
        sets, cell_of = random_family(seed)
        large = [s for s in sets if len(s) >= 11]
        if brute_force_cell_leak(large, cell_of, 11):
            leaking += 1
            assert withheld_cohorts([cohort(i + 1, s) for i, s in enumerate(sets)])
    assert leaking >= 10            # the brute force finds real leaks: the check above can fail


def test_plan_batch_on_the_sample_publishes_the_sites_and_withholds_what_lies_within_them():
    sample = analysis.sample_path()
    rows = [{"name": "site_A", "sites": ["site_A"]}, {"name": "iv_starters", "routes": ["iv"]},
            {"name": "site_A_no_sl", "sites": ["site_A"], "routes": ["iv", "intranasal", "im"]},
            {"name": "site_B", "sites": ["site_B"]}, {"name": "site_C", "sites": ["site_C"]}, {"name": "all"}]
    jobs = plan_batch([{**r, "data": str(sample)} for r in rows], Path("reports"))
    status = {job.name: (job.status if job.params is None else "planned") for job in jobs}
    # the iv starters of the three sites overlap site_A, each keeping patients of its own; site_A
    # without its sublingual starters lies within the two; site_B leaves the iv starters their site_C
    # patients, but site_C would take those too (the iv report would lie within the three sites')
    assert status == {"site_A": "planned", "iv_starters": "planned", "site_A_no_sl": "withheld",
                      "site_B": "planned", "site_C": "withheld", "all": "withheld"}
    assert "it holds every patient of row 2 ('iv_starters')" in next(j for j in jobs if j.name == "site_C").error
    job = next(j for j in jobs if j.name == "site_A_no_sl")
    assert job.error.startswith("row 3: all its patients are in the reports of row 1 ('site_A') and row 2")


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
    assert "all its patients are in the report of row 1 ('site_A')" in index["site_A_no_sl"]["error"]
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


def test_the_brute_force_finds_the_network_less_its_clinic():
    # the clinic shows 14 and 11, the network 17 and 23: the 15 other patients hold 3 in the first cell
    network, clinic = set(range(40)), set(range(25))
    cell_of = {p: int(p < 14 or p in (30, 31, 32)) for p in range(40)}
    assert brute_force_cell_leak([network, clinic], cell_of, 11)
    assert not brute_force_cell_leak([network], cell_of, 11) and not brute_force_cell_leak([clinic], cell_of, 11)
    assert set(withheld_cohorts([cohort(1, network), cohort(2, clinic)])) == {2}
