"""The README's code map is the rule: every posecli module imports only what its row allows.

Imports are read with ``ast`` (top-level and lazy ones inside functions alike), so a
wrong-way import fails here before anyone runs the code path that has it.
"""
import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "posecli"


def _key(token: str) -> str:
    """`posecli/detect2d/` / `timing.py` / `cli_common` -> detect2d / timing / cli_common."""
    token = token.removeprefix("posecli/").removesuffix("/").removesuffix(".py")
    return token.replace("/", ".")


def code_map(readme: str) -> dict[str, set[str]]:
    """README "Code map" table -> {row key: keys it may import}; every key of a row maps to the
    same set, which includes the row's own keys."""
    section = readme.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        own = {_key(t) for t in re.findall(r"`([^`]+)`", cells[0])}
        allowed = own | {_key(t) for t in re.findall(r"`([^`]+)`", cells[2])}
        for k in own:
            rows[k] = allowed
    return rows


def module_name(path: Path, repo: Path) -> str:
    parts = path.relative_to(repo).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def posecli_imports(path: Path, repo: Path = REPO) -> set[str]:
    """Every posecli module ``path`` imports (``from posecli import x`` counts as posecli.x
    when x is a module, else as the package root)."""
    mod = module_name(path, repo)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                is_module = (repo / (sub.replace(".", "/") + ".py")).exists() or \
                    (repo / sub.replace(".", "/") / "__init__.py").exists()
                found.add(sub if is_module else base)
    return {n for n in found if n == "posecli" or n.startswith("posecli.")}


def row_of(module: str, rows: dict[str, set[str]]) -> str | None:
    """The longest row key that ``module`` (posecli.a.b) falls under."""
    rel = module.removeprefix("posecli").lstrip(".") or "__init__"
    best = None
    for k in rows:
        if rel == k or rel.startswith(k + "."):
            best = k if best is None or len(k) > len(best) else best
    return best


def violations(package: Path, readme: str) -> list[str]:
    """One line per import that the README's table does not allow (``package``: a posecli
    source folder)."""
    rows = code_map(readme)
    bad = []
    for path in sorted(package.rglob("*.py")):
        mod = module_name(path, package.parent)
        row = row_of(mod, rows)
        if row is None:
            bad.append(f"{mod}: no row in the README's code map")
            continue
        for target in sorted(posecli_imports(path, package.parent)):
            if target == "posecli":
                continue  # the package root: __version__ only
            trow = row_of(target, rows)
            if trow is None:
                bad.append(f"{mod} imports {target}, which has no row in the code map")
            elif trow not in rows[row]:
                bad.append(f"{mod} ({row}) imports {target} ({trow}): not in its 'may import'")
    return bad


def test_every_import_follows_the_readme_code_map():
    assert violations(PACKAGE, (REPO / "README.md").read_text()) == []


def test_a_wrong_way_import_fails(tmp_path):
    """The check can fail: a writer that imports the pipeline is caught."""
    import shutil
    copy = tmp_path / "posecli"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    bvh = copy / "export" / "bvh.py"
    bvh.write_text(bvh.read_text() + "\n\ndef _planted():\n    from posecli.pipeline import lift\n")
    bad = violations(copy, (REPO / "README.md").read_text())
    assert any("posecli.export.bvh" in b and "posecli.pipeline" in b for b in bad), bad


def test_cli_and_cli_research_do_not_import_each_other():
    assert "posecli.cli" not in posecli_imports(PACKAGE / "cli_research.py")
    assert "posecli.cli_research" in posecli_imports(PACKAGE / "cli.py")


@pytest.mark.parametrize("name", ["cli.py", "cli_research.py", "pipeline.py", "options.py"])
def test_no_detector_specific_names_outside_detect2d(name):
    """Detectors are asked for by name through posecli.detect2d.table."""
    code = "\n".join(l for l in (PACKAGE / name).read_text().splitlines()
                     if not l.strip().startswith(("#", "help=", '"', "'")) and "help=" not in l)
    assert "detect2d.hrnet" not in code and "detect2d.blazepose" not in code
    assert not re.search(r"""==\s*["']hrnet["']|!=\s*["']hrnet["']""", code)
