"""docs/verification.md's sample of `infragen verify production` is the real output, byte for byte.

Its lines name the versions of the tools that ran (nginx, kubectl, Kubernetes schemas), so the comparison runs
where every tool is required (INFRAGEN_REQUIRE_TOOLS=1, as in .ci/run): CI fails when the sample is stale, and
elsewhere the test skips rather than fail on another nginx. To refresh the sample:

    INFRAGEN_UPDATE_DOCS=1 python -m pytest tests/test_verification_sample.py

The command runs without schemas (no --crd-schemas, no INFRAGEN_CRD_SCHEMAS), so the sample also shows what a
skip says.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import REPO
from tools import REQUIRE_TOOLS

from infragen.cli import cli

DOC = REPO / "docs" / "verification.md"
COMMAND = "infragen verify production"
BLOCK = re.compile(r"^```\n\$ " + re.escape(COMMAND) + r"\n.*?^```\n", re.S | re.M)
UPDATE = os.environ.get("INFRAGEN_UPDATE_DOCS") == "1"


@pytest.mark.tools
@pytest.mark.slow  # infragen verify over a whole environment
def test_the_verify_sample_is_what_verify_prints(shipped_project, runner, monkeypatch) -> None:
    if not (REQUIRE_TOOLS or UPDATE):
        pytest.skip("compared where every tool is required (INFRAGEN_REQUIRE_TOOLS=1, as in .ci/run): the sample "
                    "names tool versions; INFRAGEN_UPDATE_DOCS=1 rewrites it")
    for var in ("INFRAGEN_CRD_SCHEMAS", "INFRAGEN_DASHBOARD_SCHEMA"):
        monkeypatch.delenv(var, raising=False)
    result = runner.invoke(cli, COMMAND.split()[1:])
    assert result.exit_code == 0, result.output
    assert ", 0 failed," in result.stdout, result.stdout  # the sample shows a passing run
    block = f"```\n$ {COMMAND}\n{result.stdout}```\n"
    text = DOC.read_text(encoding="utf-8")
    [old] = BLOCK.findall(text)  # exactly one sample
    if UPDATE:
        DOC.write_text(text.replace(old, block), encoding="utf-8")
        return
    assert old == block, "docs/verification.md's verify sample is stale: run " \
                         "INFRAGEN_UPDATE_DOCS=1 python -m pytest tests/test_verification_sample.py"
