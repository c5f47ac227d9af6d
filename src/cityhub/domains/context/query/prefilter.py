"""``q`` compiled to a SQL pre-filter over the stored entity document (ADR 0002 decision 4).

The pre-filter only narrows: every entity that ``qlang.evaluate`` accepts passes it, and Python evaluation
stays the final judge. What it compiles is the common part of real queries: comparisons, ranges, value lists
and existence on a top-level attribute, against every instance of it (multi-instance attributes match when
any instance does). Each attribute instance is tested by what its type allows (clause 4.9, ``qlang``):

- a Property whose value is a number, a string or a boolean is compared with a literal of the same JSON type
  (numbers never equal strings, booleans are not numbers, ``!=`` holds across types); an array or object value
  (array targets, JSON-LD ``@value`` literals) is always kept for Python to decide;
- a Relationship is compared on its ``object`` with ``==`` (ordering never holds, anything else is kept);
- a GeoProperty never satisfies a comparison; other attribute types are kept.

Dates, times and date-times are compared in Python (ISO strings do not sort in time order across zones and
precisions): the pre-filter keeps string and structured values for them, as for regular expressions
(Python's ``re`` is not the database's regex dialect). Sub-attribute paths, ``attr[member]`` and linked paths
only require the top-level attribute to exist, which every operator needs. Numeric literals beyond ±2^53 are
not compiled (SQLite reads huge JSON integers as REAL).

PostgreSQL evaluates the whole condition in one ``jsonb_path_exists`` (``exists($."attr"[*] ? (...))`` per
term, type checks with ``.type()``; jsonpath compares strings by code point like Python); SQLite walks the
instances with ``json_each`` and tests them with ``json_type``/``json_extract`` (text compares by code point
under the BINARY collation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import (
    Boolean as SqlBoolean,
)
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH

from cityhub.domains.context.query.qlang import (
    And,
    Boolean,
    Comparison,
    Exists,
    Expr,
    LinkedPath,
    Number,
    Op,
    Operand,
    Or,
    Pattern,
    Range,
    Scalar,
    Text,
    ValueList,
    ValuePath,
)

MAX_EXACT_NUMBER = 2**53

# -- a small per-instance predicate language, rendered per dialect ------------------------------------------


@dataclass(frozen=True)
class TypeIs:
    kind: str


@dataclass(frozen=True)
class Compare:
    """The instance member is of ``json_type`` (number, string, boolean) and ``member <op> literal``."""

    member: str
    json_type: str
    op: str
    literal: Any


@dataclass(frozen=True)
class IsType:
    """The member is of ``json_type``: all a test can tell where SQL cannot compare exactly."""

    member: str
    json_type: str


@dataclass(frozen=True)
class Structured:
    """The member is an array or an object: Python decides (array targets, ``@value`` literals)."""

    member: str


@dataclass(frozen=True)
class Has:
    member: str


@dataclass(frozen=True)
class Not:
    term: Pred


@dataclass(frozen=True)
class All:
    terms: tuple[Pred, ...]


@dataclass(frozen=True)
class OneOf:
    terms: tuple[Pred, ...]


@dataclass(frozen=True)
class Always:
    value: bool


Pred: TypeAlias = TypeIs | Compare | IsType | Structured | Has | Not | All | OneOf | Always

# -- entity-level conditions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeHas:
    """Some instance of attribute ``iri`` satisfies ``pred`` (``pred`` None: the attribute exists)."""

    iri: str
    pred: Pred | None = None
    negated: bool = False


@dataclass(frozen=True)
class Both:
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Either:
    terms: tuple[Condition, ...]


Condition: TypeAlias = AttributeHas | Both | Either | None  # None: no narrowing possible

_SQL_OPS = {Op.EQ: "==", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}
_JSON_TYPES: dict[type, str] = {Number: "number", Text: "string", Boolean: "boolean"}


def condition_of(expr: Expr, resolve: Callable[[str], str]) -> Condition:
    """The pre-filter of a parsed ``q`` (attribute names mapped with ``resolve``); None keeps everything."""
    match expr:
        case And(terms):
            kept = tuple(c for c in (condition_of(term, resolve) for term in terms) if c is not None)
            return None if not kept else kept[0] if len(kept) == 1 else Both(kept)
        case Or(terms):
            either = tuple(condition_of(term, resolve) for term in terms)
            return None if any(c is None for c in either) else Either(either)
        case Exists(path, negated):
            if isinstance(path, ValuePath) and len(path.names) == 1 and path.trailing is None:
                return _attribute(resolve(path.names[0]), None, negated=negated)
            return None if negated else _attribute(_top_iri(path, resolve), None)
        case Comparison(path, op, operand):
            iri = _top_iri(path, resolve)
            if isinstance(path, ValuePath) and len(path.names) == 1 and path.trailing is None:
                return _attribute(iri, _instance_test(op, operand))
            return _attribute(iri, None)
    raise TypeError(f"not a query expression: {expr!r}")


def _top_iri(path: ValuePath | LinkedPath, resolve: Callable[[str], str]) -> str:
    return resolve(path.relationship if isinstance(path, LinkedPath) else path.names[0])


def _attribute(iri: str, pred: Pred | None, *, negated: bool = False) -> Condition:
    if '"' in iri or "\\" in iri:
        return None  # cannot be spelled safely inside a JSON path; Python decides
    return AttributeHas(iri, pred, negated)


def _instance_test(op: Op, operand: Operand) -> Pred:
    """What one attribute instance must satisfy for ``op operand`` to possibly hold on it."""
    geo = All((TypeIs("GeoProperty"), Always(False)))
    relationship = All((TypeIs("Relationship"), _relationship_test(op, operand)))
    value = All((TypeIs("Property"), _value_test("value", op, operand)))
    other = Not(OneOf((TypeIs("Property"), TypeIs("Relationship"), TypeIs("GeoProperty"))))
    return OneOf((value, relationship, geo, other))


def _relationship_test(op: Op, operand: Operand) -> Pred:
    if op in (Op.GT, Op.GE, Op.LT, Op.LE, Op.MATCH, Op.NOT_MATCH):
        return Always(False)
    if op is Op.EQ and isinstance(operand, Text | ValueList):
        return _value_test("object", op, operand)
    return Always(True)


def _value_test(member: str, op: Op, operand: Operand) -> Pred:
    """The member's value test; structured values always pass (Python decides arrays and @value)."""
    return All((Has(member), OneOf((Structured(member), _scalar_test(member, op, operand)))))


