"""``dev.py check``'s pip-audit step: findings fail, an offline run says "skipped", never silent.

The verdict is a pure function of pip-audit's JSON report (its documented ``-f json``
shape); one test also runs the real pip-audit over this environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dev
from tests.security.servers import ROOT

VULN = {"id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2099-1"], "fix_versions": ["2.0"]}


def _report(*deps: dict[str, object]) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_a_finding_fails_and_names_the_package_and_the_fix() -> None:
    report = _report({"name": "redis", "version": "1.0", "vulns": [VULN]})
    assert dev.audit_verdict(1, report, "", {}) == (
        False,
        [
            "pip-audit: redis 1.0: GHSA-xxxx-yyyy-zzzz (fixed in 2.0)",
            "pip-audit: 1 packages audited, 1 finding(s), 0 ignored",
        ],
    )


def test_an_ignored_finding_passes_by_any_of_its_aliases() -> None:
    report = _report({"name": "redis", "version": "1.0", "vulns": [VULN]})
    assert dev.audit_verdict(1, report, "", {"CVE-2099-1": "not reachable from stem"}) == (
        True,
        ["pip-audit: 1 packages audited, 0 finding(s), 1 ignored"],
    )


def test_an_index_that_knows_no_package_is_a_visible_skip_not_a_pass() -> None:
    skipped: dict[str, object] = {"name": "trio", "skip_reason": "not found on PyPI and could not"}
    passed, lines = dev.audit_verdict(0, _report(skipped), "", {})
    assert (passed, lines) == (
        True,
        ["pip-audit: skipped: no network to the vulnerability database "
         "(the index knew none of 1 packages)"],
    )  # fmt: skip


def test_no_network_is_a_visible_skip_with_the_reason() -> None:
    stderr = "Traceback ...\nrequests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"
    passed, [line] = dev.audit_verdict(1, "", stderr, {})
    assert passed
    assert line.startswith("pip-audit: skipped: no network to the vulnerability database (")
    assert "Failed to resolve" in line


def test_any_other_pip_audit_failure_fails() -> None:
    assert dev.audit_verdict(2, "", "usage: pip-audit: bad flag\n", {}) == (
        False,
        ["pip-audit: failed: usage: pip-audit: bad flag"],
    )


def test_the_real_audit_of_this_environment_reports_what_it_did() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("STEM_REQUIRE_AUDIT", None)
    done = subprocess.run(
        [sys.executable, "-c", "import dev; dev.audit()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("dev: pip-audit: "), done.stdout
    clean = "skipped: " in last or " 0 finding(s)" in last
    assert (clean or "finding(s)" in last, done.returncode) == (True, 0 if clean else 1), last
