"""Build ``data/codelists/cms_snomed.csv`` and ``efi_snomed.csv`` from ``pcd_snomed.csv``.

Usage: ``python scripts/build_cms_efi_snomed.py``. The condition -> PCD cluster mapping is
data (``data/codelist_sources/cms_snomed.csv`` and ``efi_snomed.csv``: one row per CMS
condition / eFI deficit, ``clusters`` space-separated, empty where no open PCD list
exists); the codes are copied unchanged from the shipped ``pcd_snomed.csv`` (the
description keeps the cluster and release). Conditions without a cluster get no rows:
the scorers report them as not covered. Run after every refresh of ``pcd_snomed``; the
outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA = Path(__file__).parents[1] / "src/pophealth/data"


def build(name: str, pcd: pd.DataFrame) -> pd.DataFrame:
    """Rows of code list ``name`` (``cms_snomed``/``efi_snomed``) from its mapping."""
    mapping = pd.read_csv(DATA / "codelist_sources" / f"{name}.csv", dtype=str,
                          keep_default_na=False)
    parts = []
    for condition, clusters in zip(mapping["condition"], mapping["clusters"], strict=True):
        for cluster in clusters.split():
            part = pcd[pcd["condition"] == cluster]
            if part.empty:
                raise SystemExit(f"{name}: cluster {cluster} ({condition}) not in pcd_snomed")
            parts.append(part.assign(condition=condition))
    out = pd.concat(parts, ignore_index=True).drop_duplicates(["condition", "code"])
    return out.sort_values(["condition", "code"], kind="stable")


def main() -> None:
    pcd = pd.read_csv(DATA / "codelists" / "pcd_snomed.csv", dtype=str, keep_default_na=False)
    for name in ("cms_snomed", "efi_snomed"):
        build(name, pcd).to_csv(DATA / "codelists" / f"{name}.csv", index=False,
                                lineterminator="\n")


if __name__ == "__main__":
    main()
