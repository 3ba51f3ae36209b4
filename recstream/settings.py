"""All recstream configuration, read once from ``RECSTREAM_*`` environment variables.

Every environment name the project reads is a field here (``RECSTREAM_`` + upper-case field
name); nothing else in the code base calls ``os.environ`` for configuration. Values are
validated at start-up, and a ``RECSTREAM_*`` variable that names no field is rejected, so a
typo fails loudly instead of being silently ignored.

Writable paths: every folder recstream writes (the local stack, trained models, reports,
caches) is a setting here, and nothing writes under the source tree or site-packages unless a
setting says so. When a path is not set explicitly, its default depends on ``home``:

* ``RECSTREAM_HOME`` set: everything below it (``<home>/stack``, ``<home>/models``,
  ``<home>/reports``, ``<home>/cache``, ...), wherever the code runs from;
* unset, running from a source checkout (:func:`source_checkout`: the folder above this
  package holds recstream's ``pyproject.toml`` and is not inside site-packages, as after
  ``make install``): the checkout's own layout, as it has always been (``./.stack``,
  ``./artifacts/models``, ``./reports``, Markdown reports in ``./docs``); ``home`` is the
  checkout;
* unset, installed (a wheel): the per-user data directory ``$XDG_DATA_HOME/recstream``
  (``~/.local/share/recstream``).

``cache_dir`` (jars, ONNX exports, the dependency environment of ``make install``) is the one
exception while ``RECSTREAM_HOME`` is unset: ``~/.cache/recstream``, the per-user cache
directory, in a checkout too (``deploy/local/install.sh`` and ``make lock`` use the same
folder); with ``RECSTREAM_HOME`` it is ``<home>/cache``, so one writable volume holds all.
Derived defaults follow the effective value they derive from: ``docs_dir`` is ``reports_dir``
and ``embedding_cache_dir`` is ``<cache_dir>/embeddings`` outside a checkout (``./docs`` and
``./artifacts/cache`` in one). An explicit ``RECSTREAM_STACK_DIR`` (etc.) always wins; an empty
one counts as unset. ``HOME`` and ``XDG_DATA_HOME`` are read from the process environment, as
any program reads them, even when :func:`load_settings` is given a private ``environ``.

Example:
    >>> from recstream.settings import load_settings
    >>> s = load_settings()
    >>> s.kafka_bootstrap_servers
    '127.0.0.1:9092'
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RECSTREAM_"
#: The folder above the ``recstream`` package: the source checkout *when there is one* (a clone
#: with ``make install``'s editable install, where tests and the lab's sample data under
#: ``deploy/local/sample`` live). Installed from a wheel it is site-packages, which recstream
#: never writes to and which holds no sample data: ask :func:`source_checkout` before using it.
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Writable path settings with a layout of their own in a source checkout: field ->
#: (default relative to the checkout, default relative to ``home`` elsewhere). ``docs_dir``
#: outside a checkout, ``cache_dir`` and ``embedding_cache_dir`` are derived in
#: :meth:`Settings._writable_paths`.
CHECKOUT_LAYOUT = {
    "stack_dir": (".stack", "stack"),
    "model_dir": ("artifacts/models", "models"),
    "reports_dir": ("reports", "reports"),
}
#: Every setting naming a folder recstream writes to.
WRITABLE_PATH_FIELDS = (
    "home",
    "stack_dir",
    "model_dir",
    "reports_dir",
    "docs_dir",
    "cache_dir",
    "embedding_cache_dir",
)


@lru_cache(maxsize=4)
def _is_checkout(root: Path) -> bool:
    if any(part in ("site-packages", "dist-packages") for part in root.parts):
        return False
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == "recstream"


def source_checkout() -> Path | None:
    """:data:`REPO_ROOT` when the code runs from a source checkout of recstream, else None.

    A checkout is a folder holding recstream's own ``pyproject.toml`` above the package, outside
    any site-packages (a clone after ``make install``, or a copy of its files); a ``.git`` folder
    is not required. An installed wheel never is one.
    """
    return REPO_ROOT if _is_checkout(REPO_ROOT) else None


def _user_home() -> Path:
    try:
        return Path.home()
    except RuntimeError:
        raise ValueError(f"no home directory (HOME is unset): set {ENV_PREFIX}HOME") from None


def default_home() -> Path:
    """``$XDG_DATA_HOME/recstream``, or ``~/.local/share/recstream`` (XDG_DATA_HOME unset or
    relative, which the XDG specification says to ignore)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else _user_home() / ".local" / "share"
    return base / "recstream"


class SettingsError(ValueError):
    """Raised when the environment holds an invalid or unknown ``RECSTREAM_*`` setting."""


