"""The HTML report and the batch index as a reader's browser shows them (headless Chromium).

Each page is opened 1000 px wide: it must load with no console error and no request (every
image is a data: URI), every image must decode, nothing may be wider than the page, every
in-page link must have its target, and no script may be in it, even when a parameter or a
data value holds markup. A screenshot of each page's first screen is kept under
``reports/test-artefacts/`` (ignored by git).

Chromium comes from ``scripts/install-test-services.sh`` (Debian's chromium); without it
these tests are skipped, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import INSTALL_SCRIPT, chromium_binary, inspect_page

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "reports" / "test-artefacts"
SMALL = ROOT / "tests" / "fixtures" / "data"
#: the batch's cohorts: two site subsets of the sample, a 30- and a 12-patient clinic
COHORTS = ("site_A", "site_B", "clinic30", "cohort12")
#: a title that would run a script, and a tag that would fetch, if it reached the page as markup
HOSTILE_TITLE = '<script>alert(1)</script> <img src="https://example.org/x.png" onerror="alert(2)"> & "quotes"'


@pytest.fixture(scope="session")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        message = f"headless Chromium is not installed: run {INSTALL_SCRIPT} (as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the browser checks")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def sample_report(tmp_path_factory):
    from analysis.report import ReportParameters
    from analysis.report.render import render_report

    result = render_report(ReportParameters(), tmp_path_factory.mktemp("browser") / "sample")
    assert result.status == "ok", result.error
    return result.out / "report.html"


@pytest.fixture(scope="session")
def batch(tmp_path_factory):
    """A batch of two site cohorts (one titled with markup) and the two small hand-built clinics."""
    from analysis.report.batch import run_batch

    folder = tmp_path_factory.mktemp("browser-batch")
    spec = folder / "spec.toml"
    title = HOSTILE_TITLE.replace("\\", "\\\\").replace('"', '\\"')
    spec.write_text(f'[[cohort]]\nname = "site_A"\nsites = ["site_A"]\ntitle = "{title}"\n\n'
                    '[[cohort]]\nname = "site_B"\nsites = ["site_B"]\n\n'
                    f'[[cohort]]\nname = "clinic30"\ndata = "{SMALL / "clinic30"}"\n\n'
                    f'[[cohort]]\nname = "cohort12"\ndata = "{SMALL / "cohort12"}"\n')
    results = run_batch(spec, folder / "out", workers=2, progress=False)
    assert [(r.name, r.status) for r in results] == [(n, "ok") for n in COHORTS], \
        [(r.name, r.status, r.error) for r in results]
    return folder / "out"


def assert_reads_well(report, *, min_images: int = 0) -> None:
    """Every check of a page a reader opens (see the module docstring)."""
    assert report.console_errors == [], f"{report.url}: console errors"
    assert report.requests + report.blocked_requests == [], f"{report.url}: the page requested these (it must need nothing)"
    assert report.broken_images == [], f"{report.url}: images that do not decode"
    assert report.images >= min_images, f"{report.url}: {report.images} images, expected at least {min_images}"
    assert report.overflowing == [], f"{report.url}: wider than the 1000-px page"
    assert report.unresolved_links == [], f"{report.url}: in-page links without a target"
    assert report.scripts == 0 and report.handlers == [], f"{report.url}: scripts or event handlers in the page"


# --- the checks themselves catch what they look for ----------------------------------------------


def test_the_browser_checks_catch_each_problem(chromium, tmp_path):
    """A page with one of each problem: every check reports it (the checks are not vacuous)."""
    wide = "".join(f"<td>column_{i}_with_a_long_unbreakable_label</td>" for i in range(12))
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        "<script>console.error('boom')</script>"
        "<img alt='remote' src='http://127.0.0.1:9/x.png'>"
        "<img alt='corrupt' src='data:image/png;base64,AAAA'>"
        f"<table><tr>{wide}</tr></table>"
        "<a href='#missing'>to nowhere</a> <a href='#here'>here</a><h2 id='here'>Here</h2>"
        "<p onclick='x()'>handler</p></body></html>")
    report = inspect_page(page, binary=chromium, screenshot=tmp_path / "bad.png")
    assert any("boom" in e for e in report.console_errors)
    assert report.requests == ["http://127.0.0.1:9/x.png"]
    assert len(report.broken_images) == 2 and report.images == 2
    assert any(o.startswith("table") for o in report.overflowing) and report.page_width > 1000
    assert report.links == ["#missing", "#here"] and report.unresolved_links == ["#missing"]
    assert report.scripts == 1 and report.handlers == ["p onclick"]
    assert (tmp_path / "bad.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_content_security_policy_blocks_scripts_and_fetches(chromium, tmp_path):
    """A script or a remote image that got into a report page would neither run nor load."""
    from analysis.report.html import page

    body = "<h2>A</h2><script>document.title = 'ran'</script><img alt='r' src='http://127.0.0.1:9/y.png'>"
    path = tmp_path / "csp.html"
    path.write_text(page("", title="kept", footer=[]).replace("<main>", "<main>" + body))  # unsanitised
    report = inspect_page(path, binary=chromium)
    assert report.title == "kept", "the script ran"
    assert report.requests == [] and report.blocked_requests == ["http://127.0.0.1:9/y.png"], \
        "the policy let the image be fetched"
    assert any("Content Security Policy" in e for e in report.console_errors)


# --- the pages ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sample_report_reads_well_in_a_browser(chromium, sample_report):
    report = inspect_page(sample_report, binary=chromium, screenshot=ARTEFACTS / "sample-report-first-screen.png")
    assert_reads_well(report, min_images=4)
    assert report.has_contents and len(report.links) >= 5, "the table of contents links the sections"
    assert report.screenshot is not None and report.screenshot.stat().st_size > 10_000


@pytest.mark.slow
def test_batch_index_and_its_reports_read_well_in_a_browser(chromium, batch):
    index = inspect_page(batch / "index.html", binary=chromium, screenshot=ARTEFACTS / "batch-index-first-screen.png")
    assert_reads_well(index)
    for name in COHORTS:
        report = inspect_page(batch / name / "report.html", binary=chromium,
                              screenshot=ARTEFACTS / f"batch-{name}-first-screen.png")
        assert_reads_well(report, min_images=2 if name == "cohort12" else 4)
        assert report.has_contents and len(report.links) >= 5, f"{name}: the table of contents links the sections"


@pytest.mark.slow
def test_markup_in_a_title_is_shown_as_text(chromium, batch):
    """The hostile title reaches the page's <title>, its heading and the index as text only."""
    report = inspect_page(batch / "site_A" / "report.html", binary=chromium)
    assert report.title == HOSTILE_TITLE
    assert HOSTILE_TITLE in report.text, "the title is shown, as typed"
    index = inspect_page(batch / "index.html", binary=chromium)
    assert index.scripts == 0 and index.handlers == [] and index.requests == []
