"""``import pophealth`` is quick: heavy libraries load when first used (issue 15, item 4).

Machine-independent: each test starts a fresh interpreter and checks ``sys.modules``; the
times themselves are measured by ``benchmarks/bench_import.py``, not asserted here.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pophealth as ph

SRC = Path(ph.__file__).resolve().parents[1]
HEAVY = ("lifelines", "scipy", "sklearn", "matplotlib")


def _loaded(code: str) -> set[str]:
    """Top-level module names loaded after running ``code`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", script], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return {m.split(".")[0] for m in json.loads(proc.stdout.splitlines()[-1])}


def test_import_pophealth_loads_no_heavy_library():
    loaded = _loaded("import pophealth")
    assert "pophealth" in loaded
    assert sorted(loaded.intersection(HEAVY + ("pandas", "pyarrow"))) == []


def test_version_flag_loads_no_heavy_library():
    loaded = _loaded("from pophealth.cli import main\n"
                     "try:\n    main(['--version'])\nexcept SystemExit:\n    pass")
    assert sorted(loaded.intersection(HEAVY + ("pandas", "pyarrow"))) == []


def test_scoring_areas_and_jobs_do_not_load_models_or_plots():
    """Using the core, the area statistics and the job loads none of the heavy four."""
    loaded = _loaded("import pophealth as ph\nph.flag_conditions, ph.charlson, ph.dsr, "
                     "ph.sii, ph.funnel_limits, ph.run_job, ph.read_caseload\n"
                     "import pophealth.cli, pophealth.engines, pophealth.synthetic")
    assert "pandas" in loaded  # the probe did load the parts
    assert sorted(loaded.intersection(HEAVY)) == []


def test_a_model_class_loads_scikit_learn_only_to_fit():
    """Issue 14: the model classes follow sklearn's protocol without importing it."""
    loaded = _loaded("import pophealth as ph\nph.RiskModel(), ph.CoxRiskModel()")
    assert sorted(loaded.intersection(HEAVY)) == []
    fitted = _loaded("import pophealth as ph, numpy as np\n"
                     "ph.RiskModel(method='logistic').fit(np.arange(8.0)[:, None], "
                     "np.arange(8) % 2)")
    assert "sklearn" in fitted
    assert "lifelines" not in fitted and "matplotlib" not in fitted


def test_lazy_names_are_the_parts_own_objects():
    from pophealth.areas import dsr
    from pophealth.risk.models import CoxRiskModel, RiskModel

    assert ph.RiskModel is RiskModel and ph.CoxRiskModel is CoxRiskModel
    assert ph.dsr is dsr
    assert ph.risk.RiskModel is RiskModel
    assert set(ph.__all__) <= set(dir(ph))


@pytest.mark.parametrize("module", [ph, ph.risk])
def test_an_unknown_name_is_an_attribute_error(module):
    with pytest.raises(AttributeError, match="no attribute 'RiskModle'"):
        module.RiskModle  # noqa: B018 - the look-up is the test
    assert not hasattr(module, "RiskModle")


@pytest.mark.parametrize("init", ["__init__.py", "risk/__init__.py"])
def test_type_checking_imports_match_the_lazy_table(init):
    """The names stated for type checkers are exactly those loaded lazily, from the same
    modules (a name added to one and not the other fails here)."""
    tree = ast.parse((SRC / "pophealth" / init).read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If)
                   and getattr(n.test, "id", None) == "TYPE_CHECKING")
    stated = {a.name: node.module for node in guarded.body for a in node.names}
    lazy = next(n for n in tree.body if isinstance(n, ast.Assign)
                and n.targets[0].id == "_LAZY")
    table = ast.literal_eval(lazy.value)
    assert stated == table
    assert len(table) >= 3


def test_the_jobs_manifest_versions_load_no_scikit_learn():
    """Issue 14: the manifest reads scikit-learn's version from its package metadata."""
    loaded = _loaded("from pophealth.jobs.runstore import _versions\n"
                     "assert _versions()['scikit-learn']")
    assert "sklearn" not in loaded and "scipy" not in loaded
