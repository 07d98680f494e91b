"""The README's quickstart code block runs as written (so it cannot rot)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_setup_commands():
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert block[0].endswith('pip install -e ".[dev]" && pophealth demo')
    assert block[1] == "python -m pytest --nbmake"


def test_quickstart_block_runs():
    text = README.read_text()
    code = re.search(r"## Quickstart \(Jupyter\)\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README quickstart", "exec"), namespace)  # noqa: S102
    assert len(namespace["cci"]) == len(namespace["pop"].register)
    assert isinstance(namespace["frail"]["hfrs_band"].dtype, pd.CategoricalDtype)
    assert {"efi", "cms_general"} <= set(namespace["scores"].columns)
