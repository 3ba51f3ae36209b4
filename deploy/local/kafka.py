"""Apache Kafka 3.9 in KRaft mode (broker and controller in one JVM) from Maven Central jars.

The client listener follows ``RECSTREAM_KAFKA_SECURITY_PROTOCOL``:

* ``PLAINTEXT`` (default): no TLS, no authentication.
* ``SASL_SSL`` / ``SASL_PLAINTEXT``: SCRAM-SHA-256 or -512 (``RECSTREAM_KAFKA_SASL_MECHANISM``).
  The client user (``RECSTREAM_KAFKA_SASL_USERNAME`` / password) and a broker user for the
  inter-broker listener are written into the metadata log when the storage is formatted
  (``kafka-storage format --add-scram`` with salted passwords: no password on a command line).
  A later start with other credentials fails with a clear message instead of a broker that
  refuses every client.
* ``SSL`` / ``SASL_SSL``: TLS with the throwaway CA of :mod:`deploy.local.tls`
  (``<stack_dir>/tls/ca.pem`` is what clients trust). With ``SSL`` and a configured client
  certificate, the broker requires client certificates (mutual TLS).

The controller listener stays PLAINTEXT on loopback. Generated files holding secrets
(``server.properties``, ``broker.secret``, ``scram.json``) are mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from deploy.local.base import Launch, Service
from deploy.local.errors import ServiceFailed, StackError
from deploy.local.maven import find_java, resolve_jars
from deploy.local.tls import LocalTls, ensure_local_tls

CONF = Path(__file__).resolve().parent / "conf"
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SCRAM_DIGESTS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
SCRAM_ITERATIONS = 8192
#: SCRAM user the broker authenticates as on its own (inter-broker) listener.
BROKER_USER = "recstream-broker"
_SCRAM_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


@dataclass(frozen=True)
class ScramCredential:
    """A SCRAM credential as Kafka stores it: salt, iterations and the salted password."""

    mechanism: str
    name: str
    salt: bytes
    iterations: int
    salted_password: bytes

    def storage_arg(self) -> str:
        """The ``--add-scram`` value of ``kafka-storage format`` (no plain password in it)."""
        salt = base64.b64encode(self.salt).decode()
        salted = base64.b64encode(self.salted_password).decode()
        return (
            f"{self.mechanism}=[name={self.name},iterations={self.iterations},"
            f'salt="{salt}",saltedpassword="{salted}"]'
        )

    def matches(self, password: str) -> bool:
        """Whether ``password`` yields this credential."""
        again = scram_credential(self.mechanism, self.name, password, self.salt, self.iterations)
        return secrets.compare_digest(again.salted_password, self.salted_password)


def scram_credential(
    mechanism: str, name: str, password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> ScramCredential:
    """SCRAM ``SaltedPassword := Hi(password, salt, i)`` (RFC 5802; PBKDF2 with HMAC).

    Raises:
        StackError: Unsupported mechanism, or a user name the storage tool cannot take.
    """
    if mechanism not in SCRAM_DIGESTS:
        raise StackError(
            f"the local Kafka broker supports SASL mechanisms {sorted(SCRAM_DIGESTS)}, not {mechanism}"
        )
    if not _SCRAM_NAME.match(name):
        raise StackError(f"SCRAM user name {name!r}: use letters, digits and . _ @ - only")
    salt = salt if salt is not None else secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac(SCRAM_DIGESTS[mechanism], password.encode("utf-8"), salt, iterations)
    return ScramCredential(mechanism, name, salt, iterations, salted)


def security_properties(
    protocol: str,
    *,
    tls: LocalTls | None = None,
    keystore_password: str = "",
    mechanism: str | None = None,
    broker_password: str | None = None,
    require_client_cert: bool = False,
) -> str:
    """The security part of ``server.properties`` for the client listener named ``protocol``."""
    lines: list[str] = []
    if protocol in TLS_PROTOCOLS:
        if tls is None:
            raise StackError(f"{protocol} needs TLS material")
        lines += [
            "# TLS: the throwaway CA and server certificate of deploy/local/tls.py",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={tls.keystore}",
            f"ssl.keystore.password={keystore_password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_cert}",
            f"ssl.client.auth={'required' if require_client_cert else 'none'}",
            "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
            "ssl.endpoint.identification.algorithm=https",
        ]
    if protocol.startswith("SASL"):
        if mechanism not in SCRAM_DIGESTS or not broker_password:
            raise StackError(f"{protocol} needs a SCRAM mechanism and the broker's password")
        listener = protocol.lower()
        lines += [
            "# SASL/SCRAM: users live in the KRaft metadata log (kafka-storage format --add-scram)",
            f"sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_USER}" password="{broker_password}";',
        ]
    return "\n".join(lines) + ("\n" if lines else "")


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding.

    Never one that starts with ``-`` (as Kafka's own ``Uuid.randomUuid``): ``kafka-storage
    format -t -Xy...`` takes such an id for an option and fails (1 start in 64 did, in CI).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (it may hold secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


class KafkaService(Service):
    """Single-node KRaft Kafka on 127.0.0.1:9092 (controller on 9093)."""

    name = "kafka"

    @property
    def port(self) -> int:
        host_port = self.settings.kafka_bootstrap_servers.split(",")[0]
        return int(host_port.rsplit(":", 1)[1])

    @property
    def ports(self) -> list[int]:
        return [self.port, self.port + 1]

    @property
    def sasl(self) -> bool:
        """Whether the client listener authenticates with SASL/SCRAM."""
        return self.settings.kafka_security_protocol.startswith("SASL")

    def describe(self) -> str:
        return (
            f"127.0.0.1:{self.port} ({self.settings.kafka_security_protocol}), "
            f"controller 127.0.0.1:{self.port + 1}"
        )

    def _tls(self) -> LocalTls | None:
        if self.settings.kafka_security_protocol not in TLS_PROTOCOLS:
            return None
        tls = ensure_local_tls(self.settings.stack_dir / "tls")
        if self.settings.kafka_ssl_cafile is None:
            raise StackError(
                f"the local broker's TLS certificate is signed by the stack's CA: set "
                f"RECSTREAM_KAFKA_SSL_CAFILE={tls.ca_cert}"
            )
        return tls

    def _broker_password(self) -> str:
        path = self.home / "broker.secret"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _user_credential(
        self, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
    ) -> ScramCredential:
        s = self.settings
        password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
        return scram_credential(
            str(s.kafka_sasl_mechanism), str(s.kafka_sasl_username), password, salt, iterations
        )

    def _check_scram_record(self, data: Path) -> None:
        """Refuse to start a formatted storage whose SCRAM user differs from the settings."""
        record_path = self.home / "scram.json"
        try:
            rec = json.loads(record_path.read_text())
            if not (self.home / "broker.secret").exists():
                raise ValueError("the broker's SCRAM password is gone")
        except (OSError, ValueError):
            raise StackError(
                f"kafka: the storage in {data} was formatted without SCRAM users; stop the stack and "
                f"remove {self.home} (its topics are lost) to start a SASL broker there"
            ) from None
        stored = ScramCredential(
            rec["mechanism"],
            rec["name"],
            base64.b64decode(rec["salt"]),
            int(rec["iterations"]),
            base64.b64decode(rec["salted_password"]),
        )
        s = self.settings
        password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
        if (
            stored.mechanism != s.kafka_sasl_mechanism
            or stored.name != s.kafka_sasl_username
            or not stored.matches(password)
        ):
            raise StackError(
                f"kafka: the storage in {data} holds SCRAM user {stored.name!r} ({stored.mechanism}) with "
                "other credentials than RECSTREAM_KAFKA_SASL_*; restore them, or stop the stack and "
                f"remove {self.home} (its topics are lost)"
            )

    def render_properties(self, tls: LocalTls | None, broker_password: str | None) -> str:
        """The broker's ``server.properties``."""
        s = self.settings
        security = security_properties(
            s.kafka_security_protocol,
            tls=tls,
            keystore_password=tls.keystore_password() if tls else "",
            mechanism=s.kafka_sasl_mechanism,
            broker_password=broker_password,
            require_client_cert=s.kafka_security_protocol == "SSL" and s.kafka_ssl_certfile is not None,
        )
        return (
            (CONF / "kafka-server.properties")
            .read_text()
            .format(
                listener=s.kafka_security_protocol,
                port=self.port,
                controller_port=self.port + 1,
                data_dir=self.home / "data",
                partitions=s.topic_partitions,
                security=security,
            )
        )

    def prepare(self) -> Launch:
        java = find_java()
        jars = resolve_jars("kafka", self.settings.cache_dir)
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        tls = self._tls()
        formatted = (data / "meta.properties").exists()
        user_cred = broker_cred = None
        if self.sasl:
            user_cred = self._user_credential()  # validates mechanism and user name first
            if formatted:
                self._check_scram_record(data)
            elif (self.home / "broker.secret").exists():
                (self.home / "broker.secret").unlink()  # a fresh storage gets a fresh broker password
            broker_cred = scram_credential(user_cred.mechanism, BROKER_USER, self._broker_password())
        props = self.home / "server.properties"
        _write_private(props, self.render_properties(tls, self._broker_password() if self.sasl else None))
        log4j = f"-Dlog4j.configuration=file:{CONF / 'kafka-log4j.properties'}"
        cp = f"{jars}/*"
        if not formatted:
            # KRaft storage must be formatted once with a cluster id before the first start.
            cluster_id = new_cluster_id()
            scram_args: list[str] = []
            for cred in (user_cred, broker_cred):
                if cred is not None:
                    scram_args += ["--add-scram", cred.storage_arg()]
            format_cmd = [java, "-cp", cp, log4j, "kafka.tools.StorageTool", "format"]
            proc = subprocess.run(
                [*format_cmd, "-t", cluster_id, "-c", str(props), *scram_args],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_text(proc.stdout + proc.stderr)
                raise ServiceFailed(
                    self.name,
                    "formatting KRaft storage failed",
                    self.log_path,
                    (proc.stdout + proc.stderr)[-2000:],
                )
            if user_cred is not None:
                _write_private(
                    self.home / "scram.json",
                    json.dumps(
                        {
                            "mechanism": user_cred.mechanism,
                            "name": user_cred.name,
                            "salt": base64.b64encode(user_cred.salt).decode(),
                            "iterations": user_cred.iterations,
                            "salted_password": base64.b64encode(user_cred.salted_password).decode(),
                        }
                    ),
                )
        heap = self.settings.kafka_heap
        argv = [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            log4j,
            "-cp",
            cp,
            "kafka.Kafka",
            str(props),
        ]
        return Launch(argv, {}, self.home)

    def healthy(self) -> bool:
        try:
            from kafka import KafkaAdminClient

            from streams.kafka_config import kafka_python_config

            # The same client settings (TLS, SASL) recstream's own clients use, on this node.
            cfg = {**kafka_python_config(self.settings), "bootstrap_servers": f"127.0.0.1:{self.port}"}
            admin = KafkaAdminClient(request_timeout_ms=3000, **cfg)
            try:
                admin.list_topics()
                return True
            finally:
                admin.close()
        except Exception as exc:
            self.last_error = repr(exc)
            return False
