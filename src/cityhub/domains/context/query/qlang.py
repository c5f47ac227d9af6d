"""The NGSI-LD query language ``q`` (ETSI GS CIM 009 clause 4.9): parse to an AST, evaluate over entities.

The AST is plain frozen dataclasses so that the broker can cache one parse per request or subscription and
a later SQL compiler can walk the same tree; :func:`evaluate` is the reference semantics it must match.

Grammar accepted (clause 4.9 ABNF, with the extensions marked *)::

    Query        = Disjunction
    Disjunction  = Conjunction *("|" Conjunction)        ; AND binds tighter than OR
    Conjunction  = Unit *(";" Unit)
    Unit         = "(" Disjunction ")" / "!" Attribute* / Attribute [Operator Operand]
    Attribute    = AttrName "{" [EntityType *("," EntityType) ":"] Attribute "}"     ; linked entity
                 / AttrName *("." AttrName) ["[" (AttrName *("." AttrName) / "*") "]"]
    Operand      = Value / Value ".." Value / Value 1*("," Value) / RegExp
    Value        = Number / quotedStr / dateTime / date / time / true / false / URI / bare word*

``!attr`` (attribute absent) is an extension that Stellio accepts. Bare words (``gender==Male``, clause 4.9
EXAMPLE 12) are accepted wherever the spec allows an unquoted URI: with ``==``/``!=`` only. An unquoted RegExp
runs to the next ``;``, ``|`` or ``)`` outside its own groups; quote it (JSON string) otherwise. Whitespace is
not part of the grammar and is refused outside quoted strings. Percent-decoding the query string is the
caller's job (a raw ``+`` in a URL decodes to a space, which is then refused with its position).

Evaluation (clause 4.9 unless marked as a choice):

- Every operator needs the target element: a missing attribute, sub-attribute or compound member matches
  nothing, ``!=`` and ``!~=`` included ("a matching entity shall contain the target element").
- A multi-instance attribute (several datasetIds) matches when any instance does, whatever the operator.
- An array target value: ``==``, ordering and ``~=`` need one matching element; ``!=`` and ``!~=`` need every
  element to differ ("is not included in the target value"), so an empty array is unequal to everything.
- Different data types never match, except with ``!=``, where they "shall be considered unequal": ``"5"``
  is not ``5``, and ``serial!=5`` holds for ``"5"``. Booleans are not numbers. Dates, times and date-times
  compare in time order with target strings of the same ISO 8601 shape (choice: a date is not a date-time;
  a value without a zone is UTC).
- A Relationship compares its object(s) with ``==``/``!=`` only; a GeoProperty is not comparable at all
  (choice: every operator is false, only its existence and members like ``location[type]`` can be tested).
- ``~=`` uses Python's ``re.search`` (the spec names POSIX regular expressions; the common subset agrees).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeAlias

from cityhub.domains.context.query.regex_guard import MAX_PATTERN_LENGTH, unsafe_reason

__all__ = [
    "MAX_PATTERN_LENGTH",
    "And",
    "AttributePath",
    "Boolean",
    "Comparison",
    "Date",
    "DateTime",
    "EntityLookup",
    "Exists",
    "Expr",
    "LinkedPath",
    "Number",
    "Op",
    "Operand",
    "Or",
    "Pattern",
    "QuerySyntaxError",
    "Range",
    "Resolver",
    "Scalar",
    "Text",
    "Time",
    "ValueList",
    "ValuePath",
    "attributes_referenced",
    "evaluate",
    "parse",
    "to_q",
]

MAX_NESTING = (
    32  # parentheses and linked-entity braces; deeper input is refused rather than risking recursion
)
MAX_LINK_LOOKUPS = (
    256  # entity lookups one evaluation may spend following linked-entity paths (fan-out^depth)
)

# Members of an attribute that are data about it rather than sub-attributes; `temperature.observedAt` (clause
# 4.9 EXAMPLE 8) addresses them. They are core terms, looked up as written when the resolver's name misses.
METADATA_MEMBERS = frozenset({"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "deletedAt"})
_CORE_PREFIX = "https://uri.etsi.org/ngsi-ld/"


class QuerySyntaxError(ValueError):
    """A ``q`` that does not follow the grammar; the broker answers it as NGSI-LD ``BadRequestData``.

    ``position`` is the 0-based offset into the (already percent-decoded) query where the problem was found.
    """

    def __init__(self, message: str, position: int, query: str) -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position
        self.query = query


# --- AST ----------------------------------------------------------------------------------------------------


class Op(StrEnum):
    """The comparison operators, spelled as in the query."""

    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    MATCH = "~="
    NOT_MATCH = "!~="


@dataclass(frozen=True)
class ValuePath:
    """``attr.sub.sub[member.member]``: names down the attribute graph, then an optional path into the value.

    ``trailing`` is ``None`` without brackets; ``("*",)`` is the any-language form of a LanguageProperty.
    """

    names: tuple[str, ...]
    trailing: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LinkedPath:
    """``rel{Type1,Type2:path}``: follow Relationship ``rel``, apply ``path`` to the entities it points at."""

    relationship: str
    entity_types: tuple[str, ...]
    target: AttributePath


AttributePath: TypeAlias = ValuePath | LinkedPath


@dataclass(frozen=True)
class Number:
    value: int | float


@dataclass(frozen=True)
class Text:
    """A string; ``quoted=False`` for an unquoted URI or bare word (only usable with ``==`` and ``!=``)."""

    value: str
    quoted: bool = True


@dataclass(frozen=True)
class Boolean:
    value: bool


@dataclass(frozen=True)
class DateTime:
    """An instant, always timezone-aware UTC (a literal without an offset is taken as UTC, clause 4.6.3)."""

    value: datetime


@dataclass(frozen=True)
class Date:
    value: date


@dataclass(frozen=True)
class Time:
    """A time of day in UTC, without tzinfo (``12:00:00`` and ``12:00:00Z`` are the same literal)."""

    value: time


Scalar: TypeAlias = Number | Text | Boolean | DateTime | Date | Time


@dataclass(frozen=True)
class Range:
    """``low..high``, both ends included."""

    low: Scalar
    high: Scalar


@dataclass(frozen=True)
class ValueList:
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Pattern:
    """A regular expression; checked at parse time, compiled once per process (see :func:`_regex`)."""

    source: str


Operand: TypeAlias = Scalar | Range | ValueList | Pattern


@dataclass(frozen=True)
class Exists:
    """A bare attribute path: the entity has it (or, ``negated``, has not)."""

    path: AttributePath
    negated: bool = False


@dataclass(frozen=True)
class Comparison:
    path: AttributePath
    op: Op
    operand: Operand


@dataclass(frozen=True)
class And:
    """Two or more terms that must all hold; never directly nests another ``And`` (the parser flattens)."""

    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Two or more terms of which one must hold; never directly nests another ``Or``."""

    terms: tuple[Expr, ...]


