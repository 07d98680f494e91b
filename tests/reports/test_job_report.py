"""``[report]`` in a job, ``pophealth report`` and ``pophealth demo``: counts only."""

from __future__ import annotations

import re

import openpyxl
import pandas as pd
import pytest

from pophealth.cli import main
from pophealth.contracts.exceptions import ConfigError
from pophealth.jobs import JobConfig, demo_job, read_caseload


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    return tmp, demo_job(tmp, n_patients=2_000)


def test_demo_job_writes_report_beside_the_run_without_identifiers(demo):
    tmp, result = demo
    assert result.report == result.run_dir.parents[1] / "reports" / f"{result.run_id}-report.html"
    page = result.report.read_text(encoding="utf-8")
    pseudo = read_caseload(result.run_dir)["pseudo_id"]
    register = pd.read_parquet(tmp / "population" / "register")
    assert len(pseudo) > 0
    assert [p for p in pseudo if p in page] == []
    assert [n for n in register["nhs_number"].astype(str) if n in page] == []
    assert "report" not in " ".join(result.manifest["files"])  # the run itself is unchanged
    wb = openpyxl.load_workbook(result.report.with_suffix(".xlsx"))
    assert wb.sheetnames[-1] == "notes" and "caseload_by_pcn" in wb.sheetnames


def test_report_caseload_section_lists_the_runs_pcns(demo):
    _, result = demo
    page = result.report.read_text(encoding="utf-8")
    section = page[page.index('<section id="caseload">'):]
    section = section[:section.index("</section>")]
    pcns = set(re.findall(r"<td>(SYNPCN\d+)</td>", section))
    assert pcns == set(result.manifest["counts"]["by_pcn"])


def test_unknown_report_key_is_a_config_error(demo):
    tmp, _ = demo
    text = (tmp / "job.toml").read_text().replace("[report]", "[report]\ncolour = 1")
    (tmp / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'colour' in \[report\]"):
        JobConfig.from_toml(tmp / "bad.toml")


def test_pophealth_report_command_writes_html_and_xlsx(demo, tmp_path, capsys):
    tmp, _ = demo
    out = tmp_path / "board.html"
    assert main(["report", str(tmp / "job.toml"), str(out), "--xlsx"]) == 0
    assert out.read_text(encoding="utf-8").count("<section id=") == 9
    assert out.with_suffix(".xlsx").exists()
    assert str(out) in capsys.readouterr().out
