"""The lab's delegation tree as Graphviz ``dot`` source (``authd lab graph``).

Owns the picture's content: a box per zone, an ellipse per server (its name
and address), parent -> child delegation edges, zone -> server edges (dashed
for a secondary), and in red the delegations a ``labcheck`` finding names.
Invariant: pure text out; the command runs ``dot`` to draw it.
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.name

from authd.lab import Lab
from authd.labcheck import Finding


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _zone_id(zone: dns.name.Name) -> str:
    return _q("zone " + zone.to_text())


def dot_source(lab: Lab, findings: Iterable[Finding] = ()) -> str:
    """The dot graph of *lab*, with the zones of *findings* drawn in red."""
    bad: dict[dns.name.Name, list[str]] = {}
    for f in findings:
        bad.setdefault(f.zone, []).append(f.scenario)
    zones = lab.zones()
    lines = [
        "digraph lab {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];',
    ]
    for zone in sorted(zones):
        label = "root ." if zone == dns.name.root else zone.to_text()
        colour = ", color=red, fontcolor=red" if zone in bad else ""
        lines.append(f"  {_zone_id(zone)} [shape=box, label={_q(label)}{colour}];")
    for s in lab.servers:
        label = _q(f"{s.host}\n{s.address}")
        lines.append(
            f"  {_q('server ' + s.name)} [shape=ellipse, label={label}, "
            "style=filled, fillcolor=lightgrey];"
        )
    for zone in sorted(zones):
        if zone != dns.name.root:
            parent = max((z for z in zones if zone.is_subdomain(z) and z != zone), key=len)
            if zone in bad:
                label = _q("NS  BROKEN: " + ", ".join(sorted(set(bad[zone]))))
                style = f"label={label}, color=red, fontcolor=red, penwidth=2"
            else:
                style = 'label="NS"'
            lines.append(f"  {_zone_id(parent)} -> {_zone_id(zone)} [{style}];")
        for s in zones[zone]:
            z = next(x for x in s.zones if x.name == zone)
            kind = "primary" if z.primary is None else f"secondary of {z.primary}"
            dash = "" if z.primary is None else ", style=dashed"
            lines.append(
                f"  {_zone_id(zone)} -> {_q('server ' + s.name)} "
                f"[label={_q(kind)}, arrowhead=none{dash}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
