"""Twisted and watchdog adapters: the only place those libraries appear.

Each adapter turns I/O into calls of the pure core (``authd.query.handle``)
and the core's values back into I/O and log events.
"""
