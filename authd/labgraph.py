"""The lab's delegation tree as Graphviz ``dot`` source (``authd lab graph``).

Owns the picture's content: a box per zone, an ellipse per server (its name
and address), parent -> child delegation edges, zone -> server edges (dashed
for a secondary), and in red the delegations a ``labcheck`` finding names.
In a signed lab each delegation carries its DS; with the chain of trust
checked (``authd lab check --graph``), a secure link is drawn green and
marked "secure", a bogus one red with why.
Invariant: pure text out; the command runs ``dot`` to draw it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dns.name

from authd.lab import Lab
from authd.labchain import State, Verdict
from authd.labcheck import Finding


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _zone_id(zone: dns.name.Name) -> str:
    return _q("zone " + zone.to_text())


def _chain_style(verdict: Verdict) -> str:
    if verdict.state is State.SECURE:
        return 'label="NS + DS  secure", color=darkgreen, fontcolor=darkgreen, penwidth=2'
    if verdict.state is State.INSECURE:
        return 'label="NS, no DS  insecure", style=dotted'
    problem = verdict.problem.value if verdict.problem is not None else "bogus"
    return f"label={_q('NS + DS  BOGUS: ' + problem)}, color=red, fontcolor=red, penwidth=2"


def dot_source(
    lab: Lab,
    findings: Iterable[Finding] = (),
    chain: Mapping[dns.name.Name, Verdict | None] | None = None,
) -> str:
    """The dot graph of *lab*, with the zones of *findings* drawn in red and,
    with *chain* (each zone's chain-of-trust verdict), its links marked."""
    chain = chain or {}
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
        verdict = chain.get(zone)
        if zone == dns.name.root and lab.signed:
            label += "\n(trust anchor)"
        bogus = verdict is not None and verdict.state is State.BOGUS
        colour = ", color=red, fontcolor=red" if zone in bad or bogus else ""
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
            verdict = chain.get(zone)
            if verdict is not None and verdict.state is not State.SECURE:
                style = _chain_style(verdict)
            elif zone in bad:
                label = _q("NS  BROKEN: " + ", ".join(sorted(set(bad[zone]))))
                style = f"label={label}, color=red, fontcolor=red, penwidth=2"
            elif verdict is not None:
                style = _chain_style(verdict)
            else:
                style = 'label="NS + DS"' if lab.signed else 'label="NS"'
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
