"""The board report: every section, counts only, disclosure control, no network, no leaks.

Expected values are hand computations from the crafted table in ``conftest.py``.
"""

from __future__ import annotations

import re

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pophealth.cohorts import RTM_CAUTION
from pophealth.reports import SECTIONS, build_report

SECTION_RE = re.compile(r'<section id="([a-z]+)"><h2>([^<]+)</h2>')


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def test_every_section_is_present_with_id_and_heading_in_order(report):
    found = SECTION_RE.findall(report.html)
    assert found == list(SECTIONS.items())
    assert list(SECTIONS) == ["overview", "segments", "risk", "cost", "areas", "inequality",
                              "funnel", "caseload", "methods"]


def test_no_identifier_pseudo_id_or_patient_row_appears_in_html_or_workbook(crafted, report):
    """Leak test: sentinel patient ids, NHS numbers and HMAC pseudo ids, in the page and in
    every cell of the workbook."""
    texts = [report.html]
    for name, table in report.tables.items():
        texts.append(name + table.to_csv())
    blob = "\n".join(texts)
    secrets = (list(crafted.index) + list(crafted["nhs_number"]) + list(crafted["pseudo_id"]))
    assert len(secrets) == 3 * 3020
    leaked = [s for s in secrets if s in blob]
    assert leaked == []
    assert "SENTINEL" not in blob and "pseudo_id" not in blob and "nhs_number" not in blob
    assert max(len(t) for t in report.tables.values()) < len(crafted) / 5  # aggregates only


@pytest.mark.filterwarnings("ignore")
def test_the_leak_check_catches_a_leak(crafted, report):
    """The same check, on a page that does carry a pseudo id, finds it (the test can fail)."""
    planted = report.html.replace("</footer>", crafted["pseudo_id"].iloc[17] + "</footer>")
    assert [s for s in crafted["pseudo_id"] if s in planted] == [crafted["pseudo_id"].iloc[17]]


