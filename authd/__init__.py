"""authd: an authoritative DNS server.

The package has three rings: a pure core (every module directly under
``authd``), the adapters in ``authd.adapters`` (Twisted, watchdog, every disk
write, thread and GC toggle), and the command line in ``authd.cli``.  The core
imports none of those and writes no file; ``tests/test_core_purity.py``
enforces it.  README.md's "Design" names every module.
"""

__version__ = "0.1.0"
