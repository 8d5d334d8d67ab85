"""Docs that run: every ``python`` code block of README.md and docs/*.md, and every docstring
example of the package, runs as written against the bundled sample or data it builds.

Markdown: the ``python`` blocks of one file run in order in one namespace, from the
repository root (so ``analysis.load_dataset("data/sample")`` works as in the README); a block
written as a doctest (``>>>`` prompts) is checked as one, with its printed output compared.
Docstrings: :mod:`doctest` over every module of the package, with no ``+SKIP`` left.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import analysis

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)[^\n]*\n(?P<body>.*?)^```\s*$", re.M | re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    out = []
    for m in _FENCE.finditer(text):
        if m.group("lang").lower() in ("python", "py", "pycon"):
            out.append((text.count("\n", 0, m.start()) + 2, m.group("body")))
    return out


def _modules() -> list[str]:
    names = [analysis.__name__]
    for info in pkgutil.walk_packages(analysis.__path__, prefix="analysis."):
        names.append(info.name)
    return sorted(names)


@pytest.fixture
def at_root(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(ROOT)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_markdown_examples_run(path: Path, at_root):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for line, code in blocks:
        where = f"{path.relative_to(ROOT)} line {line}"
        if code.lstrip().startswith(">>>"):
            test = parser.get_doctest(code, namespace, where, str(path), line)
            result = runner.run(test, clear_globs=False)
            assert result.failed == 0, f"{where}: {result.failed} doctest example(s) failed (output above)"
        else:
            try:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the documentation's own examples
            except Exception as exc:  # re-raised with the place in the document
                raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run(module: str, at_root):
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    skipped = []
    for test in finder.find(mod, module):
        if test.lineno is None and test.docstring is None:
            continue
        for ex in test.examples:
            if ex.options.get(doctest.SKIP):
                skipped.append(f"{test.name} line {ex.lineno + (test.lineno or 0) + 1}")
        runner.run(test)
    summary = runner.summarize(verbose=False)
    assert not skipped, f"{module}: docstring examples skipped instead of run: {skipped}"
    assert summary.failed == 0, f"{module}: {summary.failed} docstring example(s) failed (output above)"
