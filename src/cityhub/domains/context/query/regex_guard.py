"""Refusing client regular expressions that backtrack catastrophically (ReDoS): ``idPattern`` and ``q ~=``.

Python's ``re`` backtracks, and holds the GIL while it does: one pattern such as ``(a+)+$`` or ``(a|a)*$``
over a 30-character entity id takes minutes and stalls every request of the process. The exponential
shapes are a repeated group that itself holds a repetition (``*``, ``+``, ``?``, ``{m,n}``) or an
alternation ``|``; such patterns are refused. Real NGSI-LD patterns (``^urn:ngsi-ld:Room:.*``,
``urn:ngsi-ld:Vehicle:[0-9]+$``, ``(?i)^ber``) never need one. Polynomial shapes (``.*.*x``) stay allowed:
their cost is bounded by the short inputs and the pattern length limit.
"""

from __future__ import annotations

import re

MAX_PATTERN_LENGTH = 1000
_BRACES = re.compile(r"\{([0-9]*)(,?)([0-9]*)\}")


def risky_repetition(source: str) -> int | None:
    """The offset of a repeated group holding a repetition or an alternation, or None when there is none."""
    groups: list[tuple[int, bool]] = []  # (offset of its '(', whether it holds a repetition or '|')
    position = 0
    while position < len(source):
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            position = _class_end(source, position)
            continue
        if char == "(":
            groups.append((position, False))
            position += 2 if source.startswith("?", position + 1) else 1  # (?:, (?i), (?P<...>: no quantifier
            continue
        if char == ")" and groups:
            opened, holds = groups.pop()
            repeated = _repeats(source, position + 1)
            if holds and repeated:
                return opened
            _mark(groups, holds or _quantified(source, position + 1))
        elif char == "|" or _quantified(source, position):
            _mark(groups, True)
        position += 1
    return None


def _mark(groups: list[tuple[int, bool]], holds: bool) -> None:
    if groups and holds:
        groups[-1] = (groups[-1][0], True)


def _quantified(source: str, position: int) -> bool:
    """A quantifier of any count starts at ``position``."""
    braces = _BRACES.match(source, position)
    return source.startswith(("*", "+", "?"), position) or (
        braces is not None and braces.group(1, 3) != ("", "")
    )


def _repeats(source: str, position: int) -> bool:
    """A quantifier allowing more than one repetition starts at ``position``."""
    if source.startswith(("*", "+"), position):
        return True
    braces = _BRACES.match(source, position)
    if braces is None:
        return False
    low, comma, high = braces.groups()
    return (bool(comma) and (not high or int(high) > 1)) or (not comma and int(low or "0") > 1)


def _class_end(source: str, position: int) -> int:
    """The offset after the character class opened at ``position`` (``]`` first in it is a literal)."""
    position += 1
    if source.startswith("^", position):
        position += 1
    if source.startswith("]", position):
        position += 1
    while position < len(source) and source[position] != "]":
        position += 2 if source[position] == "\\" else 1
    return position + 1


def unsafe_reason(source: str) -> str | None:
    """Why a client's pattern is refused, or None when it may be run."""
    if len(source) > MAX_PATTERN_LENGTH:
        return f"the regular expression is longer than {MAX_PATTERN_LENGTH} characters"
    offset = risky_repetition(source)
    if offset is not None:
        return (
            f"the group at position {offset} is repeated and holds a repetition or '|' itself; "
            "such patterns can take exponential time"
        )
    return None