def _scalar_test(member: str, op: Op, operand: Operand) -> Pred:
    match operand:
        case Range(low, high):
            # a value has one JSON type, so ends of different types (dates count as strings) never hold
            comparable = (_json_type(low) or "string") == (_json_type(high) or "string")
            inside: Pred = (
                All((_compare(member, Op.GE, low), _compare(member, Op.LE, high)))
                if comparable
                else Always(False)
            )
            return inside if op is Op.EQ else _negation(inside)  # qlang: any other operator means "outside"
        case ValueList(values):
            equal = OneOf(tuple(_compare(member, Op.EQ, value) for value in values))
            return equal if op is Op.EQ else _negation(equal)  # qlang: any other operator means "in none"
    if isinstance(operand, Pattern) or op in (Op.MATCH, Op.NOT_MATCH):
        return _is_string(member)
    if op is Op.NE:
        return _negation(_compare(member, Op.EQ, operand))
    return _compare(member, op, operand)


def _negation(pred: Pred) -> Pred:
    """``!=`` holds across types: only a comparable, equal scalar is excluded; inexact tests keep all."""
    return Not(pred) if _exact(pred) else Always(True)


def _exact(pred: Pred) -> bool:
    match pred:
        case Compare() | Always():
            return True
        case All(terms) | OneOf(terms):
            return all(_exact(term) for term in terms)
    return False


def _is_string(member: str) -> Pred:
    return IsType(member, "string")


def _json_type(literal: Scalar) -> str | None:
    return _JSON_TYPES.get(type(literal))


def _compare(member: str, op: Op, literal: Scalar) -> Pred:
    """A typed comparison; temporal literals and numbers beyond exact range keep every string/number."""
    json_type = _json_type(literal)
    value = getattr(literal, "value", None)
    if json_type is None:  # date, time, date-time: Python compares them in time order
        return _is_string(member)
    if isinstance(literal, Number) and not (
        math.isfinite(literal.value) and abs(literal.value) < MAX_EXACT_NUMBER
    ):
        return IsType(member, "number")
    if isinstance(literal, Boolean) and op is not Op.EQ:
        return IsType(member, "boolean")
    return Compare(member, json_type, _SQL_OPS[op], value)


# -- rendering -----------------------------------------------------------------------------------------------


def to_sql(condition: Condition, attrs: Any, dialect: str) -> ColumnElement[bool] | None:
    """The condition as a WHERE clause on the ``attrs`` column for ``dialect`` (None: nothing to add)."""
    if condition is None:
        return None
    render = _PostgresRenderer(attrs) if dialect == "postgresql" else _SqliteRenderer(attrs)
    return render.condition(condition)


