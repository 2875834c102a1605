"""authd: an authoritative DNS server.

The package has three rings: a pure core (every module directly under ``authd``
except ``cli``), Twisted adapters in ``authd.adapters``, and the command line in
``authd.cli``.  The core never imports Twisted or watchdog; a test enforces it.
"""

__version__ = "0.1.0"
