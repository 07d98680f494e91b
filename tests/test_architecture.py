"""The house layout: parts as subpackages, imports pointing down only.

Walks every module's syntax tree (module-level *and* function-level imports, so a lazy
import cannot hide an upward dependency) and fails on any import that runs upward or
sideways between the analyses, or that reaches the package root.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "pophealth"

# Higher imports lower, never the reverse; parts on the same rank never import each other.
RANK = {
    "_version": 0,
    "contracts": 1,
    "core": 2,
    "synthetic": 3,
    "segments": 4, "risk": 4, "cohorts": 4, "areas": 4,
    "plots": 5,
    "engines": 6,
    "reports": 7,
    "jobs": 8,
    "demo": 9,
    "cli": 10,
}
PARTS = ["contracts", "core", "synthetic", "segments", "risk", "cohorts", "areas", "plots",
         "engines", "reports", "jobs"]


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


def _part(path: Path) -> str:
    rel = path.relative_to(PKG).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted target) of every pophealth import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pophealth"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno} relative import"
            mod = node.module or ""
            if mod.split(".")[0] != "pophealth":
                continue
            if mod == "pophealth":  # 'from pophealth import x' - x is a part or the root
                out += [(node.lineno, f"pophealth.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return out


def _violations(modules) -> list[str]:
    bad = []
    for path in modules:
        src = _part(path)
        for line, target in _imports(path):
            parts = target.split(".")
            where = f"{path.relative_to(PKG)}:{line} imports {target}"
            if len(parts) == 1:
                bad.append(f"{where} (the package root)")
                continue
            dst = parts[1]
            if dst == "data" or dst == src:
                continue
            if dst not in RANK:
                bad.append(f"{where} (not a part)")
            elif RANK[dst] >= RANK[src]:
                bad.append(f"{where} (upward or sideways: {src} -> {dst})")
    return bad


def test_every_module_belongs_to_a_part():
    stray = [str(p.relative_to(PKG)) for p in _modules() if _part(p) not in RANK]
    assert stray == []


def test_no_import_runs_upward_sideways_or_to_the_root():
    assert _violations(_modules()) == []


@pytest.mark.parametrize("part", PARTS)
def test_each_part_is_a_package_that_states_its_job(part):
    init = PKG / part / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 8, f"{part}/__init__.py needs a docstring stating its job"


def test_the_checker_catches_upward_sideways_root_and_lazy_imports(tmp_path):
    """The walker itself: planted bad imports (one inside a function) are each reported."""
    root = tmp_path / "pophealth"
    (root / "core").mkdir(parents=True)
    (root / "risk").mkdir()
    bad_core = root / "core" / "x.py"
    bad_core.write_text("def f():\n    from pophealth.jobs import run_job\n")
    bad_risk = root / "risk" / "y.py"
    bad_risk.write_text("from pophealth.areas import dsr\nimport pophealth\n"
                        "from pophealth import demo\nfrom pophealth.core import x\n")
    global PKG
    saved, PKG = PKG, root
    try:
        found = _violations([bad_core, bad_risk])
    finally:
        PKG = saved
    assert len(found) == 4, found
    assert any("core -> jobs" in f for f in found)
    assert any("risk -> areas" in f for f in found)
    assert any("the package root" in f for f in found)
    assert any("risk -> demo" in f for f in found)


def test_benchmark_stage_modules_do_not_import_each_other():
    """stages.py and stages_extra.py share only benchmarks/_common.py (no import cycle)."""
    bench = PKG.parents[1] / "benchmarks"
    for name, other in (("stages.py", "stages_extra"), ("stages_extra.py", "stages")):
        tree = ast.parse((bench / name).read_text(encoding="utf-8"))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        assert f"benchmarks.{other}" not in targets, name
    common = ast.parse((bench / "_common.py").read_text(encoding="utf-8"))
    assert not any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("benchmarks.stages")
                   for n in ast.walk(common))
