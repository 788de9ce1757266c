"""Checkov on every Bicep template: no parsing error, no failed check, every skip inline and with a reason.

Checkov exits 0 when a file does not parse, so `infra/check.py` reads the JSON summary; the second test feeds it a
broken file, an insecure one and an unexplained skip, and each must be reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import check
from tests.deploy import bicep

BROKEN = """
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stbroken'
  location: 'westeurope'
  properties: {
    supportsHttpsTrafficOnly: true
"""

INSECURE = """
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stinsecure'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    supportsHttpsTrafficOnly: false
    minimumTlsVersion: 'TLS1_2'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}
"""

UNEXPLAINED = INSECURE.replace("stinsecure", "stunexplained").replace(
    "  properties: {\n", "  properties: {\n    // checkov:skip=CKV_AZURE_3\n", 1
)


@pytest.fixture(scope="module")
def report(checkov: Path) -> check.CheckovReport:
    """One Checkov run over every template."""
    return check.run_checkov(bicep.templates(), checkov)


def test_every_template_passes_checkov(report: check.CheckovReport) -> None:
    assert report.problems() == []
    assert report.summary["parsing_errors"] == 0
    assert report.summary["failed"] == 0
    assert report.summary["resource_count"] > 0
    assert report.passed, "Checkov ran no check at all"


def test_checkov_checked_the_app_storage_and_vault(report: check.CheckovReport) -> None:
    """The templates holding the security-relevant resources were checked, not just parsed."""
    checked = {Path(c["file_path"]).name for c in report.passed + report.skipped}
    assert {"functionapp.bicep", "storage.bicep", "keyvault.bicep"} <= checked
    assert {c["check_id"] for c in report.passed} >= {
        "CKV_AZURE_3",
        "CKV_AZURE_44",
        "CKV_AZURE_14",
        "CKV_AZURE_15",
        "CKV_AZURE_42",
        "CKV_AZURE_71",
        "CKV_AZURE_78",
    }


def test_every_inline_skip_is_applied_and_explained(report: check.CheckovReport) -> None:
    """The skips written in the templates are exactly the ones Checkov applied, each with a reason."""
    written = {
        (p.name, check_id) for p in bicep.templates() for check_id, _ in bicep.skip_comments(p)
    }
    applied = {(Path(c["file_path"]).name, c["check_id"]) for c in report.skipped}
    assert written == applied
    assert all(len(reason) > 40 for p in bicep.templates() for _, reason in bicep.skip_comments(p))
    assert report.unjustified_skips == []


def test_the_checker_fails_broken_insecure_and_unexplained_templates(
    checkov: Path, tmp_path: Path
) -> None:
    files = {name: tmp_path / f"{name}.bicep" for name in ("broken", "insecure", "unexplained")}
    for name, source in (("broken", BROKEN), ("insecure", INSECURE), ("unexplained", UNEXPLAINED)):
        files[name].write_text(source, encoding="utf-8")

    report = check.run_checkov(list(files.values()), checkov)
    problems = report.problems()

    assert [p for p in problems if p.startswith("parsing error") and "broken.bicep" in p]
    assert [p for p in problems if p.startswith("failed CKV_AZURE_3 ") and "insecure.bicep" in p]
    assert [
        p
        for p in problems
        if p.startswith("skipped without a reason CKV_AZURE_3 ") and "unexplained" in p
    ]
    assert check.main(["checkov", *map(str, files.values())]) == 1


def test_a_bare_summary_is_read_as_no_results() -> None:
    """With nothing to report, Checkov prints only its summary."""
    bare = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 1, "resource_count": 0}
    report = check.parse_checkov_json(json.dumps(bare))
    assert report.problems() == ["parsing errors: 1"]
