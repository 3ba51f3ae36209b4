"""Apache Cassandra 5.0 (CassandraDaemon on JDK 17) from Maven Central jars."""

from __future__ import annotations

import logging
from pathlib import Path

from deploy.local.base import Launch, Service
from deploy.local.maven import find_java, resolve_jars

CONF = Path(__file__).resolve().parent / "conf"


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

    def render_config(self) -> str:
        """The node's ``cassandra.yaml`` (password auth when a username is configured)."""
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
            )
        )

    def prepare(self) -> Launch:
        java = find_java()
        jars = resolve_jars("cassandra", self.settings.cache_dir)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "cassandra.yaml").write_text(self.render_config())
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
            "-Djava.awt.headless=true",
            "-cp",
            f"{jars}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        return Launch(argv, {}, self.home)

    def healthy(self) -> bool:
        try:
            from cassandra.auth import PlainTextAuthProvider
            from cassandra.cluster import Cluster

            s = self.settings
            auth = (
                PlainTextAuthProvider(s.cassandra_username, s.cassandra_password.get_secret_value())
                if s.cassandra_username and s.cassandra_password
                else None
            )
            logging.getLogger("cassandra").setLevel(logging.CRITICAL)
            cluster = Cluster(
                ["127.0.0.1"],
                port=s.cassandra_port,
                auth_provider=auth,
                connect_timeout=3,
                control_connection_timeout=3,
            )
            try:
                session = cluster.connect()
                return session.execute("SELECT release_version FROM system.local").one() is not None
            finally:
                cluster.shutdown()
        except Exception as exc:
            self.last_error = repr(exc)
            return False