def test_workbook_cells_hold_no_identifier(crafted, report, tmp_path):
    path = report.write_xlsx(tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(path)
    cells = {str(c.value) for ws in wb for row in ws.iter_rows() for c in row
             if c.value is not None}
    secrets = set(crafted.index) | set(crafted["nhs_number"]) | set(crafted["pseudo_id"])
    assert cells & secrets == set()
    assert wb.sheetnames[-1] == "notes"


def test_page_fetches_nothing(report):
    html = report.html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "http://" not in html and "https://" not in html
    assert set(re.findall(r'href="(.)', html)) == {"#"}  # in-page links only
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert len(srcs) == 7  # pyramid, segment cost, risk, Lorenz, PCN ranking, IMD, funnel
    assert all(s.startswith("data:image/png;base64,iVBORw0KGgo") for s in srcs)
    assert "default-src 'none'" in html


def test_segment_counts_are_rounded_suppressed_and_secondary_suppressed(report):
    """By hand: Healthy 2000 + 20 = 2020, LTC 600, Frailty 300, Cancer 97 -> 95, Disability 3
    -> suppressed (1-7); the total is published, so the next smallest (Cancer) is hidden
    too. Percentages of 3,020: 66.9, 19.9, 9.9. Cost 20,000 / 60,000 / 90,000 of 190,000:
    10.5, 31.6, 47.4 %."""
    t = report.tables["segments"]
    assert t["patients"].tolist() == [2020, 600, 300, pd.NA, pd.NA]
    assert t["suppressed"].tolist()[3:] == ["patients secondary suppression", "patients 1-7"]
    assert t["pct_of_patients"].tolist()[:3] == [66.9, 19.9, 9.9]
    assert t["pct_of_cost"].tolist() == [10.5, 31.6, 47.4, pd.NA, pd.NA]
    seg = _section(report.html, "segments")
    assert "2,020" in seg and ">97<" not in seg and ">3<" not in seg


def test_risk_tiers_are_counts_with_disclosure_control(report):
    """low 2400 + 20, moderate 450, high 144 (secondary), very high 6 (1-7)."""
    t = report.tables["risk_tiers"]
    assert t["patients"].tolist() == [2420, 450, pd.NA, pd.NA]
    assert t["pct_of_patients"].tolist()[:2] == [80.1, 14.9]


def test_caseload_counts_per_pcn_are_controlled_and_counts_only(report):
    """3 -> suppressed; 9 (no PCN) is then the next smallest -> secondary; 12 -> 10; 40."""
    t = report.tables["caseload_by_pcn"]
    assert list(t.columns) == ["pcn", "patients", "suppressed"]
    got = dict(zip(t["pcn"], t["patients"], strict=True))
    assert got == {"unknown PCN": pd.NA, "SYNPCN0001": pd.NA, "SYNPCN0002": 40,
                   "SYNPCN0003": 10}


def test_small_lsoa_rate_is_suppressed(report):
    t = report.tables["lsoa_rates"].set_index("area")
    assert pd.isna(t.loc["L99000013", "numerator"]) and pd.isna(t.loc["L99000013", "value"])
    assert "1-7" in t.loc["L99000013", "suppressed"]
    assert t.loc["L99000001", "denominator"] == 250


def test_cost_section_carries_the_regression_to_the_mean_caution(report):
    cost = _section(report.html, "cost")
    assert RTM_CAUTION.split(":")[0] in cost and 'class="caution"' in cost
    assert report.tables["cost_concentration"]["statistic"].tolist()[0] == "gini"


def test_sii_is_given_with_its_interval(report):
    t = report.tables["sii"].set_index("statistic")
    assert {"lower_ci", "upper_ci"} <= set(t.columns)
    assert t.loc["sii", "lower_ci"] <= t.loc["sii", "value"] <= t.loc["sii", "upper_ci"]
    assert "Not available" not in _section(report.html, "inequality")


def test_methods_lists_codelists_with_versions_exclusions_and_warnings(report):
    """Versions from data/provenance.csv: Quan 2005 -> 2005, Gilbert 2018 -> 2018; a user's
    file is named (not its folder) as a local file; warnings are counted."""
    m = _section(report.html, "methods")
    assert "<td>charlson_quan2005_icd10</td>" in m and "<td>2005</td>" in m
    assert "<td>hfrs_gilbert2018_icd10</td>" in m and "<td>2018</td>" in m
    assert "<td>my_local_list.csv</td>" in m and "/data/" not in m
    assert "register: invalid nhs number: 4" in m
    shown = re.search(r"<h3>Warnings \((\d+)\)</h3><ul>(.*?)</ul>", m)
    assert "excluded 2 row(s) with unrecognised codes" in shown.group(2)
    assert int(shown.group(1)) == shown.group(2).count("<li>") >= 1
    assert report.notes["exclusions"] == "register: invalid nhs number: 4"


def test_a_table_without_segment_tier_or_cost_still_has_every_section(crafted):
    lean = crafted.drop(columns=["segment", "tier", "prior_cost"])
    r = build_report(lean, index_date="2025-04-01")
    assert [s for s, _ in SECTION_RE.findall(r.html)] == list(SECTIONS)
    assert "Not available: the patient table has no &#x27;segment&#x27; column" in r.html
    assert "no caseload counts were given" in r.notes["not available"]


def test_text_in_the_data_is_escaped(crafted):
    """An area code crafted as markup is shown as text, never as an element."""
    p = crafted.copy()
    p["pcn"] = np.where(p["pcn"] == "SYNPCN0001", "<img src=x onerror=alert(1)>", p["pcn"])
    r = build_report(p, index_date="2025-04-01")
    assert "<img src=x" not in r.html and "&lt;img src=x onerror=alert(1)&gt;" in r.html


def test_missing_required_column_is_one_line_error_naming_it(crafted):
    from pophealth.contracts.exceptions import SchemaError

    with pytest.raises(SchemaError, match=r"^patients: missing column\(s\) \['lsoa'\]"):
        build_report(crafted.drop(columns="lsoa"), index_date="2025-04-01")


@pytest.mark.parametrize("column", ["prior_cost", "risk", "age"])
def test_text_in_a_numeric_column_is_refused_not_left_out(crafted, column):
    """A text cost/risk/age used to be coerced to NaN and silently left out of the shares;
    now it is the one-line ``numeric`` rule error, naming column and positions, not the value."""
    from pophealth.contracts.exceptions import SchemaError

    p = crafted.copy()
    p[column] = p[column].astype(object)
    p.iloc[[2, 5], p.columns.get_loc(column)] = "£1,200-SENTINEL"
    with pytest.raises(SchemaError) as err:
        build_report(p, index_date="2025-04-01")
    msg = str(err.value)
    assert f"column '{column}' breaks rule 'numeric' in 2 row(s); first positions [2, 5]" in msg
    assert "SENTINEL" not in msg and "1,200" not in msg