#: Secret settings (``SecretStr``: masked in ``repr``, dumps and ``recstream config``).
SECRET_FIELDS = ("kafka_sasl_password", "cassandra_password", "web_token")
#: ``*_file`` setting -> the secret it fills (read once at start-up).
SECRET_FILE_FIELDS = {
    "kafka_sasl_password_file": "kafka_sasl_password",
    "cassandra_password_file": "cassandra_password",
    "web_token_file": "web_token",
}


def read_secret_file(path: Path, setting: str) -> str:
    """The secret held by ``path``: its whole content minus one trailing newline.

    Raises:
        ValueError: The file cannot be read, is empty or holds more than one line. The message
            names the setting and the path, never the content.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{setting}: cannot read {path} ({reason})") from None
    value = raw.removesuffix("\n").removesuffix("\r")
    if not value:
        raise ValueError(f"{setting}: {path} is empty")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{setting}: {path} holds more than one line")
    return value


def _describe_errors(exc: ValidationError) -> str:
    """A validation error without the input values (they may hold secrets)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{ENV_PREFIX}{where.upper()}: {msg}" if where else msg)
    return "; ".join(lines)


class Settings(BaseSettings):
    """Typed, frozen settings. See the README's configuration table for every field."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", case_sensitive=False
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: Any, init_settings: Any, *_: Any, **__: Any
    ) -> tuple[Any, ...]:
        """Only the values :func:`load_settings` passes: it reads the environment itself, so a
        private ``environ`` (tests, a second deployment) is not mixed with ``os.environ``."""
        return (init_settings,)

    # --- writable paths (defaults: see the module docstring and _writable_paths) --------
    home: Path = Field(
        description="Folder the writable paths below default under. Unset: the per-user data folder, "
        "or, run from a source checkout, the checkout itself with its own layout (`in a checkout`).",
    )
    stack_dir: Path = Field(description="State, logs and pids of the local stack.")
    model_dir: Path = Field(description="Trained fusion models.")
    reports_dir: Path = Field(
        description="JSON reports of `recstream bench`, `eval` and `soak` (`chaos/soak.json`)."
    )
    docs_dir: Path = Field(
        description="Markdown reports and plots of `recstream bench` (BENCHMARKS.md) and `soak` "
        "(its section of RELIABILITY.md): the repo's docs/ in a checkout, else reports_dir.",
    )
    cache_dir: Path = Field(
        description="Cache for resolved server jars, ONNX exports and the dependency environment.",
    )
    embedding_cache_dir: Path = Field(
        description="Cache of a dataset's catalogue text embeddings (`recstream train` and `eval`).",
    )

    # --- local stack -------------------------------------------------------------------
    cassandra_heap: str = Field("1G", description="Heap (-Xmx/-Xms) of the local Cassandra node.")
    kafka_heap: str = Field("512M", description="Heap of the local Kafka broker.")
    stack_start_timeout_s: float = Field(
        240.0, gt=0, description="Wait this long for a server to be healthy."
    )

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        le=1500,
        description="Longest a worker's fetch waits at the broker for data (see streams/faust_transport.py: "
        "a long wait stalls busy partitions while idle ones are fetched).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    kafka_sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password (instead of `..._SASL_PASSWORD`)."
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle for Kafka TLS (default: the system's CAs)."
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM) for mutual TLS with Kafka, optional."
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, description="Private key (PEM) of the Kafka client certificate."
    )
    topic_click: str = Field("events.click", description="Input topic of click events.")
    topic_upload: str = Field("events.upload", description="Input topic of upload events.")
    topic_review: str = Field("events.review", description="Input topic of review events.")
    topic_recs: str = Field("recs.updated", description="Output topic of refreshed lists.")
    topic_dlq: str = Field("events.dlq", description="Dead-letter topic for rejected events.")
    topic_partitions: int = Field(4, ge=1, description="Partitions for topics recstream creates.")
    consumer_group: str = Field("recstream", description="Kafka consumer group (Faust app id).")

    # --- Cassandra ---------------------------------------------------------------------
    cassandra_contact_points: str = Field("127.0.0.1", description="Comma-separated hosts.")
    cassandra_port: int = Field(9042, ge=1, le=65535, description="CQL native port.")
    cassandra_storage_port: int = Field(
        7000, ge=1, le=65535, description="Local node's inter-node (storage) port."
    )
    cassandra_jmx_port: int = Field(7199, ge=1, le=65535, description="Local node's JMX port.")
    cassandra_keyspace: str = Field(
        "recstream", pattern=r"^[a-z][a-z0-9_]{0,47}$", description="Keyspace of recstream tables."
    )
    cassandra_replication: str = Field(
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        description="CQL replication map for the keyspace.",
    )
    cassandra_consistency: Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL"] = Field(
        "LOCAL_QUORUM", description="Consistency level of reads and writes."
    )
    cassandra_username: str | None = Field(None, description="Cassandra user (PasswordAuthenticator).")
    cassandra_password: SecretStr | None = Field(None, description="Cassandra password (never logged).")
    cassandra_password_file: Path | None = Field(
        None, description="File holding the Cassandra password (instead of `..._PASSWORD`)."
    )
    cassandra_ssl_cafile: Path | None = Field(
        None, description="CA bundle for Cassandra TLS; setting it turns TLS on."
    )
    cassandra_max_concurrency: int = Field(64, ge=1, description="In-flight async statements.")

    # --- Triton ------------------------------------------------------------------------
    triton_grpc_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint (host:port).")
    triton_http_port: int = Field(8000, ge=1, le=65535, description="Local Triton HTTP port.")
    triton_grpc_port: int = Field(8001, ge=1, le=65535, description="Local Triton gRPC port.")
    triton_metrics_port: int = Field(8002, ge=1, le=65535, description="Local Triton metrics port.")
    triton_timeout_s: float = Field(10.0, gt=0, description="Per-request Triton timeout.")
    triton_max_concurrency: int = Field(16, ge=1, description="In-flight Triton requests per worker.")
    triton_device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="Instance kind for served models; auto picks GPU when one is visible."
    )
    image_model_path: Path | None = Field(
        None, description="Optional TorchScript/ONNX image model replacing the built-in descriptor."
    )
    text_encoder: Literal["onnx-int8", "onnx-fp32", "torch"] = Field(
        "onnx-int8",
        description="How the served (and in-process) MiniLM text encoder runs on CPU: onnxruntime with "
        "int8 matrix products, one text per pass (about 2x PyTorch, cosine >= 0.98 with fp32), "
        "onnxruntime fp32 (same vectors as PyTorch), or PyTorch eager. GPU instances run PyTorch.",
    )

    # --- recommendation ----------------------------------------------------------------
    k: int = Field(20, ge=1, le=1000, description="Length of published lists (top-K).")
    decay_tau_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="Time constant of user-state decay. Set explicitly, it is what the worker applies; "
        "unset, the worker applies the decay the served fusion model was trained with (`recstream train` "
        "defaults to 120 s), and this default (7 days) only for a model that records none (the untrained "
        "fallback).",
    )
    weight_click: float = Field(1.0, gt=0, description="Update weight of a click (times its own weight).")
    weight_review: float = Field(1.0, gt=0, description="Update weight of a review.")
    weight_upload: float = Field(0.5, gt=0, description="Update weight of an upload for its uploader.")
    seen_items_max: int = Field(2000, ge=1, description="Seen items kept per user (newest).")
    recent_events_max: int = Field(
        1000, ge=1, description="Applied event ids kept per user (newest), the idempotency window."
    )
    ann_backend: Literal["exact", "faiss"] = Field("exact", description="Retrieval index.")
    unknown_item_wait_s: float = Field(
        30.0,
        ge=0,
        description="How long (while no dependency is failing) a click on an item not yet in the "
        "catalogue waits for its upload; then it is re-queued to recstream's own topic "
        "`<consumer group>.retry` (partition with the original's number, never events.click) and waits "
        "again, up to 10 times, before being applied without the item.",
    )

    # --- edge limits -------------------------------------------------------------------
    max_message_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted Kafka message.")
    max_text_chars: int = Field(10_000, ge=1, description="Longest review text / description.")
    max_title_chars: int = Field(1_000, ge=1, description="Longest upload title.")
    max_id_chars: int = Field(256, ge=1, description="Longest event/user/item id.")
    max_list_items: int = Field(256, ge=1, description="Longest tags list / feature vector.")
    max_features: int = Field(32, ge=1, description="Most named feature vectors in one upload.")
    max_image_bytes: int = Field(5_242_880, ge=1, description="Largest decoded image payload.")
    max_image_pixels: int = Field(16_000_000, ge=1, description="Largest image (width * height).")

    # --- worker ------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Worker web server bind address.")
    web_port: int = Field(6066, ge=1, le=65535, description="Worker web server port.")
    web_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="Token for the routes that show users' lists (ops page /ops, /api/*, the read API "
        "/v1/users/{id}/recommendations) when the web server is bound beyond loopback, sent as Bearer or "
        "as the Basic password (never logged); without one configured they answer 401 there.",
    )
    web_token_file: Path | None = Field(
        None,
        description="File holding the web token (instead of `..._WEB_TOKEN`), e.g. a mounted Kubernetes "
        "Secret; its content minus one trailing newline, read once at start-up.",
    )
    batch_size: int = Field(256, ge=1, description="Most events per stream.take batch.")
    batch_timeout_s: float = Field(0.005, gt=0, description="Max wait to fill a batch.")
    commit_interval_s: float = Field(
        1.0,
        gt=0,
        description="Write changed user states to Cassandra, then commit the input offsets they "
        "cover, this often (and at every rebalance and shutdown).",
    )
    max_pending_events: int = Field(
        20_000,
        ge=1,
        description="Events taken but not finished (list not yet delivered) before the worker "
        "waits for deliveries (back-pressure).",
    )
    state_cache_max_users: int = Field(
        1_000_000, ge=1, description="Unchanged user states kept in memory at most (LRU beyond)."
    )
    fault_hook: str | None = Field(
        None,
        pattern=r"^((after_apply|after_publish|after_flush|drop_event)(:[0-9]+)?|no_dedup)"
        r"(,((after_apply|after_publish|after_flush|drop_event)(:[0-9]+)?|no_dedup))*$",
        description="Tests only: SIGKILL the worker itself the Nth time (default 1st) it reaches "
        "this point of the commit protocol (after_apply, after_publish, after_flush); or break it "
        "on purpose for the chaos negative controls (no_dedup, drop_event:N); comma-separated. "
        "Never in production.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field("json", description="json (structured) or text logs.")

    @field_validator("kafka_bootstrap_servers", "cassandra_contact_points")
    @classmethod
    def _non_empty_list(cls, v: str) -> str:
        if not [p for p in v.split(",") if p.strip()]:
            raise ValueError("must name at least one host")
        return v

    @model_validator(mode="before")
    @classmethod
    def _writable_paths(cls, data: Any) -> Any:
        """Fill each writable path not set explicitly (unset or empty): the module docstring's rule."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = {
            name: Path(str(data[name])).expanduser()
            for name in WRITABLE_PATH_FIELDS
            if data.get(name) is not None and str(data[name]) != ""
        }
        checkout = None if "home" in given else source_checkout()
        home = given.get("home") or checkout or default_home()
        paths = {"home": home}
        for name, (in_checkout, in_home) in CHECKOUT_LAYOUT.items():
            paths[name] = given.get(name) or (checkout / in_checkout if checkout else home / in_home)
        paths["docs_dir"] = given.get("docs_dir") or (checkout / "docs" if checkout else paths["reports_dir"])
        # Caches stay in the per-user cache folder unless RECSTREAM_HOME gathers everything.
        cache = home / "cache" if "home" in given else None
        paths["cache_dir"] = given.get("cache_dir") or cache or _user_home() / ".cache" / "recstream"
        paths["embedding_cache_dir"] = given.get("embedding_cache_dir") or (
            checkout / "artifacts" / "cache" if checkout else paths["cache_dir"] / "embeddings"
        )
        data.update(paths)
        return data

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Fill each secret from its ``*_file`` setting (never both)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for file_field, secret_field in SECRET_FILE_FIELDS.items():
            path = data.get(file_field)
            if path is None or str(path) == "":
                data.pop(file_field, None)
                continue
            if data.get(secret_field) not in (None, ""):
                raise ValueError(
                    f"set {ENV_PREFIX}{secret_field.upper()} or {ENV_PREFIX}{file_field.upper()}, not both"
                )
            data[secret_field] = read_secret_file(Path(str(path)), ENV_PREFIX + file_field.upper())
        return data

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("SASL protocols need kafka_sasl_mechanism, _username and _password")
        tls_files = [self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile]
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL") and any(tls_files):
            raise ValueError(
                f"Kafka TLS files are set but kafka_security_protocol={self.kafka_security_protocol} "
                "uses no TLS (use SSL or SASL_SSL)"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("kafka_ssl_keyfile needs kafka_ssl_certfile")
        if bool(self.cassandra_username) != bool(self.cassandra_password):
            raise ValueError("cassandra_username and cassandra_password (or _password_file) go together")
        return self

    @property
    def cassandra_hosts(self) -> list[str]:
        """Contact points as a list."""
        return [h.strip() for h in self.cassandra_contact_points.split(",") if h.strip()]

    @property
    def event_topics(self) -> dict[str, str]:
        """Input topic per event type."""
        return {"click": self.topic_click, "upload": self.topic_upload, "review": self.topic_review}


def known_env_names() -> set[str]:
    """Every environment variable name the settings read."""
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build and validate settings from the environment.

    Args:
        environ: Environment to read (default ``os.environ``).
        **overrides: Field values that win over the environment (used by the CLI and tests).

    Raises:
        SettingsError: A ``RECSTREAM_*`` variable is unknown or a value is invalid.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(
        k for k in env if k.upper().startswith(ENV_PREFIX) and k.upper() not in known_env_names()
    )
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; see the README's configuration table")
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        for k, v in env.items():
            if k.upper() == key:
                values[name] = v
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        # model_validate takes exactly these values; pydantic-settings does not read the
        # environment a second time, so tests can pass a private environ.
        return Settings.model_validate(values)
    except ValidationError as exc:
        # str(exc) would quote the input values, secrets included: name the fields only.
        raise SettingsError(_describe_errors(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, loaded on first use."""
    return load_settings()
