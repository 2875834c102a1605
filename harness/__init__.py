"""The lab bench shared by tests/ and bench/: real servers on loopback and generated zones.

- ``harness.peers``: start NSD, Knot, BIND and authd on 127.0.0.1 with
  throw-away configurations, free ports, captured logs and a clean stop.
- ``harness.zonegen``: a realistic zone of exactly N records.
- ``harness.querymix``: a zone whose every name is catalogued, and a seeded,
  Zipf-weighted query mix drawn from that catalogue.

Neither tests/ nor bench/ imports the other; both import this package, found
from the repository root (pytest's ``pythonpath = ["."]``, ``python -m bench.X``).
It is not part of the installed ``authd`` distribution.
"""
