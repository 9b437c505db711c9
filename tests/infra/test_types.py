"""pyright over the Pulumi program, against the provider SDKs' TypedDicts ([tool.pyright] in pyproject.toml).

Resource arguments are written inline, so a misspelt key, a missing required one or a wrong value type in
any `containerservice.ManagedCluster(...)` or `k8s.apps.v1.DaemonSet(...)` call is a type error here,
not a failed `pulumi up`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.specs import REPO_ROOT


def pyright(*args: str, cwd: Path = REPO_ROOT) -> dict:
    run = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, *args],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    return json.loads(run.stdout)


def errors(report: dict) -> list[str]:
    return [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_the_pulumi_program_type_checks():
    report = pyright()
    assert report["summary"]["filesAnalyzed"] >= 10, report["summary"]
    assert errors(report) == []


def test_a_misspelt_resource_argument_is_a_type_error(tmp_path):
    """The check sees the SDKs' TypedDicts: an unknown key in an inline argument is reported."""
    (tmp_path / "bad.py").write_text(
        "from pulumi_azure_native import containerservice\n"
        "containerservice.ManagedCluster('c', resource_group_name='rg',\n"
        "    api_server_access_profile={'enable_vnet_integraton': True})\n")
    found = errors(pyright(str(tmp_path / "bad.py"), cwd=tmp_path))
    assert any('"api_server_access_profile"' in e for e in found), found