class _PostgresRenderer:
    """The whole condition as ONE ``jsonb_path_exists(attrs, '$ ? (...)', vars)``; literals go in ``vars``.

    One call rather than one per term: the planner gives each opaque function call a fixed selectivity, and a
    product of several looks so selective that it prefers scanning every row over the page-sized index scan.
    """

    def __init__(self, attrs: Any) -> None:
        self.attrs = attrs

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        variables: dict[str, Any] = {}
        path = f"$ ? ({self.path(condition, variables)})"
        return func.jsonb_path_exists(
            self.attrs,
            cast(bindparam(None, path), JSONPATH),
            cast(bindparam(None, json.dumps(variables)), JSONB),
            type_=SqlBoolean,
        ).is_(True)

    def path(self, condition: Condition, variables: dict[str, Any]) -> str:
        match condition:
            case Both(terms):
                return "(" + " && ".join(self.path(term, variables) for term in terms) + ")"
            case Either(terms):
                return "(" + " || ".join(self.path(term, variables) for term in terms) + ")"
            case AttributeHas(iri, None, negated):
                return ("!" if negated else "") + f"exists($.{json.dumps(iri)})"
            case AttributeHas(iri, pred, _):
                assert pred is not None
                return f"exists($.{json.dumps(iri)}[*] ? ({self.pred(pred, variables)}))"
        raise TypeError(f"not a condition: {condition!r}")

    def pred(self, pred: Pred, variables: dict[str, Any]) -> str:
        match pred:
            case TypeIs(kind):
                return f'@."type" == {json.dumps(kind)}'
            case Has(member):
                return f'exists(@."{member}")'
            case Structured(member):
                return f'(@."{member}".type() == "array" || @."{member}".type() == "object")'
            case IsType(member, json_type):
                return f'@."{member}".type() == {json.dumps(json_type)}'
            case Compare(member, json_type, op, literal):
                name = f"v{len(variables)}"
                variables[name] = literal
                return f'(@."{member}".type() == {json.dumps(json_type)} && @."{member}" {op} ${name})'
            case Not(term):
                return f"!({self.pred(term, variables)})"
            case All(terms):
                return "(" + " && ".join(self.pred(term, variables) for term in terms) + ")"
            case OneOf(terms):
                return "(" + " || ".join(self.pred(term, variables) for term in terms) + ")"
            case Always(value):
                return "(1 == 1)" if value else "(1 == 0)"
        raise TypeError(f"not a predicate: {pred!r}")


_SQLITE_TYPES = {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")}
_SQLITE_OPS = {"==": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class _SqliteRenderer:
    """``EXISTS (SELECT 1 FROM json_each(attrs, '$."iri"') WHERE ...)`` testing each instance's JSON."""

    def __init__(self, attrs: Any) -> None:
        self.attrs = attrs

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        match condition:
            case Both(terms):
                return and_(*(self.condition(term) for term in terms))
            case Either(terms):
                return or_(*(self.condition(term) for term in terms))
            case AttributeHas(iri, None, negated):
                present = self.has_attribute(iri)
                return not_(present) if negated else present
            case AttributeHas(iri, pred, _):
                assert pred is not None
                return self.any_instance(iri, pred)
        raise TypeError(f"not a condition: {condition!r}")

    def has_attribute(self, iri: str) -> ColumnElement[bool]:
        return func.json_type(self.attrs, bindparam(None, _sqlite_key(iri))).is_not(None)

    def any_instance(self, iri: str, pred: Pred) -> ColumnElement[bool]:
        instances = func.json_each(self.attrs, bindparam(None, _sqlite_key(iri))).table_valued("value")
        instance = instances.c.value
        return exists(select(literal_column("1")).select_from(instances).where(self.pred(pred, instance)))

    def pred(self, pred: Pred, instance: Any) -> ColumnElement[bool]:
        match pred:
            case TypeIs(kind):
                return func.coalesce(func.json_extract(instance, "$.type"), "") == kind
            case Has(member):
                return func.json_type(instance, f"$.{member}").is_not(None)
            case Structured(member):
                return func.json_type(instance, f"$.{member}").in_(("array", "object"))
            case Compare(member, "boolean", "==", literal):
                return func.json_type(instance, f"$.{member}") == ("true" if literal else "false")
            case IsType(member, json_type):
                return func.json_type(instance, f"$.{member}").in_(_SQLITE_TYPES[json_type])
            case Compare(member, json_type, op, literal):
                typed = func.json_type(instance, f"$.{member}").in_(_SQLITE_TYPES[json_type])
                value = func.json_extract(instance, f"$.{member}")
                return and_(typed, value.op(_SQLITE_OPS[op], is_comparison=True)(literal))
            case Not(term):
                return not_(self.pred(term, instance))
            case All(terms):
                return and_(*(self.pred(term, instance) for term in terms))
            case OneOf(terms):
                return or_(*(self.pred(term, instance) for term in terms))
            case Always(value):
                return true() if value else false()
        raise TypeError(f"not a predicate: {pred!r}")


def _sqlite_key(iri: str) -> str:
    return f'$."{iri}"'