Expr: TypeAlias = Exists | Comparison | And | Or

Resolver: TypeAlias = Callable[[str], str]
EntityLookup: TypeAlias = Callable[[str], Mapping[str, Any] | None]

# --- lexical rules ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
_DATETIME = re.compile(rf"{_DATE.pattern}T{_TIME}(?:Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)?")
_TIME_OF_DAY = re.compile(rf"{_TIME}Z?")
_OPERATORS = tuple(Op(symbol) for symbol in ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<"))
_TERM_END = ";|)"
_VALUE_END = ';|(),"'
_ORDERING = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})


def _is_letter(char: str) -> bool:
    return unicodedata.category(char).startswith("L")


def _is_term_char(char: str) -> bool:
    return char == "_" or unicodedata.category(char)[0] in "LN"


def _parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time as aware UTC, or None; naive values are taken as UTC (as stored by brokers)."""
    if not _DATETIME.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _parse_time(text: str) -> time | None:
    if not _TIME_OF_DAY.fullmatch(text):
        return None
    try:
        return time.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


# --- parser -------------------------------------------------------------------------------------------------


def parse(q: str) -> Expr:
    """The AST of a (percent-decoded) ``q``; raises :class:`QuerySyntaxError` naming the position."""
    return _Parser(q).parse()


class _Parser:
    """Recursive descent over the characters; every error carries the offset where it was noticed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # helpers

    def error(self, message: str, position: int | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.pos if position is None else position, self.text)

    def found(self, position: int | None = None) -> str:
        at = self.pos if position is None else position
        return "the end of the query" if at >= len(self.text) else repr(self.text[at])

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str, what: str) -> None:
        if not self.accept(token):
            raise self.error(f"expected {what}, found {self.found()}")

    def term_ends(self) -> bool:
        return self.at_end() or self.text[self.pos] in _TERM_END

    def enter(self, opened_at: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"nesting deeper than {MAX_NESTING} levels", opened_at)

    # logical structure

    def parse(self) -> Expr:
        if not self.text:
            raise self.error("the query is empty", 0)
        expr = self.disjunction()
        if not self.at_end():
            if self.text[self.pos] == ")":
                raise self.error("')' without a matching '('")
            raise self.error(f"unexpected {self.found()}")
        return expr

    def disjunction(self) -> Expr:
        terms = [self.conjunction()]
        while self.accept("|"):
            terms.append(self.conjunction())
        return _combine(Or, terms)

    def conjunction(self) -> Expr:
        terms = [self.unit()]
        while self.accept(";"):
            terms.append(self.unit())
        return _combine(And, terms)

    def unit(self) -> Expr:
        if self.term_ends():
            raise self.error(f"expected a query term, found {self.found()}")
        if self.peek("("):
            opened_at = self.pos
            self.pos += 1
            self.enter(opened_at)
            expr = self.disjunction()
            if not self.accept(")"):
                if self.at_end():
                    raise self.error(f"the '(' at position {opened_at} is never closed")
                raise self.error(f"expected ')' or a logical operator, found {self.found()}")
            self.depth -= 1
            return expr
        if self.peek("!") and not self.peek("!=") and not self.peek("!~="):
            self.pos += 1
            return Exists(self.attribute(), negated=True)
        path = self.attribute()
        if self.term_ends():
            return Exists(path)
        op = self.operator()
        operand = self.pattern() if op in (Op.MATCH, Op.NOT_MATCH) else self.operand(op)
        if not self.term_ends():
            raise self.error(f"unexpected {self.found()} after the value")
        return Comparison(path, op, operand)

    # attribute paths

    def name(self, what: str) -> str:
        start = self.pos
        if self.at_end() or not _is_letter(self.text[self.pos]):
            raise self.error(f"expected {what}, found {self.found()}")
        self.pos += 1
        while not self.at_end() and _is_term_char(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def attribute(self) -> AttributePath:
        first = self.name("an attribute name")
        if self.peek("{"):
            return self.linked(first)
        names = [first]
        while self.accept("."):
            names.append(self.name("an attribute name after '.'"))
        trailing: tuple[str, ...] | None = None
        if self.accept("["):
            trailing = ("*",) if self.accept("*") else self.dotted("a member name inside '[ ]'")
            self.expect("]", "']' closing the path into the value")
        return ValuePath(tuple(names), trailing)

    def dotted(self, what: str) -> tuple[str, ...]:
        names = [self.name(what)]
        while self.accept("."):
            names.append(self.name(what))
        return tuple(names)

    def linked(self, relationship: str) -> LinkedPath:
        opened_at = self.pos
        self.pos += 1
        self.enter(opened_at)
        start = self.pos
        first = self.name("an attribute or entity type name after '{'")
        types: list[str] = []
        if self.peek(",") or self.peek(":"):
            types.append(first)
            while self.accept(","):
                types.append(self.name("an entity type name"))
            self.expect(":", "':' after the entity types")
        else:
            self.pos = start
        target = self.attribute()
        self.expect("}", f"'}}' closing the '{{' at position {opened_at}")
        self.depth -= 1
        return LinkedPath(relationship, tuple(types), target)

    # operators and values

    def operator(self) -> Op:
        for op in _OPERATORS:
            if self.accept(op.value):
                return op
        if self.peek("="):
            raise self.error("unknown operator '='; equality is written '=='")
        operators = ", ".join(op.value for op in Op)
        raise self.error(f"expected an operator ({operators}) or the end of the term, found {self.found()}")

    def operand(self, op: Op) -> Scalar | Range | ValueList:
        start = self.pos
        first = self.scalar()
        result: Scalar | Range | ValueList
        if self.accept(".."):
            second_at = self.pos
            result = Range(first, self.scalar())
            _check_range(result, self.error, start, second_at)
        elif self.peek(","):
            values = [first]
            while self.accept(","):
                values.append(self.scalar())
            result = ValueList(tuple(values))
        else:
            result = first
        if op in _ORDERING:
            _check_ordering_operand(op, result, self.error, start)
        return result

    def scalar(self) -> Scalar:
        if self.at_end() or self.text[self.pos] in _TERM_END + ",":
            raise self.error(f"expected a value, found {self.found()}")
        if self.peek('"'):
            return Text(self.quoted())
        start = self.pos
        while not self.at_end() and self.text[self.pos] not in _VALUE_END and not self.peek(".."):
            if self.text[self.pos].isspace() or not self.text[self.pos].isprintable():
                raise self.error(f'unexpected {self.found()} in a value (quote strings: "...")')
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expected a value, found {self.found()}")
        return self.classify(self.text[start : self.pos], start)

    def classify(self, raw: str, start: int) -> Scalar:
        """Type an unquoted token: JSON literal, number, date-time, date, time, else URI or bare word."""
        if raw in ("true", "false"):
            return Boolean(raw == "true")
        if _NUMBER.fullmatch(raw):
            number = json.loads(raw)
            if isinstance(number, float) and number in (float("inf"), float("-inf")):
                raise self.error(f"the number {raw} is out of range", start)
            return Number(number)
        for shape, parser, literal, what in _TEMPORAL_LITERALS:
            if shape.fullmatch(raw):
                value = parser(raw)
                if value is None:
                    raise self.error(f"{raw!r} is not a valid {what}", start)
                return literal(value)
        if raw[0] == "_" or not _is_term_char(raw[0]):  # a URI starts with its scheme, a word with a letter
            raise self.error(f"expected a value, found {raw[0]!r}", start)
        return Text(raw, quoted=False)

    def quoted(self) -> str:
        """A JSON string (RFC 8259 section 7, so ``\\"`` and ``\\u00e9`` escapes work)."""
        start = self.pos
        self.pos += 1
        while not self.at_end():
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                raw = self.text[start : self.pos]
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as error:
                    raise self.error(f"invalid string: {error.msg}", start + error.pos) from None
                assert isinstance(value, str)
                return value
        raise self.error("the string is never closed (a '\"' is missing)", start)

    def pattern(self) -> Pattern:
        start = self.pos
        if self.peek('"'):
            source = self.quoted()
        else:
            source = self.unquoted_pattern()
            if not source:
                raise self.error(f"expected a regular expression, found {self.found()}")
        refused = unsafe_reason(source)
        if refused is not None:
            raise self.error(refused, start)
        try:
            _regex(source)
        except re.error as error:
            raise self.error(f"invalid regular expression: {error.msg}", start) from None
        return Pattern(source)

    def unquoted_pattern(self) -> str:
        """Up to the ``;``, ``|`` or ``)`` ending the term, skipping those inside the regex's own groups."""
        start, depth, in_class = self.pos, 0, False
        while not self.at_end():
            char = self.text[self.pos]
            if char.isspace() or not char.isprintable():
                raise self.error(f'unexpected {self.found()} in a regular expression (quote it: "...")')
            if char == "\\":
                self.pos = min(self.pos + 2, len(self.text))
                continue
            if in_class:
                in_class = char != "]"
            elif char == "[":
                in_class = True
            elif char == "(":
                depth += 1
            elif char == ")" and depth:
                depth -= 1
            elif char in _TERM_END and not depth:
                break
            self.pos += 1
        return self.text[start : self.pos]


_TEMPORAL_LITERALS: tuple[tuple[re.Pattern[str], Callable[[str], Any], Callable[[Any], Scalar], str], ...] = (
    (_DATETIME, _parse_datetime, DateTime, "date-time"),
    (_DATE, _parse_date, Date, "date"),
    (_TIME_OF_DAY, _parse_time, Time, "time"),
)
ErrorFactory: TypeAlias = Callable[[str, int | None], QuerySyntaxError]
_COMPARABLE = (Number, DateTime, Date, Time)


def _is_comparable(value: Scalar) -> bool:
    """ComparableValue of the grammar: ordering makes sense (numbers, quoted strings, dates and times)."""
    return isinstance(value, _COMPARABLE) or (isinstance(value, Text) and value.quoted)


def _check_range(value: Range, error: ErrorFactory, start: int, second_at: int) -> None:
    for bound, at in ((value.low, start), (value.high, second_at)):
        if not _is_comparable(bound):
            raise error("a range bound must be a number, quoted string, date, time or date-time", at)
    if type(value.low) is not type(value.high):
        raise error("both bounds of a range must be of the same kind", second_at)


def _check_ordering_operand(
    op: Op, operand: Scalar | Range | ValueList, error: ErrorFactory, at: int
) -> None:
    if isinstance(operand, Range | ValueList):
        raise error(f"'{op}' takes a single value; ranges and lists work with == and != only", at)
    if isinstance(operand, Boolean):
        raise error(f"true and false cannot be compared with '{op}'", at)
    if isinstance(operand, Text) and not operand.quoted:
        raise error(f"the unquoted value {operand.value!r} works with == and != only; quote strings", at)


def _combine(kind: type[And] | type[Or], terms: list[Expr]) -> Expr:
    """One term as itself; several flattened into one node so that ``(a;b);c`` and ``a;(b;c)`` are equal."""
    if len(terms) == 1:
        return terms[0]
    flat: list[Expr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, kind) else (term,))
    return kind(tuple(flat))


