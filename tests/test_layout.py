"""The package's import rules, read from the source (no import runs):

- reading mail (page/, reading/, batch/, cost/) never imports training code, TensorFlow, Keras or
  matplotlib, so a base install without the training extra reads mail; ``cost/plot.py`` alone may
  import matplotlib, inside the function that draws ``docsort cost --plot``;
- in training, train/ and evaluate/ never import each other: what both need lives in
  training/datasets/, which imports neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "docsort"
INFERENCE = ("page", "reading", "batch", "cost")
TRAINING_ONLY = ("tensorflow", "keras", "matplotlib", "tf2onnx", "onnx")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, at module level) for every import in ``path``, relative ones resolved."""
    return _imports_in(path.read_text(), ".".join(path.relative_to(REPO).with_suffix("").parts[:-1]))


def _imports_in(source: str, package: str) -> list[tuple[str, int, bool]]:
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from docsort.training import train`` imports the submodule too.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in top_level) for name in names]
    return found


def _modules(*parts: str) -> list[Path]:
    return sorted((PACKAGE.joinpath(*parts)).rglob("*.py"))


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_reading_mail_never_imports_training_or_its_libraries():
    broken = []
    for stage in INFERENCE:
        for path in _modules(stage):
            for module, line, top in _imports(path):
                where = f"{path.relative_to(REPO)}:{line} imports {module}"
                if _is(module, "docsort.training"):
                    broken.append(where)
                elif any(_is(module, lib) for lib in TRAINING_ONLY):
                    plotting = path == PACKAGE / "cost" / "plot.py" and _is(module, "matplotlib") and not top
                    if not plotting:
                        broken.append(where)
    assert broken == []


def test_train_and_evaluate_share_only_datasets():
    broken = []
    for own, other in (("train", "evaluate"), ("evaluate", "train")):
        for path in _modules("training", own):
            broken += [f"{path.relative_to(REPO)}:{line} imports {module}"
                       for module, line, _ in _imports(path) if _is(module, f"docsort.training.{other}")]
    for path in _modules("training", "datasets"):
        broken += [f"{path.relative_to(REPO)}:{line} imports {module}" for module, line, _ in _imports(path)
                   if _is(module, "docsort.training.train") or _is(module, "docsort.training.evaluate")]
    assert broken == []


def test_the_rules_see_the_imports_they_forbid():
    """The checker itself: a module-level and a nested import, absolute and relative."""
    source = "import numpy\nfrom ..evaluate import tradeoff\n\ndef f():\n    import tensorflow as tf\n"
    found = {(m, top) for m, _, top in _imports_in(source, "docsort.training.train")}
    assert ("docsort.training.evaluate.tradeoff", True) in found
    assert ("tensorflow", False) in found
