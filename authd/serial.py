"""Zone serials: RFC 1982 comparison, the serial policies, and why a step is refused.

Owns the one text that explains a serial step that is not an increase, so the
loader (which refuses the reload) and the linter (which predicts the refusal)
say the same thing.  Pure: the policies take ``now`` as a number.
"""

from __future__ import annotations

import datetime

import dns.serial

from authd.config import SerialPolicy

SERIAL_SPACE = 2**32
HALF_SPACE = 2**31  # RFC 1982 section 3.2: steps of this size or more are not increases


def increased(old: int, new: int) -> bool:
    """Whether *new* is greater than *old* in RFC 1982 serial arithmetic."""
    return bool(dns.serial.Serial(new) > dns.serial.Serial(old))


def step_problem(old: int, new: int) -> str | None:
    """Why going from *old* to *new* is not an RFC 1982 increase, or None if it is.

    The text follows the new serial: ``f"serial {new} {problem}"``.
    """
    if increased(old, new):
        return None
    step = (new - old) % SERIAL_SPACE
    if step == 0:
        return "not increased"
    if step == HALF_SPACE:
        return (
            f"is exactly 2^31 away from {old}, which RFC 1982 leaves undefined "
            "(neither greater nor smaller)"
        )
    if new > old:
        return (
            f"is {new - old} above {old}: a step of 2^31 or more, which RFC 1982 reads "
            "as a decrease (serials compare within half the 32-bit space); raise it in "
            "steps smaller than 2^31, letting secondaries catch up between them"
        )
    return f"decreased from {old} (RFC 1982)"


def policy_serial(policy: SerialPolicy, old: int, now: float) -> int:
    """The serial authd serves after a content change under *policy*.

    Always an RFC 1982 increase over *old*, so secondaries follow.
    """
    if policy is SerialPolicy.UNIXTIME:
        candidate = int(now) % SERIAL_SPACE
    elif policy is SerialPolicy.DATESERIAL:
        day = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
        candidate = (day.year * 10000 + day.month * 100 + day.day) * 100
    else:
        candidate = old + 1
    if not increased(old, candidate % SERIAL_SPACE):
        candidate = old + 1
    serial = candidate % SERIAL_SPACE
    if serial == 0:
        # Serial 0 is legal but read as "unset" by many tools (the linter's
        # soa-serial-zero); BIND's own increments step over it the same way.
        serial = 1 if increased(old, 1) else (old + 1) % SERIAL_SPACE
    return serial