@lru_cache(maxsize=512)
def _regex(source: str) -> re.Pattern[str]:
    """Compiled once per distinct pattern: a subscription's pattern is matched on every change."""
    return re.compile(source)


# --- unparsing ----------------------------------------------------------------------------------------------


def to_q(expr: Expr) -> str:
    """The query text of an AST, such that ``parse(to_q(e)) == e`` for every parsed ``e``."""
    match expr:
        case Or(terms):
            return "|".join(f"({to_q(term)})" if isinstance(term, Or) else to_q(term) for term in terms)
        case And(terms):
            return ";".join(f"({to_q(term)})" if isinstance(term, And | Or) else to_q(term) for term in terms)
        case Exists(path, negated):
            return ("!" if negated else "") + _path_text(path)
        case Comparison(path, op, operand):
            return f"{_path_text(path)}{op.value}{_operand_text(operand)}"
    raise TypeError(f"not a query expression: {expr!r}")


def _path_text(path: AttributePath) -> str:
    if isinstance(path, LinkedPath):
        hint = f"{','.join(path.entity_types)}:" if path.entity_types else ""
        return f"{path.relationship}{{{hint}{_path_text(path.target)}}}"
    trailing = f"[{'.'.join(path.trailing)}]" if path.trailing is not None else ""
    return ".".join(path.names) + trailing


