"""Testing helpers: drive a real deployment from outside, as the tests, bench, eval and soak do.

One of each, used by all of them (as bytewax ships ``testing.py`` and httpx its mock transport):

* :class:`ListCollector` (:mod:`recstream.testing.lists`): reads ``recs.updated`` from a known
  position, indexes the lists by trigger event id and user, waits for a set of trigger ids;
  :func:`read_topic` reads any topic (dead letters, inputs) back from its beginning;
* :class:`EventProducer` / :class:`AsyncEventProducer` (:mod:`recstream.testing.producer`):
  events to their type's topic, keyed by user id, as the schemas' JSON, with flush;
* :class:`Deployment` / :class:`WorkerProcess` (:mod:`recstream.testing.workers`): an isolated
  deployment (own topics, consumer group, keyspace) and ``recstream worker`` subprocesses in it,
  started with an environment and a log file, ready once ``/readyz`` says so, stopped by signal;
* :class:`TcpForwarder` (:mod:`recstream.testing.proxy`): a dependency that is down, then up.

The product (streams, serving, encoders, schemas) never imports this package; it sits below the
lab and above deploy in ``.importlinter``'s layers, and imports neither torch nor the lab.
"""

from recstream.testing.lists import Arrival, ListCollector, Record, decode_list, read_topic
from recstream.testing.producer import (
    DURABLE,
    AsyncEventProducer,
    DeliveryError,
    EventProducer,
    Message,
    event_message,
)
from recstream.testing.proxy import TcpForwarder
from recstream.testing.workers import (
    RECSTREAM,
    Deployment,
    WorkerProcess,
    free_port,
    isolated_env,
    parse_lag,
    parse_rss_kib,
    prepare,
    recstream_environ,
)

__all__ = [
    "DURABLE",
    "RECSTREAM",
    "Arrival",
    "AsyncEventProducer",
    "DeliveryError",
    "Deployment",
    "EventProducer",
    "ListCollector",
    "Message",
    "Record",
    "TcpForwarder",
    "WorkerProcess",
    "decode_list",
    "event_message",
    "free_port",
    "isolated_env",
    "parse_lag",
    "parse_rss_kib",
    "prepare",
    "read_topic",
    "recstream_environ",
]
