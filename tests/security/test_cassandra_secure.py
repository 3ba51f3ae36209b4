"""recstream's Cassandra store against a real node with PasswordAuthenticator and required TLS."""

from __future__ import annotations

import os
import subprocess
import uuid

import numpy as np
import pytest
import yaml

from deploy.local.tls import ensure_local_tls
from recstream.testing import RECSTREAM
from streams.errors import StateConnectionError
from streams.state.base import ItemRecord, UserState, UserWrite
from streams.state.cassandra import CassandraStateStore
from streams.state.schema import apply_schema
from streams.state.session import connect
from tests.security.conftest import SecureStack, is_loopback, listening_sockets, server_pid

pytestmark = [pytest.mark.integration, pytest.mark.cassandra]


def test_the_node_requires_password_auth_and_tls(secure_stack: SecureStack) -> None:
    conf_path = secure_stack.settings.stack_dir / "cassandra" / "cassandra.yaml"
    conf = yaml.safe_load(conf_path.read_text())
    assert conf["authenticator"] == "PasswordAuthenticator"
    enc = conf["client_encryption_options"]
    assert enc["enabled"] is True and enc["optional"] is False
    assert oct(conf_path.stat().st_mode & 0o777) == "0o600"  # it holds the keystore password


async def test_schema_upsert_and_read_with_the_recstream_role_over_tls(secure_stack: SecureStack) -> None:
    s = secure_stack.settings_with(RECSTREAM_CASSANDRA_KEYSPACE=f"sec_{uuid.uuid4().hex[:8]}")
    assert apply_schema(s) >= 1
    store = CassandraStateStore.open(s)
    try:
        state = UserState(
            user_id="alice",
            acc=np.array([0.5, -1.0, 2.0]),
            ref_ts=1_700_000_000_000,
            event_count=3,
            model_version="m1",
            offsets={"events.click:0": 41},
            recent_events=("e1", "e2"),
            seen=("i1",),
        )
        await store.write_users([UserWrite.whole(state)])
        await store.put_items(
            [ItemRecord("i1", np.ones(4, dtype=np.float32), frozenset({"text"}), "m1", "T", 1)]
        )
        got = (await store.get_users(["alice"]))["alice"]
        assert got.offsets == state.offsets and got.seen == state.seen
        assert got.acc is not None and state.acc is not None and np.array_equal(got.acc, state.acc)
        assert [it.item_id for it in await store.load_items()] == ["i1"]
    finally:
        await store.close()
    # The node itself says the recstream role's sessions are TLS; the role is no superuser.
    from cassandra import Unauthorized

    cluster, session = connect(s)
    admin_cluster, admin = connect(
        secure_stack.settings_with(
            RECSTREAM_CASSANDRA_USERNAME="cassandra",
            RECSTREAM_CASSANDRA_PASSWORD_FILE=None,
            RECSTREAM_CASSANDRA_PASSWORD="cassandra",
        )
    )
    try:
        with pytest.raises(Unauthorized):
            session.execute("SELECT username FROM system_views.clients")
        rows = [r for r in admin.execute("SELECT username, ssl_enabled FROM system_views.clients")]
    finally:
        cluster.shutdown()
        admin_cluster.shutdown()
    mine = [r for r in rows if r.username == "recstream"]
    assert mine and all(r.ssl_enabled for r in rows), rows


def test_a_wrong_password_is_refused_with_a_clear_error(secure_stack: SecureStack) -> None:
    bad = secure_stack.settings_with(
        RECSTREAM_CASSANDRA_PASSWORD_FILE=None, RECSTREAM_CASSANDRA_PASSWORD="not-the-password"
    )
    with pytest.raises(StateConnectionError) as err:
        connect(bad)
    msg = str(err.value)
    assert "refused the credentials of user 'recstream'" in msg and "RECSTREAM_CASSANDRA_PASSWORD" in msg
    assert "not-the-password" not in msg
    # The command line says the same in one line, without a traceback or the password.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RECSTREAM_")}
    env.update({k: v for k, v in secure_stack.env.items() if k != "RECSTREAM_CASSANDRA_PASSWORD_FILE"})
    env["RECSTREAM_CASSANDRA_PASSWORD"] = "not-the-password"
    proc = subprocess.run(
        [RECSTREAM, "schema", "apply"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refused the credentials of user 'recstream'" in proc.stderr
    assert "Traceback" not in proc.stderr and "not-the-password" not in proc.stdout + proc.stderr


def test_tls_works_only_with_the_right_ca(
    secure_stack: SecureStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Right CA: a session (also proves the password is right, so the failures below are TLS).
    cluster, session = connect(secure_stack.settings)
    try:
        assert (
            session.execute("SELECT release_version FROM system.local").one().release_version.startswith("5.")
        )
    finally:
        cluster.shutdown()
    # No TLS at all: the node only speaks TLS on its CQL port.
    with pytest.raises(StateConnectionError, match="set RECSTREAM_CASSANDRA_SSL_CAFILE"):
        connect(secure_stack.settings_with(RECSTREAM_CASSANDRA_SSL_CAFILE=None))
    # TLS trusting another CA: the node's certificate is rejected.
    other_ca = ensure_local_tls(tmp_path_factory.mktemp("other-ca")).ca_cert
    with pytest.raises(StateConnectionError, match="certificate is not trusted"):
        connect(secure_stack.settings_with(RECSTREAM_CASSANDRA_SSL_CAFILE=str(other_ca)))


def test_the_node_listens_on_loopback_only(secure_stack: SecureStack) -> None:
    sockets = listening_sockets(server_pid(secure_stack.settings, "cassandra"))
    assert {29042, 27000, 27199} <= {port for _, port in sockets}, sockets
    assert not [s for s in sockets if not is_loopback(s[0])], sockets