def _operand_text(operand: Operand) -> str:
    match operand:
        case Range(low, high):
            return f"{_operand_text(low)}..{_operand_text(high)}"
        case ValueList(values):
            return ",".join(_operand_text(value) for value in values)
        case Pattern(source):
            return json.dumps(source, ensure_ascii=False)
        case Text(value, quoted):
            return json.dumps(value, ensure_ascii=False) if quoted else value
        case Boolean(value):
            return "true" if value else "false"
        case Number(value):
            return json.dumps(value)
        case DateTime(value):
            return value.isoformat().replace("+00:00", "Z")
        case Date(value) | Time(value):
            return value.isoformat()
    raise TypeError(f"not an operand: {operand!r}")


# --- analysis -----------------------------------------------------------------------------------------------


def attributes_referenced(expr: Expr, attribute_resolver: Resolver | None = None) -> set[str]:
    """The top-level attributes the query reads, as the resolver names them (subscriptions watch these).

    A linked path counts its Relationship only: the attributes of linked entities belong to other entities.
    """
    resolve = attribute_resolver or _identity
    return {resolve(_top_name(term.path)) for term in _terms(expr)}


def _terms(expr: Expr) -> Iterator[Exists | Comparison]:
    if isinstance(expr, And | Or):
        for term in expr.terms:
            yield from _terms(term)
    else:
        yield expr


