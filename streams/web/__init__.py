"""The worker's operations web surface: the live ops page, its JSON endpoints and the probes.

``window`` (sliding-window throughput and percentiles) and ``summary`` (the ops page's JSON)
are pure; ``readiness`` checks Kafka, Cassandra and Triton; ``routes`` registers the pages on
the Faust app. The page itself (``ops.html``, ``ops.js``, ``ops.css``) ships in this package
and fetches nothing outside the worker.
"""
