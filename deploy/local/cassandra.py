"""Apache Cassandra 5.0 (CassandraDaemon on JDK 17) from Maven Central jars.

Security follows the client settings:

* ``RECSTREAM_CASSANDRA_USERNAME`` set: ``PasswordAuthenticator`` and ``CassandraAuthorizer``.
  The node starts with the default superuser ``cassandra``/``cassandra``; when the configured
  user is another one, the health check creates it once (``CREATE ROLE IF NOT EXISTS ... LOGIN``
  with all permissions on all keyspaces) through the default superuser, so ``stack up`` leaves a
  node recstream can log in to. A local-stack convenience: a real cluster has its own roles.
* ``RECSTREAM_CASSANDRA_SSL_CAFILE`` set: client encryption is required on the CQL port, with the
  PKCS#12 keystore of :mod:`deploy.local.tls` (clients trust ``<stack_dir>/tls/ca.pem``).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from deploy.local.base import Launch, Service
from deploy.local.errors import StackError
from deploy.local.maven import find_java, resolve_jars
from deploy.local.tls import LocalTls, ensure_local_tls

CONF = Path(__file__).resolve().parent / "conf"
#: The superuser a fresh node with PasswordAuthenticator has (local stack only).
DEFAULT_SUPERUSER = ("cassandra", "cassandra")
_ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


def jvm_options() -> list[str]:
    """The JDK 17 flags from ``conf/cassandra-jvm17.options`` (comments stripped)."""
    opts: list[str] = []
    for line in (CONF / "cassandra-jvm17.options").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            opts.extend(line.split(" ", 1))  # "--add-opens X" is two argv words
    return opts


class CassandraService(Service):
    """One Cassandra node; CQL native transport on 127.0.0.1:9042."""

    name = "cassandra"

    @property
    def storage_port(self) -> int:
        return self.settings.cassandra_storage_port

    @property
    def jmx_port(self) -> int:
        return self.settings.cassandra_jmx_port

    @property
    def ports(self) -> list[int]:
        return [self.settings.cassandra_port, self.storage_port, self.jmx_port]

    def describe(self) -> str:
        return f"CQL 127.0.0.1:{self.settings.cassandra_port}"

    def _tls(self) -> LocalTls | None:
        if self.settings.cassandra_ssl_cafile is None:
            return None
        return ensure_local_tls(self.settings.stack_dir / "tls")

    def render_config(self, tls: LocalTls | None = None) -> str:
        """The node's ``cassandra.yaml`` (password auth when a username is configured, client
        encryption when ``tls`` is given)."""
        auth = self.settings.cassandra_username is not None
        return (
            (CONF / "cassandra.yaml")
            .read_text()
            .format(
                home=self.home,
                port=self.settings.cassandra_port,
                storage_port=self.storage_port,
                authenticator="PasswordAuthenticator" if auth else "AllowAllAuthenticator",
                authorizer="CassandraAuthorizer" if auth else "AllowAllAuthorizer",
                client_encryption=client_encryption_yaml(tls),
            )
        )

    def prepare(self) -> Launch:
        java = find_java()
        jars = resolve_jars("cassandra", self.settings.cache_dir)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        conf = self.home / "cassandra.yaml"  # may hold the keystore password: owner-only
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(self.render_config(self._tls()))
        jamm = next(jars.glob("jamm-*.jar"), None)
        heap = self.settings.cassandra_heap
        argv = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *jvm_options(),
            *([f"-javaagent:{jamm}"] if jamm else []),
            f"-Dcassandra.config=file://{self.home / 'cassandra.yaml'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.home}",
            f"-Dcassandra.logdir={self.home / 'logs'}",
            f"-Dlogback.configurationFile={CONF / 'cassandra-logback.xml'}",
            f"-Dcassandra.jmx.local.port={self.jmx_port}",
            # A single node has nobody to gossip with: skip the settle wait and ring delay.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            # With PasswordAuthenticator, create the default superuser at once (default: 10 s later).
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Djava.awt.headless=true",
            "-cp",
            f"{jars}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        return Launch(argv, {}, self.home)

    def _release_version(self, auth_provider: Any, ssl_context: Any) -> str | None:
        from cassandra.cluster import Cluster

        cluster = Cluster(
            ["127.0.0.1"],
            port=self.settings.cassandra_port,
            auth_provider=auth_provider,
            ssl_context=ssl_context,
            connect_timeout=3,
            control_connection_timeout=3,
        )
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            return None if row is None else str(row.release_version)
        finally:
            cluster.shutdown()

    def provision_role(self, ssl_context: Any) -> None:
        """Create the configured login role through the default superuser (if it does not exist).

        Raises:
            StackError: The user name is not a plain CQL identifier.
            cassandra.cluster.NoHostAvailable: The default superuser was refused or the node is down.
        """
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster

        s = self.settings
        name = str(s.cassandra_username)
        if not _ROLE_NAME.match(name):
            raise StackError(f"cassandra user {name!r}: the local stack creates only plain identifiers")
        password = s.cassandra_password.get_secret_value() if s.cassandra_password else ""
        cluster = Cluster(
            ["127.0.0.1"],
            port=s.cassandra_port,
            auth_provider=PlainTextAuthProvider(*DEFAULT_SUPERUSER),
            ssl_context=ssl_context,
            connect_timeout=3,
            control_connection_timeout=3,
        )
        try:
            session = cluster.connect()
            session.execute(
                f'CREATE ROLE IF NOT EXISTS "{name}" WITH PASSWORD = %s AND LOGIN = true', (password,)
            )
            session.execute(f'GRANT ALL PERMISSIONS ON ALL KEYSPACES TO "{name}"')
        finally:
            cluster.shutdown()

    def healthy(self) -> bool:
        try:
            from cassandra import AuthenticationFailed
            from cassandra.cluster import NoHostAvailable

            from streams.state.session import connection_options

            logging.getLogger("cassandra").setLevel(logging.CRITICAL)
            # The same auth and TLS settings recstream's store uses.
            opts = connection_options(self.settings)
            try:
                return self._release_version(opts["auth_provider"], opts["ssl_context"]) is not None
            except NoHostAvailable as exc:
                refused = any(isinstance(e, AuthenticationFailed) for e in exc.errors.values())
                if not refused or self.settings.cassandra_username == DEFAULT_SUPERUSER[0]:
                    raise
                self.provision_role(opts["ssl_context"])
                return self._release_version(opts["auth_provider"], opts["ssl_context"]) is not None
        except Exception as exc:
            self.last_error = repr(exc)
            return False


def client_encryption_yaml(tls: LocalTls | None) -> str:
    """``client_encryption_options`` for cassandra.yaml: TLS required on the CQL port, or off."""
    if tls is None:
        return ""  # Cassandra's default: no client encryption
    return (
        "client_encryption_options:\n"
        "  enabled: true\n"
        "  optional: false\n"
        f"  keystore: {tls.keystore}\n"
        f'  keystore_password: "{tls.keystore_password()}"\n'
        "  store_type: PKCS12\n"
        "  require_client_auth: false\n"
        "  accepted_protocols: [TLSv1.2, TLSv1.3]\n"
    )