def _top_name(path: AttributePath) -> str:
    return path.relationship if isinstance(path, LinkedPath) else path.names[0]


def _identity(name: str) -> str:
    return name


# --- evaluation ---------------------------------------------------------------------------------------------


def evaluate(
    expr: Expr,
    entity: Mapping[str, Any],
    *,
    attribute_resolver: Resolver | None = None,
    entity_lookup: EntityLookup | None = None,
) -> bool:
    """Whether an entity in NGSI-LD normalized form matches the query.

    ``attribute_resolver`` maps each attribute, sub-attribute and entity-type name of the query to the key
    used in ``entity`` (e.g. expands ``temperature`` to its IRI with the request's @context); the default
    keeps names as written. ``entity_lookup`` returns a linked entity by id for ``rel{...}`` paths; without
    it they never match.
    """
    return _Evaluator(attribute_resolver or _identity, entity_lookup).holds(expr, entity)


class _Kind(StrEnum):
    VALUE = "value"
    OBJECT = "object"  # a Relationship's target: only == and != apply (clause 4.9)
    GEO = "geo"  # a GeoProperty's value: not comparable, only its existence can be tested


@dataclass(frozen=True)
class _Target:
    """One value the query term is evaluated against (one per instance of a multi-instance attribute)."""

    kind: _Kind
    value: Any


