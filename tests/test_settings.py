"""Options' defaults and environment variables live in docsort/settings.py, and the README's
table of variables is the list the code reads, no more and no less."""

from __future__ import annotations

import ast
import re

from conftest import REPO, run_cli
from docsort import settings

PACKAGE = REPO / "docsort"
VARIABLE = re.compile(r"\bDOCSORT_[A-Z_]+\b")


def _readme_variables() -> set[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    return {VARIABLE.search(line).group(0) for line in section.splitlines()
            if line.startswith("| `DOCSORT_")}


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text()


def test_readme_lists_every_variable_the_code_names_and_no_other():
    named = {name for _, text in _sources() for name in VARIABLE.findall(text)}
    assert _readme_variables() == named == set(settings.ENVIRONMENT)


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``os.environ.get("DOCSORT_X")``, ``os.getenv("DOCSORT_X")`` and ``os.environ["DOCSORT_X"]`` reads."""
    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            target = ast.unparse(node.func)
            if target in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and ast.unparse(node.value) in ("os.environ", "environ"):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("DOCSORT_"):
            found.append((node.lineno, key.value))
    return found


def test_only_settings_reads_docsort_variables():
    reads = [f"{path.relative_to(REPO)}:{line} reads {name}"
             for path, text in _sources() if path.name != "settings.py" or path.parent != PACKAGE
             for line, name in _environment_reads(ast.parse(text))]
    assert reads == [], "read them through docsort.settings instead"


def test_option_defaults_are_defined_only_in_settings():
    """A default defined twice drifts: the code length, the timeouts and the page size limit."""
    pattern = re.compile(r"(^|_)(CODE_LENGTH|TIMEOUT_S|MAX_MEGAPIXELS)$")
    defined = []
    for path, text in _sources():
        if path == PACKAGE / "settings.py":
            continue
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, (int, float)):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                defined += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names if pattern.search(n)]
    assert defined == []


def test_process_help_shows_the_settings_defaults():
    out = run_cli("process", "--help", env={"COLUMNS": "200"})
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert f"default: {settings.CODE_LENGTH}" in text
    assert f"[default: {settings.PAGE_TIMEOUT_S:g}]" in text or f"[default: {settings.PAGE_TIMEOUT_S}]" in text
