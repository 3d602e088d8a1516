"""infragen.secrets on its own: a secret written inline in a settings file is found wherever it is (value or key,
any depth, under a misspelt key), named by kind, located, never repeated; ordinary settings are never flagged."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MINIMAL

from infragen.errors import InputError
from infragen.load import Loader
from infragen.rules import INLINE_SECRET
from infragen.secrets import find_inline_secrets
from infragen.yamlsource import parse_text

F = "environments/production.yaml"
# Shapes of real credentials, assembled so this file itself holds none in one piece.
SLACK_HOOK = "https://hooks.slack" + ".com/services/T0000000/B0000000/" + "abcdefghijklmnopqrstuvwx"
SECRETS = {
    "a Slack webhook URL": SLACK_HOOK,
    "a Slack token": "xoxb-" + "123456789012-abcdefghijkl",
    "a GitHub token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "an AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "a JSON Web Token": "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz",
    "a private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "a URL with a password": "postgres://app:" + "hunter2@db.internal:5432/fraud",
    "a bearer token": "Bearer " + "abcdefghijklmnop1234",
    "a PagerDuty key": "R0ABCDEFGHIJKLMNOPQRSTUVWXYZ1234",
    "a token": "q8Zr2Lm5Vx9Kp3Wt7Ys1Bn4Hc6Jd0Fg",
}


def found(text: str) -> list[tuple[str, str, int, int]]:
    doc = parse_text(text.encode("utf-8"), F)
    return [(p.field or "", p.message, p.location.line, p.location.column)  # type: ignore[union-attr]
            for p in find_inline_secrets(doc)]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_of_secret_is_named_located_and_never_repeated(kind: str) -> None:
    secret = SECRETS[kind]
    problems = found(f"alertmanager:\n  receivers:\n    team-slack:\n      slack: {{api_url: '{secret}'}}\n")
    [(field, message, line, column)] = problems
    assert field == "alertmanager.receivers.team-slack.slack.api_url"  # a misspelt key (api_url_file) is scanned too
    assert (line, column) == (4, 24)
    assert message.startswith(f"looks like {kind}: secrets never go in settings files")
    assert secret not in message and secret[-8:] not in message


def test_a_secret_used_as_a_key_or_deep_in_a_list_is_found() -> None:
    problems = found(f"alerts:\n  labels:\n    '{SECRETS['a Slack token']}': x\n"
                     f"load_balancing:\n  servers: ['10.0.0.1:80', {{address: '{SECRETS['a URL with a password']}'}}]\n")
    assert [p[0] for p in problems] == [f"alerts.labels.{SECRETS['a Slack token']}", "load_balancing.servers.1.address"]


@pytest.mark.parametrize("value", [
    "simple378-production", "pagerduty-routing-key", "/etc/alertmanager/secrets/slack-api-url",
    "https://runbooks.example.com/fraud-api", "http://prometheus-operated.monitoring.svc:9090",
    # a runbook pinned to a commit: the 40-hex revision is public
    "https://github.com/acme/runbooks/blob/0123456789abcdef0123456789abcdef01234567/fraud.md",
    "$http_x_forwarded_for", "fraud-api-production-ratelimit", "app.kubernetes.io/name",
])
def test_ordinary_settings_are_never_flagged(value: str) -> None:
    assert found(f"a: '{value}'\n") == []


def test_the_loader_reports_a_secret_in_a_partial_even_when_the_environment_overrides_it(tmp_path: Path) -> None:
    """Overriding a leaked value does not remove it from git: every file read is scanned whole."""
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "_base.yaml").write_text(f"alerts: {{runbook_url: '{SLACK_HOOK}'}}\n")
    (envs / "production.yaml").write_text("extends: _base\n" + MINIMAL + "alerts: {runbook_url: https://r.example.com}\n")
    with pytest.raises(InputError) as info:
        Loader(envs).load("production")
    [problem] = info.value.problems
    assert problem.rule == INLINE_SECRET.id and problem.field == "alerts.runbook_url"
    assert problem.location is not None and problem.location.file.endswith("_base.yaml")