@dataclass
class _Evaluator:
    resolve: Resolver
    lookup: EntityLookup | None
    lookups_left: int = field(default=MAX_LINK_LOOKUPS)

    def holds(self, expr: Expr, entity: Mapping[str, Any]) -> bool:
        match expr:
            case And(terms):
                return all(self.holds(term, entity) for term in terms)
            case Or(terms):
                return any(self.holds(term, entity) for term in terms)
            case Exists(path, negated):
                return bool(self.targets(path, entity)) != negated
            case Comparison(path, op, operand):
                return any(_target_holds(op, operand, target) for target in self.targets(path, entity))
        raise TypeError(f"not a query expression: {expr!r}")

    def targets(self, path: AttributePath, entity: Mapping[str, Any]) -> list[_Target]:
        if isinstance(path, LinkedPath):
            return self.linked_targets(path, entity)
        elements = _instances(entity.get(self.resolve(path.names[0])))
        for index, name in enumerate(path.names[1:], start=2):
            if index == len(path.names) and name in METADATA_MEMBERS and path.trailing is None:
                metadata = self.metadata_targets(elements, name)
                if metadata:
                    return metadata
            elements = [sub for element in elements for sub in _instances(self.member(element, name))]
        return [target for element in elements for target in _element_targets(element, path.trailing)]

    def member(self, element: Mapping[str, Any], name: str) -> Any:
        found = element.get(self.resolve(name))
        if found is None and name in METADATA_MEMBERS:
            found = element.get(name)
        return found

    def metadata_targets(self, elements: list[Mapping[str, Any]], name: str) -> list[_Target]:
        values = (self.member(element, name) for element in elements)
        return [_Target(_Kind.VALUE, _unwrap(value)) for value in values if _is_scalar(_unwrap(value))]

    def linked_targets(self, path: LinkedPath, entity: Mapping[str, Any]) -> list[_Target]:
        """Follow the Relationship's object(s); each costs one lookup from a per-evaluation budget."""
        found: list[_Target] = []
        wanted_types = {self.resolve(name) for name in path.entity_types}
        for uri in _object_uris(_instances(entity.get(self.resolve(path.relationship)))):
            if self.lookup is None or self.lookups_left <= 0:
                break
            self.lookups_left -= 1
            linked = self.lookup(uri)
            if linked is not None and (not wanted_types or wanted_types & _entity_types(linked)):
                found.extend(self.targets(path.target, linked))
        return found


