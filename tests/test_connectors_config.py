"""The connectors file: a complete file loads, bad files are refused naming file, path and problem,
and environment variables override the file's values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carebound.tools.connectors import ConnectorsConfigError
from carebound.tools.connectors.config import (
    BearerAuth,
    ConnectorsConfig,
    NoAuth,
    SmartAuth,
    connectors_config,
    load_connectors_config,
)
from tests.conftest import PROJECT

COMPLETE = """
[ehr]
base_url = "https://ehr.example.org/fhir/r4"
auth = { kind = "smart", token_url = "https://ehr.example.org/oauth2/token", client_id = "cb", private_key_file = "keys/ehr.pem", alg = "ES384", scopes = ["system/Patient.rs"] }
timeouts = { connect_s = 2, read_s = 20 }
retry = { attempts = 3, backoff_s = 0.25, cap_s = 8, jitter_s = 0.1 }
breaker = { failure_threshold = 4, reset_timeout_s = 45 }

[payer]
base_url = "https://payer.example.org/fhir"
auth = { kind = "bearer", token_env = "CB_TEST_PAYER_TOKEN" }

[office.cdex]
base_url = "https://office.example.org/fhir"

[office.smtp]
host = "hisp.example.org"
port = 2525
from_address = "referrals@direct.example.org"
password_env = "CB_TEST_SMTP_PASSWORD"

