"""Pure parts of the security configuration: settings, TLS contexts, client configs, masking,
log redaction, the local servers' generated configs, SCRAM credentials and the audit verdict.

No server is needed; TLS handshakes run in-process over a socket pair.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from deploy.local import audit
from deploy.local.audit import evaluate, evaluate_latest_only, fetch_projects, read_pins, service_unreachable
from deploy.local.errors import StackError
from deploy.local.kafka import BROKER_USER, KafkaService, scram_credential, security_properties
from deploy.local.tls import LocalTls, ensure_local_tls, subject_alt_names
from recstream.security import MASK, MaskedStr, SecurityConfigError, client_ssl_context
from recstream.settings import SettingsError, load_settings
from recstream.testing import RECSTREAM
from streams.kafka_config import aiokafka_config, faust_credentials, kafka_python_config

SASL = {
    "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "RECSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "RECSTREAM_KAFKA_SASL_USERNAME": "recstream",
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


def _secret_file(tmp_path: Path, text: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- settings ---------------------------------------------------------------------------------


def test_password_files_fill_the_secret_minus_one_trailing_newline(tmp_path: Path) -> None:
    s = load_settings(
        {
            **SASL,
            "RECSTREAM_KAFKA_SASL_PASSWORD_FILE": str(_secret_file(tmp_path, " k-pw \n", "k")),
            "RECSTREAM_CASSANDRA_USERNAME": "recstream",
            "RECSTREAM_CASSANDRA_PASSWORD_FILE": str(_secret_file(tmp_path, "c-pw\r\n", "c")),
        }
    )
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == " k-pw "
    assert s.cassandra_password is not None and s.cassandra_password.get_secret_value() == "c-pw"
    from recstream.logs import secret_values

    assert sorted(secret_values(s)) == [" k-pw ", "c-pw"]  # what the log formatters scrub


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, {}, "cannot read"),
        ("", {}, "is empty"),
        ("line1\nline2\n", {}, "more than one line"),
        ("pw", {"RECSTREAM_CASSANDRA_PASSWORD": "pw2"}, "not both"),
    ],
)
def test_bad_password_files_fail_at_start_naming_the_setting(
    tmp_path: Path, content: str | None, extra: dict[str, str], message: str
) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    env = {"RECSTREAM_CASSANDRA_USERNAME": "u", "RECSTREAM_CASSANDRA_PASSWORD_FILE": str(path), **extra}
    with pytest.raises(SettingsError, match=message) as err:
        load_settings(env)
    assert "RECSTREAM_CASSANDRA_PASSWORD" in str(err.value)
    assert "line1" not in str(err.value) and "pw2" not in str(err.value)


@pytest.mark.parametrize(
    "env",
    [
        {"RECSTREAM_KAFKA_SSL_CAFILE": "/ca.pem"},  # TLS file with a protocol without TLS
        {
            **SASL,
            "RECSTREAM_KAFKA_SASL_PASSWORD": "x",
            "RECSTREAM_KAFKA_SSL_KEYFILE": "/k.pem",
        },  # key, no cert
        {"RECSTREAM_CASSANDRA_PASSWORD": "x"},  # password without user
        {"RECSTREAM_CASSANDRA_USERNAME": "u"},  # user without password
    ],
)
def test_inconsistent_security_settings_are_rejected(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(env)


def test_settings_errors_never_quote_secret_values() -> None:
    planted = "planted-secret-4f1c"
    env = {
        "RECSTREAM_CASSANDRA_USERNAME": "u",
        "RECSTREAM_CASSANDRA_PASSWORD": planted,
        **SASL,
        "RECSTREAM_KAFKA_SASL_PASSWORD": planted,
        "RECSTREAM_K": "0",  # the actual error
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "RECSTREAM_K" in str(err.value)
    assert planted not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(SettingsError) as err2:  # a model-level error sees every value
        load_settings({"RECSTREAM_CASSANDRA_PASSWORD": planted})
    assert planted not in str(err2.value)


def test_a_private_environ_is_not_mixed_with_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSTREAM_CASSANDRA_PASSWORD", "from-os-environ")
    monkeypatch.setenv("RECSTREAM_CASSANDRA_USERNAME", "u")
    assert load_settings({}).cassandra_password is None
    assert load_settings().cassandra_password is not None


def test_web_server_binds_loopback_by_default() -> None:
    from streams.app import create_app

    s = load_settings({})
    assert s.web_host == "127.0.0.1"

    async def no_runtime(app: object) -> object:
        raise AssertionError

    app = create_app(s, no_runtime)
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_host == "127.0.0.1"


# --- recstream config -------------------------------------------------------------------------


def test_recstream_config_masks_secrets_from_env_and_files(tmp_path: Path) -> None:
    from recstream.cli.config import effective_settings

    kafka_secret, cass_secret = "kafka-planted-91ab", "cass-planted-77cd"
    env = {
        **SASL,
        "RECSTREAM_KAFKA_SASL_PASSWORD": kafka_secret,
        "RECSTREAM_CASSANDRA_USERNAME": "u",
        "RECSTREAM_CASSANDRA_PASSWORD_FILE": str(_secret_file(tmp_path, cass_secret)),
    }
    shown = effective_settings(load_settings(env))
    assert shown["kafka_sasl_password"] == MASK and shown["cassandra_password"] == MASK
    assert shown["cassandra_password_file"] == str(tmp_path / "secret")
    assert effective_settings(load_settings({}))["kafka_sasl_password"] is None
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("RECSTREAM_")}
    proc = subprocess.run(
        [RECSTREAM, "config"], env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kafka_sasl_password"] == MASK
    assert kafka_secret not in proc.stdout + proc.stderr and cass_secret not in proc.stdout + proc.stderr


# --- TLS contexts -----------------------------------------------------------------------------


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str) -> str | None:
    """A TLS handshake and one byte over a socket pair; None on success, else the errors of both
    ends (with TLS 1.3 a refused client certificate shows on the server's side)."""
    a, b = socket.socketpair()
    server_error: list[str] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(b, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError) as exc:
            server_error.append(f"server: {exc}")

    t = threading.Thread(target=serve)
    t.start()
    client_error = None
    try:
        with client_ctx.wrap_socket(a, server_hostname=hostname) as c:
            c.sendall(b"x")
            c.settimeout(5)
            try:
                c.recv(1)  # the server closes after reading; an alert shows up here
            except (ssl.SSLError, OSError) as exc:
                client_error = f"client: {exc}"
    except ssl.SSLError as exc:
        client_error = f"client: {exc}"
    finally:
        a.close()
        t.join(10)
        b.close()
    errors = [e for e in [client_error, *server_error] if e]
    return "; ".join(errors) or None


def _server_ctx(tls: LocalTls, require_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls.server_cert, tls.server_key)
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(tls.ca_cert)
    return ctx


def test_generated_material_verifies_for_loopback_only_and_keys_are_private(
    tls: LocalTls, tmp_path: Path
) -> None:
    client = client_ssl_context(tls.ca_cert)
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    assert client.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert _handshake(_server_ctx(tls), client, "127.0.0.1") is None
    assert _handshake(_server_ctx(tls), client, "localhost") is None
    err = _handshake(_server_ctx(tls), client, "10.1.2.3")
    assert err is not None and "CERTIFICATE_VERIFY_FAILED" in err  # wrong host name
    other = ensure_local_tls(tmp_path / "other")
    err = _handshake(_server_ctx(tls), client_ssl_context(other.ca_cert), "127.0.0.1")
    assert err is not None and "CERTIFICATE_VERIFY_FAILED" in err  # another CA
    for private in (tls.ca_key, tls.server_key, tls.client_key, tls.keystore, tls.keystore_password_file):
        assert oct(private.stat().st_mode & 0o777) == "0o600", private
    assert oct(tls.folder.stat().st_mode & 0o777) == "0o700"


def test_generation_is_idempotent(tls: LocalTls) -> None:
    before = tls.ca_cert.read_bytes(), tls.keystore.stat().st_mtime_ns
    again = ensure_local_tls(tls.folder)
    assert (again.ca_cert.read_bytes(), again.keystore.stat().st_mtime_ns) == before


def test_mutual_tls_client_certificate(tls: LocalTls) -> None:
    with_cert = client_ssl_context(tls.ca_cert, tls.client_cert, tls.client_key)
    assert _handshake(_server_ctx(tls, require_client=True), with_cert, "127.0.0.1") is None
    err = _handshake(_server_ctx(tls, require_client=True), client_ssl_context(tls.ca_cert), "127.0.0.1")
    assert err is not None and "CERTIFICATE" in err.upper(), err  # no client certificate: refused
    with pytest.raises(SecurityConfigError, match="do not load"):
        client_ssl_context(tls.ca_cert, tls.client_cert, tls.server_key)  # key of another cert


def test_missing_or_bad_tls_files_fail_clearly(tls: LocalTls, tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match=r"CA file .* does not exist"):
        client_ssl_context(tmp_path / "missing.pem")
    with pytest.raises(SecurityConfigError, match="no usable certificate"):
        client_ssl_context(_secret_file(tmp_path, "not a certificate"))
    with pytest.raises(SecurityConfigError, match="needs its client certificate"):
        client_ssl_context(tls.ca_cert, None, tls.client_key)


def test_subject_alt_names() -> None:
    assert subject_alt_names(("127.0.0.1", "localhost", "kafka-0.svc")) == (
        "IP:127.0.0.1,DNS:localhost,DNS:kafka-0.svc"
    )


# --- Kafka client configuration ---------------------------------------------------------------


def test_kafka_client_configs_per_protocol(tls: LocalTls) -> None:
    plain = kafka_python_config(load_settings({}))
    assert plain == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(load_settings({})) is None

    s = load_settings(
        {**SASL, "RECSTREAM_KAFKA_SASL_PASSWORD": "pw-1", "RECSTREAM_KAFKA_SSL_CAFILE": str(tls.ca_cert)}
    )
    cfg = kafka_python_config(s)
    assert cfg["security_protocol"] == "SASL_SSL" and cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_username"] == "recstream" and cfg["sasl_plain_password"] == "pw-1"
    assert isinstance(cfg["sasl_plain_password"], MaskedStr) and "pw-1" not in repr(cfg)
    ctx = cfg["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()] == [
        {"commonName": "recstream local stack CA"}
    ]
    assert aiokafka_config(s).keys() == cfg.keys()

    ssl_only = load_settings(
        {
            "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RECSTREAM_KAFKA_SSL_CAFILE": str(tls.ca_cert),
            "RECSTREAM_KAFKA_SSL_CERTFILE": str(tls.client_cert),
            "RECSTREAM_KAFKA_SSL_KEYFILE": str(tls.client_key),
        }
    )
    cfg = kafka_python_config(ssl_only)
    assert cfg["security_protocol"] == "SSL" and "sasl_mechanism" not in cfg
    import faust

    assert isinstance(faust_credentials(ssl_only), faust.SSLCredentials)

    sasl_plaintext = load_settings(
        {**SASL, "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "RECSTREAM_KAFKA_SASL_PASSWORD": "p"}
    )
    creds = faust_credentials(sasl_plaintext)
    assert creds.ssl_context is None and creds.protocol.value == "SASL_PLAINTEXT"
    assert "ssl_context" not in kafka_python_config(sasl_plaintext)


def test_masked_str_is_the_secret_except_in_repr() -> None:
    pw = MaskedStr("hunter2")
    assert pw == "hunter2" and str(pw) == "hunter2" and f"{pw}" == "hunter2"
    assert pw.encode() == b"hunter2" and "%s" % (pw,) == "hunter2"  # noqa: UP031 - as loggers format
    assert repr(pw) == repr(MASK) and "hunter2" not in repr({"password": pw})
    import copy

    assert copy.deepcopy({"p": pw})["p"] == "hunter2"


# --- local Kafka broker -----------------------------------------------------------------------


def test_scram_salted_password_matches_the_rfc_7677_test_vector() -> None:
    # RFC 7677 section 3: user "user", password "pencil"; the client proof follows from the
    # salted password, so matching it checks Hi() independently of Kafka.
    cred = scram_credential(
        "SCRAM-SHA-256", "user", "pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096
    )
    client_nonce = "rOprNGfwEbeRWgbNEkqO"
    nonce = client_nonce + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = f"n=user,r={client_nonce},r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    client_key = hmac.new(cred.salted_password, b"Client Key", hashlib.sha256).digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth.encode(), hashlib.sha256).digest()
    proof = bytes(x ^ y for x, y in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


def test_scram_storage_argument_holds_no_plain_password() -> None:
    cred = scram_credential("SCRAM-SHA-512", "recstream", "plain-pw-3d")
    arg = cred.storage_arg()
    assert arg.startswith("SCRAM-SHA-512=[name=recstream,iterations=8192,salt=")
    assert "plain-pw-3d" not in arg and len(cred.salted_password) == 64
    assert cred.matches("plain-pw-3d") and not cred.matches("other")
    with pytest.raises(StackError, match="supports SASL mechanisms"):
        scram_credential("PLAIN", "recstream", "x")
    with pytest.raises(StackError, match="user name"):
        scram_credential("SCRAM-SHA-512", "bad,name", "x")


def test_broker_properties_per_protocol(tls: LocalTls, tmp_path: Path) -> None:
    def props(env: dict[str, str], broker_password: str | None = None) -> dict[str, str]:
        s = load_settings({"RECSTREAM_STACK_DIR": str(tmp_path), **env})
        text = KafkaService(s).render_properties(
            tls if "SSL" in s.kafka_security_protocol else None, broker_password
        )
        return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))

    plain = props({})
    assert plain["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert not any(k.startswith(("ssl.", "sasl.")) for k in plain)

    sasl = props(
        {**SASL, "RECSTREAM_KAFKA_SASL_PASSWORD": "user-pw", "RECSTREAM_KAFKA_SSL_CAFILE": str(tls.ca_cert)},
        broker_password="broker-pw",
    )
    assert sasl["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert sasl["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    assert sasl["inter.broker.listener.name"] == "SASL_SSL"
    assert sasl["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert sasl["ssl.keystore.location"] == str(tls.keystore) and sasl["ssl.client.auth"] == "none"
    jaas = sasl["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert f'username="{BROKER_USER}" password="broker-pw"' in jaas
    assert "user-pw" not in "\n".join(f"{k}={v}" for k, v in sasl.items())  # users live in the metadata log

    mtls = props(
        {
            "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RECSTREAM_KAFKA_SSL_CAFILE": str(tls.ca_cert),
            "RECSTREAM_KAFKA_SSL_CERTFILE": str(tls.client_cert),
            "RECSTREAM_KAFKA_SSL_KEYFILE": str(tls.client_key),
        }
    )
    assert mtls["ssl.client.auth"] == "required" and "sasl.enabled.mechanisms" not in mtls
    with pytest.raises(StackError):
        security_properties("SASL_SSL", tls=tls, mechanism="SCRAM-SHA-512", broker_password=None)


def test_local_tls_broker_needs_the_ca_setting(tmp_path: Path) -> None:
    s = load_settings({"RECSTREAM_STACK_DIR": str(tmp_path), **SASL, "RECSTREAM_KAFKA_SASL_PASSWORD": "p"})
    with pytest.raises(StackError, match=f"RECSTREAM_KAFKA_SSL_CAFILE={tmp_path / 'tls' / 'ca.pem'}"):
        KafkaService(s)._tls()


# --- local Cassandra node ---------------------------------------------------------------------


def test_cassandra_yaml_with_tls_and_auth(tls: LocalTls, tmp_path: Path) -> None:
    from deploy.local.cassandra import CassandraService

    s = load_settings(
        {
            "RECSTREAM_STACK_DIR": str(tmp_path),
            "RECSTREAM_CASSANDRA_USERNAME": "recstream",
            "RECSTREAM_CASSANDRA_PASSWORD": "p",
            "RECSTREAM_CASSANDRA_SSL_CAFILE": str(tls.ca_cert),
        }
    )
    conf = yaml.safe_load(CassandraService(s).render_config(tls))
    assert conf["authenticator"] == "PasswordAuthenticator" and conf["authorizer"] == "CassandraAuthorizer"
    enc = conf["client_encryption_options"]
    assert enc == {
        "enabled": True,
        "optional": False,
        "keystore": str(tls.keystore),
        "keystore_password": tls.keystore_password(),
        "store_type": "PKCS12",
        "require_client_auth": False,
        "accepted_protocols": ["TLSv1.2", "TLSv1.3"],
    }
    assert "client_encryption_options" not in yaml.safe_load(CassandraService(s).render_config(None))


def test_cassandra_connect_failures_are_explained() -> None:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    from streams.state.session import describe_connect_failure

    s = load_settings({"RECSTREAM_CASSANDRA_USERNAME": "recstream", "RECSTREAM_CASSANDRA_PASSWORD": "pw-9"})
    refused = NoHostAvailable("x", {"127.0.0.1:9042": AuthenticationFailed("Bad credentials")})
    msg = describe_connect_failure(s, refused)
    assert "refused the credentials of user 'recstream'" in msg and "pw-9" not in msg
    untrusted = NoHostAvailable(
        "x", {"h": ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")}
    )
    assert "not trusted" in describe_connect_failure(s, untrusted)
    down = NoHostAvailable("x", {"h": ConnectionRefusedError(111, "refused")})
    assert "not reachable" in describe_connect_failure(s, down)
    assert "RECSTREAM_CASSANDRA_SSL_CAFILE" in describe_connect_failure(s, down)


# --- dependency audit -------------------------------------------------------------------------


def _dep(name: str, *vulns: Mapping[str, object]) -> dict[str, object]:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


def test_audit_fails_on_a_vulnerability_and_accepts_a_justified_ignore() -> None:
    vuln = {"id": "GHSA-aaaa", "aliases": ["CVE-2099-1"], "fix_versions": ["1.1"]}
    bad = evaluate({"dependencies": [_dep("a"), _dep("b", vuln)]}, ignored={})
    assert not bad.ok and any("VULNERABLE  b 1.0: GHSA-aaaa (fixed in: 1.1)" in ln for ln in bad.lines)
    accepted = evaluate({"dependencies": [_dep("b", vuln)]}, ignored={"CVE-2099-1": "not reachable: reason"})
    assert accepted.ok and any("ignored" in ln and "not reachable: reason" in ln for ln in accepted.lines)
    stale = evaluate({"dependencies": [_dep("a")]}, ignored={"GHSA-old": "x"})
    assert stale.ok and any("GHSA-old matched nothing" in ln for ln in stale.lines)


def test_audit_never_passes_silently_when_packages_were_not_audited() -> None:
    skipped = {"name": "x", "skip_reason": "Dependency not found on PyPI"}
    partial = evaluate({"dependencies": [_dep("a"), skipped]}, ignored={})
    assert not partial.ok and any("NOT AUDITED  x" in ln for ln in partial.lines)
    assert evaluate({"dependencies": [_dep("a"), skipped]}, ignored={}, unauditable={"x": "in-house"}).ok
    offline = {"dependencies": [skipped, {**skipped, "name": "y"}]}
    assert not evaluate(offline, ignored={}, if_unreachable="fail").ok
    warned = evaluate(offline, ignored={}, if_unreachable="warn")
    assert warned.ok and "nothing was audited" in warned.lines[0] and warned.lines[0].startswith("WARNING")
    assert not evaluate({"dependencies": []}, ignored={}).ok


# PyPI project JSON documents as the fallback reads them (``/pypi/<name>/json``: the latest release).
_VULN = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-1"],
    "fixed_in": ["2.1"],
    "link": "https://osv.dev/vulnerability/PYSEC-2099-1",
    "withdrawn": None,
}


def _project(latest: str, *vulns: Mapping[str, object]) -> dict[str, object]:
    return {"info": {"version": latest}, "vulnerabilities": list(vulns)}


def test_fallback_trusts_the_project_json_only_for_the_latest_release() -> None:
    pins = [("a", "1.0"), ("b", "2.0"), ("c", "0.9")]
    answers = {"a": _project("1.0"), "b": _project("2.0", _VULN), "c": _project("1.0", _VULN)}
    bad = evaluate_latest_only(pins, answers, ignored={})
    assert not bad.ok
    assert any(
        ln.startswith("VULNERABLE  b 2.0: PYSEC-2099-1 (fixed in: 2.1) https://osv") for ln in bad.lines
    )
    # c's advisory belongs to 1.0; nothing is known about 0.9 here: neither vulnerable nor clean.
    assert "NOT AUDITED  c: installed 0.9, latest 1.0" in bad.lines
    assert not any("VULNERABLE  c" in ln for ln in bad.lines)
    assert any(
        ln.startswith("PARTIAL AUDIT: 2 of 3 packages audited") and ln.endswith(": c") for ln in bad.lines
    )

    accepted = evaluate_latest_only(pins[:2], answers, ignored={"CVE-2099-1": "not reachable: reason"})
    assert accepted.ok and any(ln.startswith("ignored  b 2.0") and "reason" in ln for ln in accepted.lines)
    assert accepted.lines[-1] == "audit: all 2 packages audited (latest releases; no known vulnerability)"

    withdrawn = _project("2.0", {**_VULN, "withdrawn": "2099-01-02T00:00:00Z"})
    assert evaluate_latest_only([("b", "2.0")], {"b": withdrawn}, ignored={}).ok


def test_fallback_partial_audit_passes_but_says_so_and_never_counts_gaps_as_clean() -> None:
    pins = [("a", "1.0"), ("old", "1.0"), ("gone", "1.0"), ("novulndata", "1.0"), ("inhouse", "0.1")]
    answers: dict[str, audit.Answer] = {
        "a": _project("1.0"),
        "old": _project("3.0"),
        "gone": "HTTP 404 from https://pypi.org/pypi/gone/json",
        "novulndata": {"info": {"version": "1.0"}},  # a mirror that serves no advisories
    }
    v = evaluate_latest_only(
        pins,
        answers,
        other=["pkg @ file:///x.whl"],
        ignored={"GHSA-x": "y"},
        unauditable={"inhouse": "built here"},
    )
    assert v.ok
    text = "\n".join(v.lines)
    assert "NOT AUDITED  old: installed 1.0, latest 3.0" in text
    assert "NOT AUDITED  gone: HTTP 404" in text
    assert "NOT AUDITED  novulndata: the answer carries no latest version or no vulnerability data" in text
    assert "NOT AUDITED  pkg @ file:///x.whl: not a release pin" in text
    assert "exempt (UNAUDITABLE in deploy/local/audit.py): inhouse" in text
    assert (
        "PARTIAL AUDIT: 1 of 5 packages audited (latest releases; no known vulnerability); 4 NOT AUDITED: "
        in text
    )
    assert "4 packages above were NOT checked" in v.lines[-1]
    # An unused ignore entry may belong to a package that was not audited: not called stale.
    assert "GHSA-x matched none of the audited packages (partial audit)" in text


def test_fallback_with_nothing_audited_follows_if_unreachable() -> None:
    pins = [("a", "1.0"), ("b", "1.0")]
    down = {"a": "no answer ([Errno -2] Name or service not known)", "b": "no answer (timed out)"}
    failed = evaluate_latest_only(pins, down, ignored={}, if_unreachable="fail")
    assert not failed.ok and failed.lines == [
        "ERROR: the fallback (PyPI project JSON) could audit none of the 2 packages "
        "(first: a: no answer ([Errno -2] Name or service not known)); nothing was audited"
    ]
    warned = evaluate_latest_only(pins, down, ignored={}, if_unreachable="warn")
    assert warned.ok and warned.lines[0].startswith("WARNING") and "nothing was audited" in warned.lines[0]
    all_old = {"a": _project("2.0"), "b": _project("2.0")}
    assert not evaluate_latest_only(pins, all_old, ignored={}, if_unreachable="fail").ok
    assert not evaluate_latest_only([], {}, ignored={}).ok


def test_audit_reads_pins_and_knows_when_pip_audit_reached_nothing() -> None:
    pins, other = read_pins(
        "# frozen\nFoo_Bar==1.0\nbaz[extra]==2.0 ; python_version >= '3'\n"
        "--index-url https://x\nqux @ file:///tmp/qux.whl\n-e git+https://x/y#egg=y\n\n"
    )
    assert pins == [("Foo_Bar", "1.0"), ("baz", "2.0")]
    assert other == ["qux @ file:///tmp/qux.whl", "-e git+https://x/y#egg=y"]
    assert audit.canonical_name("Foo_Bar.baz") == "foo-bar-baz"
    skipped = {"name": "x", "skip_reason": "Dependency not found on PyPI"}
    assert "none of the 2 packages" in (service_unreachable({"dependencies": [skipped, skipped]}) or "")
    assert service_unreachable({"dependencies": [_dep("a"), skipped]}) is None  # judged by evaluate()
    assert service_unreachable({"dependencies": []}) is None


class _CannedPyPI(http.server.BaseHTTPRequestHandler):
    """``/pypi/<name>/json``: ``ok`` answers, ``flaky`` fails once with 503, anything else 404."""

    hits: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        name = self.path.split("/")[2]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name == "flaky" and self.hits[name] == 1:
            self.send_error(503)
            return
        if name not in ("ok", "flaky"):
            self.send_error(404)
            return
        body = json.dumps({**_project("1.0", _VULN), "releases": {"1.0": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_fallback_fetch_reduces_documents_retries_5xx_and_stops_when_nobody_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("no_proxy", "*")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CannedPyPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(
            audit, "PYPI_PROJECT_JSON", f"http://127.0.0.1:{server.server_port}/pypi/{{name}}/json"
        )
        got = fetch_projects(["ok", "flaky", "Missing_One"], workers=4, timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()
    assert got["ok"] == got["flaky"] == {"info": {"version": "1.0"}, "vulnerabilities": [_VULN]}
    assert _CannedPyPI.hits["flaky"] == 2
    assert isinstance(got["Missing_One"], str) and got["Missing_One"].startswith("HTTP 404")
    assert "/pypi/missing-one/json" in got["Missing_One"]  # PEP 503 name

    # A server that accepts but never answers: the first `workers` requests time out, the rest
    # are not even sent, so the fallback stays quick when the network is black-holed.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        monkeypatch.setattr(
            audit, "PYPI_PROJECT_JSON", f"http://127.0.0.1:{silent.getsockname()[1]}/{{name}}"
        )
        started = time.monotonic()
        got = fetch_projects([f"p{i}" for i in range(40)], workers=4, timeout_s=0.3, deadline_s=20)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < 3, took
    assert all(isinstance(a, str) for a in got.values())
    assert sum("did not answer the first 4 requests" in str(a) for a in got.values()) >= 36


def test_audit_main_falls_back_when_pip_audit_reaches_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("a==1.0\nold==1.0\n")
    offline = {
        "dependencies": [{"name": n, "skip_reason": "Dependency not found on PyPI"} for n in ("a", "old")]
    }
    monkeypatch.setattr(audit, "run_pip_audit", lambda *a: (offline, ""))
    answers: dict[str, audit.Answer] = {"a": _project("1.0"), "old": _project("2.0")}
    monkeypatch.setattr(audit, "fetch_projects", lambda names: {n: answers[n] for n in names})
    assert audit.main(["--lock", str(lock)]) == 0
    out = capsys.readouterr().out
    assert (
        "falling back to PyPI's project JSON" in out and "NOT AUDITED  old: installed 1.0, latest 2.0" in out
    )
    assert "PARTIAL AUDIT: 1 of 2 packages audited" in out

    answers["a"] = _project("1.0", _VULN)
    assert audit.main(["--lock", str(lock)]) == 1
    assert "VULNERABLE  a 1.0: PYSEC-2099-1" in capsys.readouterr().err

    # pip-audit crashed on the network (OSV unresolvable) is the same as unreachable; crashed for
    # another reason (a bad lock) is an error as before; a real report is used as is.
    monkeypatch.setattr(
        audit, "run_pip_audit", lambda *a: (None, "pip-audit failed (exit 1): NameResolutionError")
    )
    assert audit.main(["--lock", str(lock), "--service", "osv"]) == 1

    def bad_lock(*a: object) -> tuple[None, str]:
        raise audit.PipAuditFailed("pip-audit failed (exit 1): package a has duplicate requirements")

    monkeypatch.setattr(audit, "run_pip_audit", bad_lock)
    assert audit.main(["--lock", str(lock)]) == 2
    assert "duplicate requirements" in capsys.readouterr().err
    monkeypatch.setattr(audit, "run_pip_audit", lambda *a: ({"dependencies": [_dep("a"), _dep("old")]}, ""))
    assert audit.main(["--lock", str(lock)]) == 0
    assert "audit: 2 packages audited, no known vulnerabilities" in capsys.readouterr().out
