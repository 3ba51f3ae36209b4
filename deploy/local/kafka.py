"""Apache Kafka 3.9 in KRaft mode (broker and controller in one JVM) from Maven Central jars."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from deploy.local.base import Launch, Service
from deploy.local.errors import ServiceFailed
from deploy.local.maven import find_java, resolve_jars

CONF = Path(__file__).resolve().parent / "conf"


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

    def prepare(self) -> Launch:
        java = find_java()
        jars = resolve_jars("kafka", self.settings.cache_dir)
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(
            (CONF / "kafka-server.properties")
            .read_text()
            .format(
                port=self.port,
                controller_port=self.port + 1,
                data_dir=data,
                partitions=self.settings.topic_partitions,
            )
        )
        log4j = f"-Dlog4j.configuration=file:{CONF / 'kafka-log4j.properties'}"
        cp = f"{jars}/*"
        if not (data / "meta.properties").exists():
            # KRaft storage must be formatted once with a cluster id before the first start.
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            proc = subprocess.run(
                [
                    java,
                    "-cp",
                    cp,
                    log4j,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(props),
                ],
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

            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{self.port}",
                request_timeout_ms=3000,
            )
            try:
                admin.list_topics()
                return True
            finally:
                admin.close()
        except Exception as exc:
            self.last_error = repr(exc)
            return False
