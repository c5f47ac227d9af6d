"""Client regular expressions (idPattern, q ``~=``) that backtrack exponentially are refused (no database)."""

from __future__ import annotations

import pytest

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.query.qlang import QuerySyntaxError, parse
from cityhub.domains.context.query.regex_guard import risky_repetition, unsafe_reason
from cityhub.domains.context.service.query import compile_pattern

CATASTROPHIC = ["(a+)+$", "(a|a)*$", r"^(\w+\W?)*$", "((a+)b)*", "(a?a?)*$", "(a*){3}", "x(?:a|ab)+y"]
EVERYDAY = [
    "^urn:ngsi-ld:Room:.*",
    "urn:ngsi-ld:Vehicle:[0-9]+$",
    "(?i)^ber",
    "(ab)+",
    "(ab){2,}",
    "[(a+)]+",
    r"\(a+\)+",
    "(?P<x>ab)*",
    "(a|b)",
    "(a+)?",
    "a{2}(bc){1}",
    ".*.*x",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_repeated_groups_holding_repetition_or_alternation_are_refused(pattern: str) -> None:
    assert risky_repetition(pattern) is not None
    with pytest.raises(BadRequestData, match="exponential"):
        compile_pattern(pattern)
    with pytest.raises(QuerySyntaxError, match="exponential"):
        parse(f'name~="{pattern}"'.replace("\\", "\\\\"))


@pytest.mark.parametrize("pattern", EVERYDAY)
def test_everyday_patterns_pass(pattern: str) -> None:
    assert unsafe_reason(pattern) is None
    assert compile_pattern(pattern).pattern == pattern


def test_long_patterns_are_refused() -> None:
    assert unsafe_reason("a" * 1001) is not None
    with pytest.raises(BadRequestData, match="longer than"):
        compile_pattern("a" * 1001)
