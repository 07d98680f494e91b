"""Code lists for the synthetic population: shipped SNOMED CT lists plus labelled stand-ins.

The synthetic primary-care events are SNOMED CT codes drawn from the shipped PCD clusters
wherever pophealth ships an open SNOMED CT list. For the eFI deficits and CMS conditions no open
list covers (cancer, alcohol problems, falls, ...), the generator keeps an invented stand-in
code system, ``synthetic_pc``: a stand-in for a list the user must supply for real data.

A job config takes one list per index, so the combined lists ``efi_snomed_synthetic`` and
``cms_snomed_synthetic`` are shipped as files. They are built, never edited by hand: the rows
of ``efi_snomed`` / ``cms_snomed`` unchanged, followed by the stand-in rows made here
(:func:`combined_codelist`); a test checks the shipped files equal this build.
"""

from __future__ import annotations

import pandas as pd

from pophealth.synthetic import _model

__all__ = ["SYNTHETIC_LISTS", "combined_codelist", "standin_rows"]

#: Code lists for the synthetic population's primary-care events (SNOMED CT + stand-ins).
SYNTHETIC_LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}


def standin_rows(index: str) -> pd.DataFrame:
    """Stand-in ``synthetic_pc`` rows for the ``index`` (``"efi"`` or ``"cms"``) conditions of the
    model items that have no shipped SNOMED CT cluster, or whose cluster covers only part of
    the item (``snomed_share < 1``: anxiety and/or depression, as DEPR_COD is depression only).

    Examples
    --------
    >>> from pophealth.synthetic.lists import standin_rows
    >>> t = standin_rows("cms")
    >>> sorted(t["condition"].unique())[:3]
    ['alcohol_problems', 'anxiety_depression', 'cancer']
    >>> set(t["code_system"])
    {'synthetic_pc'}
    """
    if index not in ("efi", "cms"):
        raise ValueError(f"standin_rows: index must be 'efi' or 'cms', not {index!r}")
    items = _model.load_model().items
    sel = items[index].ne("") & (items["snomed_clusters"].fillna("").eq("")
                                 | (items["snomed_share"] < 1))
    out = []
    for review, what in ((0, "diagnosis"), (1, "review")):
        part = items.loc[sel, [index, "label"]]
        out.append(pd.DataFrame({
            "condition": part[index].to_numpy(),
            "code": [_model.pc_code(int(i), review) for i in part.index],
            "code_system": "synthetic_pc", "match": "exact",
            "description": [f"Synthetic stand-in code: {lab} ({what}); no open SNOMED CT list "
                            "shipped, supply your own for real data" for lab in part["label"]],
        }))
    t = pd.concat(out, ignore_index=True)
    return t.sort_values(["condition", "code"], kind="stable").reset_index(drop=True)


def combined_codelist(index: str) -> pd.DataFrame:
    """The rows of ``<index>_snomed`` followed by :func:`standin_rows` (the shipped
    ``<index>_snomed_synthetic`` file).

    Examples
    --------
    >>> import pophealth as ph
    >>> from pophealth.synthetic.lists import combined_codelist
    >>> t = combined_codelist("efi")
    >>> t["condition"].nunique(), sorted(t["code_system"].unique())
    (36, ['snomed', 'synthetic_pc'])
    """
    snomed = _model._read_codelist(f"{index}_snomed")
    return pd.concat([snomed, standin_rows(index)], ignore_index=True)