def _instances(attribute: Any) -> list[Mapping[str, Any]]:
    """An attribute's instances: one object, or a list of them (multi-instance attributes with datasetId)."""
    if isinstance(attribute, Mapping):
        return [attribute]
    if isinstance(attribute, list):
        return [item for item in attribute if isinstance(item, Mapping)]
    return []


def _attribute_type(element: Mapping[str, Any]) -> str:
    declared = element.get("type")
    if isinstance(declared, list) and len(declared) == 1:
        declared = declared[0]
    if isinstance(declared, str):
        return declared.removeprefix(_CORE_PREFIX)
    for member, kind in (("object", "Relationship"), ("languageMap", "LanguageProperty")):
        if member in element:
            return kind
    return "Property"


_VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "ListRelationship": "objectList",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}


def _element_targets(element: Mapping[str, Any], trailing: tuple[str, ...] | None) -> list[_Target]:
    """The value(s) a query term reads from one attribute instance (clause 4.9 "target value")."""
    kind = _attribute_type(element)
    value = element.get(_VALUE_MEMBER.get(kind, "value"))
    if value is None:
        return []
    if kind in ("Relationship", "ListRelationship"):
        objects = _object_uris([element])
        return (
            [_Target(_Kind.OBJECT, objects if isinstance(value, list) else value)] if trailing is None else []
        )
    if kind == "LanguageProperty":
        return _language_targets(value, trailing)
    if trailing is not None:
        found = _member_path(value, trailing)
        return [] if found is _UNDEFINED else [_Target(_Kind.VALUE, _unwrap(found))]
    return [_Target(_Kind.GEO if kind == "GeoProperty" else _Kind.VALUE, _unwrap(value))]


def _language_targets(language_map: Any, trailing: tuple[str, ...] | None) -> list[_Target]:
    """``name[fr]`` reads one language; ``name`` and ``name[*]`` read all of them as one array.

    One array rather than one target per language, so that ``!=`` means "in no language" (clause 4.9 Unequal).
    """
    if not isinstance(language_map, Mapping):
        return []
    if trailing is None or trailing == ("*",):
        values: list[Any] = []
        for value in language_map.values():
            values.extend(value if isinstance(value, list) else [value])
        return [_Target(_Kind.VALUE, values)]
    if len(trailing) == 1 and trailing[0] in language_map:
        return [_Target(_Kind.VALUE, language_map[trailing[0]])]
    return []


_UNDEFINED = object()


def _member_path(value: Any, names: tuple[str, ...]) -> Any:
    """ECMA-262 MemberExpression in dot notation over a JSON value; ``_UNDEFINED`` where it is undefined."""
    for name in names:
        if not isinstance(value, Mapping) or name not in value:
            return _UNDEFINED
        value = value[name]
    return value


def _object_uris(elements: list[Mapping[str, Any]]) -> list[str]:
    uris: list[str] = []
    for element in elements:
        for member in ("object", "objectList"):
            found = element.get(member)
            for item in found if isinstance(found, list) else [found]:
                item = item.get("object") if isinstance(item, Mapping) else item
                if isinstance(item, str):
                    uris.append(item)
    return uris