[office.fax]
provider = "simulated"
"""  # noqa: E501


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_TEST_PAYER_TOKEN", "payer-token")
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", "smtp-password")


def _file(tmp_path: Path, text: str, name: str = "connectors.toml") -> Path:
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "ehr.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_complete_file_loads_with_every_setting(tmp_path: Path, secrets: None) -> None:
    config = load_connectors_config(_file(tmp_path, COMPLETE))
    ehr = config.ehr
    assert str(ehr.base_url) == "https://ehr.example.org/fhir/r4"
    assert isinstance(ehr.auth, SmartAuth)
    assert ehr.auth.alg == "ES384"
    assert ehr.auth.private_key_file == tmp_path.resolve() / "keys" / "ehr.pem"
    assert (ehr.timeouts.connect_s, ehr.timeouts.read_s) == (2, 20)
    assert (ehr.retry.attempts, ehr.retry.backoff_s, ehr.retry.cap_s) == (3, 0.25, 8)
    assert (ehr.breaker.failure_threshold, ehr.breaker.reset_timeout_s) == (4, 45)
    assert config.payer is not None and isinstance(config.payer.auth, BearerAuth)
    assert config.payer.auth.secret() == "payer-token"
    assert config.payer.retry.attempts == 4  # the default
    assert config.office is not None and config.office.smtp is not None
    assert config.office.smtp.secret() == "smtp-password"
    assert config.office.cdex is not None and isinstance(config.office.cdex.auth, NoAuth)
    assert config.office.fax is not None


def test_secrets_are_not_shown_when_the_config_is_printed(tmp_path: Path, secrets: None) -> None:
    text = COMPLETE.replace('token_env = "CB_TEST_PAYER_TOKEN"', 'token = "s3cret-value"')
    config = load_connectors_config(_file(tmp_path, text))
    assert "s3cret-value" not in repr(config)
    assert config.payer is not None and isinstance(config.payer.auth, BearerAuth)
    assert config.payer.auth.secret() == "s3cret-value"


def test_environment_variables_override_the_file(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBOUND_CONNECTORS__EHR__BASE_URL", "https://other.example.org/fhir")
    monkeypatch.setenv("CAREBOUND_CONNECTORS__EHR__RETRY__ATTEMPTS", "7")
    config = load_connectors_config(_file(tmp_path, COMPLETE))
    assert str(config.ehr.base_url) == "https://other.example.org/fhir"
    assert config.ehr.retry.attempts == 7
    assert config.ehr.retry.cap_s == 8  # the rest of the section still comes from the file
    assert isinstance(config.ehr.auth, SmartAuth)


def test_an_environment_override_is_checked_like_the_file(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBOUND_CONNECTORS__EHR__RETRY__ATTEMPTS", "0")
    with pytest.raises(ConnectorsConfigError) as caught:
        load_connectors_config(_file(tmp_path, COMPLETE))
    assert "ehr.retry.attempts" in caught.value.message
    assert "CAREBOUND_CONNECTORS__" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        ("[ehr\nbase_url = 1\n", None, "not valid TOML"),
        ('[payer]\nbase_url = "https://p.example.org"\n', "ehr", "Field required"),
        ('[ehr]\nbase_url = "not a url"\n', "ehr.base_url", "URL"),
        ('[ehr]\nbase_url = "https://e.example.org"\nbase = 1\n', "ehr.base", "Extra inputs"),
        ('[ehr]\nbase_url = "https://e.example.org"\nauth = { kind = "basic" }\n',
         "ehr.auth", "'none', 'bearer', 'smart'"),
        ('[ehr]\nbase_url = "https://e.example.org"\nauth = { kind = "bearer" }\n',
         "ehr.auth.bearer", "exactly one of token and token_env"),
        ('[ehr]\nbase_url = "https://e.example.org"\n'
         'auth = { kind = "bearer", token_env = "CB_TEST_UNSET_VARIABLE" }\n',
         "ehr.auth.bearer", "CB_TEST_UNSET_VARIABLE (token_env) is not set"),
        ('[ehr]\nbase_url = "https://e.example.org"\nauth = { kind = "smart", '
         'token_url = "https://e.example.org/token", client_id = "cb", '
         'private_key_file = "missing.pem", scopes = ["system/Patient.rs"] }\n',
         "ehr.auth.smart.private_key_file", "no such file"),
        ('[ehr]\nbase_url = "https://e.example.org"\nauth = { kind = "smart", '
         'token_url = "https://e.example.org/token", client_id = "cb", alg = "HS256", '
         'private_key_file = "keys/ehr.pem", scopes = ["system/Patient.rs"] }\n',
         "ehr.auth.smart.alg", "'RS384' or 'ES384'"),
        ('[ehr]\nbase_url = "https://e.example.org"\nretry = { backoff_s = 5, cap_s = 1 }\n',
         "ehr.retry", "cap_s (1.0) is smaller than backoff_s (5.0)"),
        ('[ehr]\nbase_url = "https://e.example.org"\nbreaker = { failure_threshold = 0 }\n',
         "ehr.breaker.failure_threshold", "greater than or equal to 1"),
        ('[ehr]\nbase_url = "https://e.example.org"\n[office]\n', "office", "at least one channel"),
        ('[ehr]\nbase_url = "https://e.example.org"\n[office.smtp]\nhost = "h"\n'
         'from_address = "not-an-address"\n', "office.smtp.from_address", "pattern"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_file_the_path_and_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, path: str | None, problem: str
) -> None:
    monkeypatch.delenv("CB_TEST_UNSET_VARIABLE", raising=False)
    file = _file(tmp_path, text, name="bad.toml")
    with pytest.raises(ConnectorsConfigError) as caught:
        load_connectors_config(file)
    message = caught.value.message
    assert message.startswith(f"{file}: ")
    if path is not None:
        assert f"  - {path}: " in message
    assert problem in message
    assert caught.value.hint


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorsConfigError, match="cannot read the connectors file"):
        load_connectors_config(tmp_path / "nowhere.toml")


def test_a_file_that_is_not_text_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "binary.toml"
    file.write_bytes(b"\xff\xfe[ehr]")
    with pytest.raises(ConnectorsConfigError, match="not UTF-8"):
        load_connectors_config(file)


def test_a_configuration_given_as_data_is_checked_the_same_way() -> None:
    config = connectors_config({"ehr": {"base_url": "http://127.0.0.1:8103/ehr"}})
    assert isinstance(config, ConnectorsConfig)
    assert config.payer is None and config.office is None
    with pytest.raises(ConnectorsConfigError, match=r"ehr\.timeouts\.read_s"):
        connectors_config({"ehr": {"base_url": "http://x.example", "timeouts": {"read_s": -1}}})


def test_a_channel_goes_to_one_office_section() -> None:
    base = {"ehr": {"base_url": "http://127.0.0.1:8103/ehr"}}
    cdex = {"base_url": "http://127.0.0.1:8103/office", "channels": ["portal", "fax"]}
    config = connectors_config({**base, "office": {"cdex": cdex}})
    assert config.office is not None and config.office.cdex is not None
    assert config.office.cdex.channels == ["portal", "fax"]
    with pytest.raises(ConnectorsConfigError, match=r"fax requests cannot go both"):
        connectors_config({**base, "office": {"cdex": cdex, "fax": {"provider": "simulated"}}})
    with pytest.raises(ConnectorsConfigError, match=r"office\.cdex\.channels"):
        connectors_config({**base, "office": {"cdex": {**cdex, "channels": ["pigeon"]}}})


def test_the_readme_file_is_complete_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("### The connectors file", 1)[1].split("\n### ", 1)[0]
    [text] = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr-private.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    monkeypatch.setenv("PAYER_TOKEN", "t")
    monkeypatch.setenv("SMTP_PASSWORD", "p")
    file = tmp_path / "connectors.toml"
    file.write_text(text)
    config = load_connectors_config(file)
    assert isinstance(config.ehr.auth, SmartAuth) and config.ehr.auth.key_id == "carebound-2026"
    assert config.payer is not None and config.office is not None
    assert all((config.office.cdex, config.office.smtp, config.office.fax))
    assert config.office.cdex is not None and config.office.cdex.channels == ["portal"]
    assert config.payer.subscriber_id_search is False
    assert config.erp is not None and config.erp.provider == "simulated"
    # Its error example is what a bad file prints.
    monkeypatch.setenv("CAREBOUND_CONNECTORS__EHR__RETRY__ATTEMPTS", "0")
    (tmp_path / "keys" / "ehr-private.pem").unlink()
    with pytest.raises(ConnectorsConfigError) as caught:
        load_connectors_config(file)
    shown = readme.split("```text\nerror: connectors.toml: ", 1)[1].split("```", 1)[0]
    for line in shown.splitlines()[1:]:
        problem = line.split(": ", 1)[0]  # "  - ehr.retry.attempts"
        assert problem in caught.value.message


@pytest.mark.parametrize(
    "section",
    [
        '[ehr]\nbase_url = "https://svc:{pw}@ehr.example.org/fhir"\n',
        '[office.cdex]\nbase_url = "https://svc:{pw}@office.example.org/fhir"\n',
        '[ehr]\nbase_url = "https://ehr.example.org/fhir"\nauth = { kind = "smart", '
        'token_url = "https://svc:{pw}@ehr.example.org/token", client_id = "cb", '
        'private_key_file = "keys/ehr.pem" }\n',
    ],
)
def test_a_password_in_a_url_is_refused_and_never_shown(tmp_path: Path, section: str) -> None:
    """A URL with a user or password would put the secret wherever the URL is shown (and send
    it as an unconfigured credential): refused, naming where, without echoing it."""
    file = _file(tmp_path, section.replace("{pw}", "hunter2-secret"))
    with pytest.raises(ConnectorsConfigError) as caught:
        load_connectors_config(file)
    shown = f"{caught.value.message}\n{caught.value.hint}"
    assert "a user or password in the URL is not accepted" in shown
    assert "hunter2" not in shown


def test_a_password_in_the_fhir_server_url_is_refused_and_never_shown(env: str) -> None:
    from tests.test_cli import cli

    scenario = str(PROJECT / "scenarios" / "hello_hold.yaml")
    for url in ("http://svc:hunter2-secret@127.0.0.1:9", "ftp://svc:hunter2-secret@x"):
        result = cli("run", scenario, "--fhir-server", url, code=2)
        assert "a user or password in the URL is not accepted" in result.stderr
        assert "hunter2" not in result.stdout + result.stderr
        failed = cli("run", scenario, "--fhir-server", url, "--json", code=2)
        assert "hunter2" not in failed.stdout + failed.stderr