def _entity_types(entity: Mapping[str, Any]) -> set[str]:
    declared = entity.get("type", entity.get("@type"))
    return {
        item for item in (declared if isinstance(declared, list) else [declared]) if isinstance(item, str)
    }


def _unwrap(value: Any) -> Any:
    """A JSON-LD typed literal ``{"@type": "DateTime", "@value": "..."}`` (Smart Data Models use them) as its
    value."""
    if isinstance(value, Mapping) and "@value" in value:
        return value["@value"]
    return value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _target_holds(op: Op, operand: Operand, target: _Target) -> bool:
    """Clause 4.9 operator semantics for one target value."""
    if target.kind is _Kind.GEO or (target.kind is _Kind.OBJECT and op not in (Op.EQ, Op.NE)):
        return False
    if isinstance(operand, Pattern):
        return _pattern_holds(op, _regex(operand.source), target.value)
    if isinstance(target.value, list):
        items = [_unwrap(item) for item in target.value]
        # "Is not included in the target value, if the latter is an array": != needs every element to differ.
        if op is Op.NE:
            return all(_value_holds(op, operand, item) for item in items)
        return any(_value_holds(op, operand, item) for item in items)
    return _value_holds(op, operand, target.value)


def _pattern_holds(op: Op, regex: re.Pattern[str], value: Any) -> bool:
    """``~=``/``!~=``: a target that is not a string never matches either (clause 4.9)."""
    if isinstance(value, list):
        if op is Op.MATCH:
            return any(_pattern_holds(op, regex, _unwrap(item)) for item in value)
        return all(_pattern_holds(op, regex, _unwrap(item)) for item in value)
    if not isinstance(value, str):
        return False
    return (regex.search(value) is not None) == (op is Op.MATCH)


def _value_holds(op: Op, operand: Scalar | Range | ValueList, value: Any) -> bool:
    if isinstance(operand, ValueList):
        if op is Op.EQ:
            return any(_order(item, value) == 0 for item in operand.values)
        return all(_order(item, value) != 0 for item in operand.values)
    if isinstance(operand, Range):
        low, high = _order(operand.low, value), _order(operand.high, value)
        inside = low is not None and high is not None and low >= 0 and high <= 0
        return inside if op is Op.EQ else not inside
    return _ORDER_TESTS[op](_order(operand, value))


# `order` is the sign of (target - query value), or None when their data types differ. Different types are
# "not matching" for every operator except !=, where they "shall be considered unequal" (clause 4.9).
_ORDER_TESTS: dict[Op, Callable[[int | None], bool]] = {
    Op.EQ: lambda order: order == 0,
    Op.NE: lambda order: order != 0,
    Op.GT: lambda order: order is not None and order > 0,
    Op.GE: lambda order: order is not None and order >= 0,
    Op.LT: lambda order: order is not None and order < 0,
    Op.LE: lambda order: order is not None and order <= 0,
}


def _order(literal: Scalar, value: Any) -> int | None:
    """Compare a target value with a query literal of the same data type; None if the types differ.

    Numbers never equal strings (``"5"`` is not ``5``) and booleans are not numbers. Date, time and date-time
    literals compare temporally with target strings in the same ISO 8601 shape (clause 4.9 "temporal order").
    """
    value = _unwrap(value)
    target: Any
    match literal:
        case Number(expected):
            target = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        case Text(expected):
            target = value if isinstance(value, str) else None
        case Boolean(expected):
            target = value if isinstance(value, bool) else None
        case DateTime(expected):
            target = _parse_datetime(value) if isinstance(value, str) else None
        case Date(expected):
            target = _parse_date(value) if isinstance(value, str) else None
        case Time(expected):
            target = _parse_time(value) if isinstance(value, str) else None
        case _:
            return None
    if target is None:
        return None
    return (target > expected) - (target < expected)
