"""The NGSI-LD query language (clause 4.9): grammar, errors with positions, semantics over real entities."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.domains.context.query.qlang import (
    MAX_LINK_LOOKUPS,
    MAX_NESTING,
    MAX_PATTERN_LENGTH,
    And,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Expr,
    LinkedPath,
    Number,
    Op,
    Operand,
    Or,
    Pattern,
    QuerySyntaxError,
    Range,
    Text,
    Time,
    ValueList,
    ValuePath,
    attributes_referenced,
    evaluate,
    parse,
    to_q,
)
from tests.domains.context.conftest import SMART_DATA_MODELS


def p(*names: str, trailing: tuple[str, ...] | None = None) -> ValuePath:
    return ValuePath(names, trailing)


def c(path: ValuePath | LinkedPath, op: str, operand: Operand) -> Comparison:
    return Comparison(path, Op(op), operand)


def has(*names: str) -> Exists:
    return Exists(p(*names))


# --- grammar: valid input ---------------------------------------------------------------------------------

VALID: list[tuple[str, Expr]] = [
    ("temperature", has("temperature")),
    ("!temperature", Exists(p("temperature"), negated=True)),
    ("temperature==20", c(p("temperature"), "==", Number(20))),
    ("temperature==-3.5e2", c(p("temperature"), "==", Number(-350.0))),
    ('brandName!="Mercedes"', c(p("brandName"), "!=", Text("Mercedes"))),
    (r'name=="say \"hi\" \u00e9;|)"', c(p("name"), "==", Text('say "hi" é;|)'))),
    (
        "isParked==urn:ngsi-ld:OffStreetParking:Downtown1",
        c(p("isParked"), "==", Text("urn:ngsi-ld:OffStreetParking:Downtown1", quoted=False)),
    ),
    (
        'isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"',
        c(p("isParked"), "==", Text("urn:ngsi-ld:OffStreetParking:Downtown1")),
    ),
    ("gender==Male", c(p("gender"), "==", Text("Male", quoted=False))),  # clause 4.9 EXAMPLE 12
    ("mnc==07", c(p("mnc"), "==", Text("07", quoted=False))),  # not a JSON number: a bare word
    ("a==true", c(p("a"), "==", Boolean(True))),
    ("a!=false", c(p("a"), "!=", Boolean(False))),
    ("a==1..5", c(p("a"), "==", Range(Number(1), Number(5)))),
    ('a!="a".."m"', c(p("a"), "!=", Range(Text("a"), Text("m")))),
    (
        "observedAt==2020-01-01T00:00:00Z..2020-01-31T23:59:59Z",
        c(
            p("observedAt"),
            "==",
            Range(
                DateTime(datetime(2020, 1, 1, tzinfo=UTC)),
                DateTime(datetime(2020, 1, 31, 23, 59, 59, tzinfo=UTC)),
            ),
        ),
    ),
    ('color=="black","red"', c(p("color"), "==", ValueList((Text("black"), Text("red"))))),
    ("a==1,true,urn:x", c(p("a"), "==", ValueList((Number(1), Boolean(True), Text("urn:x", quoted=False))))),
    ("a>=2017-12-24T12:00:00+01:00", c(p("a"), ">=", DateTime(datetime(2017, 12, 24, 11, tzinfo=UTC)))),
    ("a>2017-12-24T12:00:00", c(p("a"), ">", DateTime(datetime(2017, 12, 24, 12, tzinfo=UTC)))),
    ("a<2017-12-24", c(p("a"), "<", Date(date(2017, 12, 24)))),
    ("a<=12:30:00Z", c(p("a"), "<=", Time(time(12, 30)))),
    ("a>12:30", c(p("a"), ">", Time(time(12, 30)))),
    ('a<"12:30"', c(p("a"), "<", Text("12:30"))),
    (
        "temperature.observedAt>=2017-12-24T12:00:00Z",
        c(p("temperature", "observedAt"), ">=", DateTime(datetime(2017, 12, 24, 12, tzinfo=UTC))),
    ),
    ('address[city]=="Berlin"', c(p("address", trailing=("city",)), "==", Text("Berlin"))),
    (
        "sensor.rawdata[airquality.particulate]==40",
        c(p("sensor", "rawdata", trailing=("airquality", "particulate")), "==", Number(40)),
    ),
    ('color[*]=="red"', c(p("color", trailing=("*",)), "==", Text("red"))),
    ("sensor{humidity}==40", c(LinkedPath("sensor", (), p("humidity")), "==", Number(40))),
    (
        "sensor{Device,Sensor:humidity}==40",
        c(LinkedPath("sensor", ("Device", "Sensor"), p("humidity")), "==", Number(40)),
    ),
    ("a{b{T:c.d[e]}}", Exists(LinkedPath("a", (), LinkedPath("b", ("T",), p("c", "d", trailing=("e",)))))),
    ("name~=^Mer", c(p("name"), "~=", Pattern("^Mer"))),
    ('name~="^(Merc|BMW)$"', c(p("name"), "~=", Pattern("^(Merc|BMW)$"))),
    ("name~=^(Merc|BMW)$;a", And((c(p("name"), "~=", Pattern("^(Merc|BMW)$")), has("a")))),
    ("name!~=[;|)]x|b", Or((c(p("name"), "!~=", Pattern("[;|)]x")), has("b")))),
    ("(name~=x\\)y)", c(p("name"), "~=", Pattern("x\\)y"))),
    ("温度>20", c(p("温度"), ">", Number(20))),
    ("a;b|c;d", Or((And((has("a"), has("b"))), And((has("c"), has("d")))))),
    ("a|b;c", Or((has("a"), And((has("b"), has("c")))))),
    ("(a|b);c", And((Or((has("a"), has("b"))), has("c")))),
    ("a;(b;c)", And((has("a"), has("b"), has("c")))),
    ("((a))", has("a")),
    (
        '((speed>50|rpm>3000);brandName=="Mercedes")',  # clause 4.9 EXAMPLE 6
        And(
            (
                Or((c(p("speed"), ">", Number(50)), c(p("rpm"), ">", Number(3000)))),
                c(p("brandName"), "==", Text("Mercedes")),
            )
        ),
    ),
    (
        "(temperature>=20;temperature<=25)|capacity<=10",  # clause 4.9 EXAMPLE 7
        Or(
            (
                And((c(p("temperature"), ">=", Number(20)), c(p("temperature"), "<=", Number(25)))),
                c(p("capacity"), "<=", Number(10)),
            )
        ),
    ),
]


@pytest.mark.parametrize(("q", "expected"), VALID, ids=[q for q, _ in VALID])
def test_valid_queries_parse_to_their_ast(q: str, expected: Expr) -> None:
    assert parse(q) == expected


@pytest.mark.parametrize("q", [q for q, _ in VALID])
def test_unparsing_gives_a_query_with_the_same_ast(q: str) -> None:
    assert parse(to_q(parse(q))) == parse(q)


# --- grammar: invalid input, each with its position --------------------------------------------------------

INVALID: list[tuple[str, int, str]] = [
    ("", 0, "the query is empty"),
    ("a=1", 1, "equality is written '=='"),
    ("a=>1", 1, "equality is written '=='"),
    ("a!b", 1, "expected an operator"),
    ("a =1", 1, "expected an operator .* found ' '"),
    ("a==", 3, "expected a value, found the end of the query"),
    ("a==1;", 5, "expected a query term, found the end"),
    ("a==1|", 5, "expected a query term"),
    (";a", 0, "expected a query term, found ';'"),
    ("a;;b", 2, "expected a query term, found ';'"),
    ("()", 1, "expected a query term, found '\\)'"),
    ("(a==1", 5, "the '\\(' at position 0 is never closed"),
    ("(a;(b)", 6, "the '\\(' at position 0 is never closed"),
    ("a==1)", 4, "'\\)' without a matching '\\('"),
    ("(a)b", 3, "unexpected 'b'"),
    ("1a==2", 0, "expected an attribute name, found '1'"),
    ("_a==2", 0, "expected an attribute name, found '_'"),
    ("a.==1", 2, "expected an attribute name after '.'"),
    ("a.b.==1", 4, "expected an attribute name after '.'"),
    ("a[]==1", 2, "expected a member name inside"),
    ("a[b==1", 3, "expected '\\]'"),
    ("a[b]c==1", 4, "expected an operator"),
    ("a{b==1", 3, "expected '}' closing the '{' at position 1"),
    ("a{T:}==1", 4, "expected an attribute name"),
    ("a{T,:b}", 4, "expected an entity type name"),
    ("a== 1", 3, "unexpected ' ' in a value"),
    ("a==x y", 4, "unexpected ' ' in a value"),
    ("a===1", 3, "expected a value, found '='"),
    ("a==-x", 3, "expected a value, found '-'"),
    ("a==(1)", 3, "expected a value, found '\\('"),
    ('a=="x', 3, "the string is never closed"),
    ('a=="x"y', 6, "unexpected 'y' after the value"),
    ('a=="\\q"', 4, "invalid string: Invalid \\\\escape"),
    ('a=="tab\there"', 7, "invalid string: Invalid control character"),
    ("a>true", 2, "true and false cannot be compared with '>'"),
    ("a<=1..5", 3, "'<=' takes a single value"),
    ("a>1,2", 2, "'>' takes a single value"),
    ("a>foo", 2, "the unquoted value 'foo' works with == and != only"),
    ("a<urn:x:y", 2, "works with == and != only"),
    ('a==1.."x"', 6, "both bounds of a range must be of the same kind"),
    ("a==2020-01-01..5", 15, "both bounds of a range must be of the same kind"),
    ("a==true..false", 3, "a range bound must be a number"),
    ("a==1..foo", 6, "a range bound must be a number"),
    ("a==1..2..3", 7, "unexpected '.' after the value"),
    ("a==1,,2", 5, "expected a value, found ','"),
    ("a==1,", 5, "expected a value, found the end"),
    ("a==2017-02-30", 3, "'2017-02-30' is not a valid date"),
    ("a==2017-12-24T25:00:00Z", 3, "is not a valid date-time"),
    ("a==25:00:00", 3, "'25:00:00' is not a valid time"),
    ("a==1e999", 3, "the number 1e999 is out of range"),
    ('a~="("', 3, "invalid regular expression"),
    ("a~=(x", 3, "invalid regular expression"),
    ("a~=", 3, "expected a regular expression"),
    ("a~=;b", 3, "expected a regular expression"),
    ("a~=x y", 4, "unexpected ' ' in a regular expression"),
    ("a~=" + "x" * (MAX_PATTERN_LENGTH + 1), 3, "longer than"),
    ("(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), MAX_NESTING, "nesting deeper than"),
]


@pytest.mark.parametrize(("q", "position", "message"), INVALID, ids=[q[:40] for q, _, _ in INVALID])
def test_invalid_queries_are_refused_with_position_and_reason(q: str, position: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message) as caught:
        parse(q)
    assert caught.value.position == position
    assert caught.value.query == q
    assert str(caught.value).endswith(f"(at position {position})")
    assert isinstance(caught.value, ValueError)  # the broker maps ValueErrors of input to BadRequestData


# --- percent-encoded input: the caller decodes, then parses ------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("temperature%3E20%3Btemperature%3C%3D25", "temperature>20;temperature<=25"),
        ("brandName%21%3D%22Mercedes%22", 'brandName!="Mercedes"'),
        (
            "%28speed%3E50%7Crpm%3E3000%29%3BbrandName%3D%3D%22Mercedes%22",
            '(speed>50|rpm>3000);brandName=="Mercedes"',
        ),
        ("observedAt%3E2017-12-24T12%3A00%3A00%2B01%3A00", "observedAt>2017-12-24T12:00:00+01:00"),
        ("%E6%B8%A9%E5%BA%A6%3E20", "温度>20"),
        ("name~=%22a%20b%22", 'name~="a b"'),
    ],
)
def test_percent_encoded_queries_decode_then_parse(encoded: str, expected: str) -> None:
    assert unquote(encoded) == expected
    assert parse_qs(f"q={encoded}&type=Vehicle")["q"] == [expected]
    assert parse(unquote(encoded)) == parse(expected)
    assert parse(unquote(quote(expected, safe=""))) == parse(expected)


def test_an_unencoded_plus_decodes_to_a_space_and_is_refused_where_it_stands() -> None:
    decoded = parse_qs("q=observedAt>2017-12-24T12:00:00+01:00")["q"][0]
    assert decoded == "observedAt>2017-12-24T12:00:00 01:00"
    with pytest.raises(QuerySyntaxError) as caught:
        parse(decoded)
    assert caught.value.position == decoded.index(" ")


# --- semantics over a hand-made entity covering every attribute kind ---------------------------------------

VEHICLE: dict[str, Any] = {
    "id": "urn:ngsi-ld:Vehicle:A4567",
    "type": "Vehicle",
    "brandName": {"type": "Property", "value": "Mercedes"},
    "speed": [
        {"type": "Property", "value": 55, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {
            "type": "Property",
            "value": 60,
            "datasetId": "urn:ngsi-ld:Dataset:obd",
            "observedAt": "2017-07-29T12:00:00Z",
        },
    ],
    "isParked": {
        "type": "Relationship",
        "object": "urn:ngsi-ld:OffStreetParking:Downtown1",
        "observedAt": "2017-07-29T12:00:04Z",
        "providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Person:Bob"},
    },
    "fleet": {
        "type": "ListRelationship",
        "objectList": [{"object": "urn:ngsi-ld:Fleet:1"}, {"object": "urn:ngsi-ld:Fleet:2"}],
    },
    "temperature": {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": "2017-12-24T12:00:00Z",
        "accuracy": {"type": "Property", "value": 0.5},
    },
    "color": {"type": "LanguageProperty", "languageMap": {"fr": "rouge", "en": "red", "de": "rot"}},
    "nicknames": {"type": "LanguageProperty", "languageMap": {"fr": ["chat", "rouge"], "en": ["red", "cat"]}},
    "tags": {"type": "Property", "value": ["blue", "red", "green"]},
    "address": {
        "type": "Property",
        "value": {"city": "Berlin", "street": "Ulrich Strasse", "geo": {"floor": 2}},
    },
    "sensor": {
        "type": "Property",
        "value": 40,
        "rawdata": {"type": "Property", "value": {"airquality": {"particulate": 40, "PM20": 85}}},
    },
    "parkingTickets": {"type": "JsonProperty", "json": {"id": "85a6cc52", "value": "Overstay 60 minutes"}},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-8.5, 41.2]}},
    "category": {"type": "VocabProperty", "vocab": "commercial"},
    "readings": {"type": "ListProperty", "valueList": [1, 2, 3]},
    "registered": {"type": "Property", "value": True},
    "serial": {"type": "Property", "value": "5"},
    "lastService": {"type": "Property", "value": {"@type": "Date", "@value": "2017-06-01"}},
    "openingTime": {"type": "Property", "value": "08:30:00"},
}

SEMANTICS: list[tuple[str, bool]] = [
    # existence (clause 4.9 "Existence"); `!attr` is the absent-attribute extension
    ("brandName", True),
    ("wheels", False),
    ("!wheels", True),
    ("!brandName", False),
    ("location", True),
    ("isParked.providedBy", True),
    ("temperature.accuracy", True),
    ("temperature.observedAt", True),
    ("temperature.unitCode", True),
    ("brandName.observedAt", False),
    ("id", False),
    ("type", False),
    # equality, value lists
    ('brandName=="Mercedes"', True),
    ('brandName!="Mercedes"', False),
    ('brandName!="BMW"', True),
    ('brandName=="BMW","Mercedes"', True),
    ('brandName!="BMW","Mercedes"', False),
    ('brandName!="BMW","Audi"', True),
    # data types: numbers never equal strings; != across types is "unequal"
    ("serial==5", False),
    ('serial=="5"', True),
    ("serial!=5", True),
    ('speed=="55"', False),
    ("registered==true", True),
    ("registered==1", False),
    ("registered!=false", True),
    # a missing attribute matches no operator, != included ("shall contain the target element")
    ("wheels!=4", False),
    ("wheels==4", False),
    ("wheels<4", False),
    ('wheels!~="x"', False),
    # multi-instance attributes (datasetId): any instance may match
    ("speed==60", True),
    ("speed==55", True),
    ("speed>58", True),
    ("speed<50", False),
    ("speed!=55", True),
    ("speed==55..56", True),
    ("speed.observedAt>2017-01-01T00:00:00Z", True),
    ("speed.datasetId==urn:ngsi-ld:Dataset:gps", True),
    # ranges, both ends included; an inverted range is empty
    ("temperature==20..22", True),
    ("temperature==21.5..21.5", True),
    ("temperature!=20..22", False),
    ("temperature!=22..30", True),
    ("temperature==22..20", False),
    # ordering
    ("temperature>21", True),
    ("temperature>=21.5", True),
    ("temperature>21.5", False),
    ("temperature<=21.5", True),
    ('temperature<"z"', False),
    # metadata as sub-attributes (clause 4.9 EXAMPLE 8), compared in time order
    ("temperature.observedAt>=2017-12-24T12:00:00Z", True),
    ("temperature.observedAt>2017-12-24T13:00:00+02:00", True),
    ("temperature.observedAt==2017-12-24T12:00:00Z", True),
    ("temperature.observedAt<2017-12-24", False),  # a date is not a date-time
    ('temperature.unitCode=="CEL"', True),
    ("temperature.accuracy<1", True),
    ("temperature.accuracy.observedAt", False),
    # relationships compare their object, with == and != only
    ('isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"', True),
    ("isParked==urn:ngsi-ld:OffStreetParking:Downtown1", True),
    ('isParked!="urn:ngsi-ld:OffStreetParking:Downtown1"', False),
    ('isParked>"urn"', False),
    ('isParked~="Downtown"', False),
    ('isParked.providedBy=="urn:ngsi-ld:Person:Bob"', True),
    ("isParked.observedAt>2017-01-01T00:00:00Z", True),
    ('fleet=="urn:ngsi-ld:Fleet:2"', True),
    ('fleet!="urn:ngsi-ld:Fleet:2"', False),
    ('fleet!="urn:ngsi-ld:Fleet:3"', True),
    # arrays: == means "included", != means "not included"
    ('tags=="red"', True),
    ('tags!="red"', False),
    ('tags!="yellow"', True),
    ('tags=="black","red"', True),
    ('tags!="black","red"', False),
    ('tags!="black","yellow"', True),
    ('tags~="^gr"', True),
    ('tags!~="^gr"', False),
    ('tags!~="^x"', True),
    # compound values (clause 4.9 EXAMPLES 9-11): a missing member is a missing target
    ('address[city]=="Berlin"', True),
    ('address[city]=="Paris"', False),
    ("address[city]", True),
    ("address[postcode]", False),
    ('address[postcode]!="x"', False),
    ("address[geo.floor]>=2", True),
    ("address[city.name]", False),
    ('address=="Berlin"', False),
    ("sensor.rawdata[airquality.particulate]==40", True),
    ("sensor.rawdata[airquality.PM20]>100", False),
    ('parkingTickets[value]=="Overstay 60 minutes"', True),
    ('parkingTickets=="Overstay 60 minutes"', False),
    # LanguageProperty: [lang] picks one language; no bracket or [*] means any, and != means "in none"
    ('color[en]=="red"', True),
    ('color[en]=="rouge"', False),
    ('color[*]=="rouge"', True),
    ('color=="rot"', True),
    ('color[en]!="rouge"', True),
    ('color[*]!="red"', False),
    ('color[*]!="blau"', True),
    ("color[it]", False),
    ("color[en]", True),
    ('nicknames[en]=="cat"', True),
    ('nicknames[fr]=="cat"', False),
    # VocabProperty, ListProperty
    ('category=="commercial"', True),
    ("category==commercial", True),
    ("readings==2", True),
    ("readings>2", True),
    ("readings!=2", False),
    # a GeoProperty is not comparable, but exists; its members are plain JSON
    ("location==1", False),
    ("location!=1", False),
    ('location~="Point"', False),
    ('location[type]=="Point"', True),
    # patterns: strings only
    ('brandName~="^Merc"', True),
    ("brandName~=^Merc", True),
    ('brandName~="benz$"', False),
    ('brandName!~="^BMW"', True),
    ('brandName!~="^Merc"', False),
    ('speed~="5"', False),
    ('speed!~="5"', False),
    # JSON-LD typed literals are compared by their value; dates and times in temporal order
    ("lastService==2017-06-01", True),
    ("lastService<2018-01-01", True),
    ('lastService=="2017-06-01"', True),
    ("openingTime<09:00:00", True),
    ("openingTime==08:30:00Z", True),
    # logic: AND binds tighter than OR, parentheses win
    ('brandName=="BMW"|speed>50;registered==false', False),
    ('(brandName=="BMW"|speed>50);registered==true', True),
    ('((speed>50|rpm>3000);brandName=="Mercedes")', True),
    ("(temperature>=20;temperature<=25)|capacity<=10", True),
]


@pytest.mark.parametrize(("q", "expected"), SEMANTICS, ids=[q for q, _ in SEMANTICS])
def test_clause_4_9_semantics(q: str, expected: bool) -> None:
    assert evaluate(parse(q), VEHICLE) is expected


def test_expanded_core_type_names_are_understood() -> None:
    entity = {
        "https://example.org/speed": {"type": "https://uri.etsi.org/ngsi-ld/Property", "value": 10},
        "https://example.org/owner": {
            "type": ["https://uri.etsi.org/ngsi-ld/Relationship"],
            "object": "urn:x",
        },
    }

    def expand(name: str) -> str:
        return f"https://example.org/{name}"

    assert evaluate(parse("speed==10;owner==urn:x"), entity, attribute_resolver=expand)
    assert not evaluate(parse('owner>"urn"'), entity, attribute_resolver=expand)


# --- Smart Data Models examples (CC-BY-4.0, ../shared/data) ------------------------------------------------


SDM_CASES: list[tuple[str, str, bool]] = [
    ("WeatherObserved", "temperature>3;temperature<4", True),
    ("WeatherObserved", "temperature==3.3", True),
    ("WeatherObserved", "dateObserved>2016-11-30T06:59:59Z", True),
    ("WeatherObserved", "dateObserved==2016-11-30T07:00:00Z", True),
    ("WeatherObserved", 'refDevice=="urn:ngsi-ld:Device:device-0A3478"', True),
    ("WeatherObserved", 'refDevice>"urn"', False),
    ("WeatherObserved", 'address[addressLocality]=="Valladolid";address[addressCountry]=="ES"', True),
    ("WeatherObserved", "location;location!=0", False),
    ("WeatherObserved", "source~=aemet\\.es$", True),
    ("WeatherObserved", 'source~="aemet\\\\.es$"', True),  # inside a JSON string the backslash is doubled
    ("WeatherObserved", "windSpeed>=2;relativeHumidity<=1;precipitation==0", True),
    ("ParkingSpot", 'status=="free"', True),
    ("ParkingSpot", "status.observedAt>=2018-09-21T12:00:00Z", True),
    ("ParkingSpot", "status.observedAt>2018-09-21", False),
    ("ParkingSpot", 'status.parkingPermit=="yes"', True),
    ("ParkingSpot", 'category=="onStreet"', True),
    ("ParkingSpot", 'category!="offStreet"', True),
    ("ParkingSpot", 'category!="onStreet"', False),
    ("ParkingSpot", 'name~="^A-[0-9]+$"', True),
    ("ParkingSpot", "refParkingSite==urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5", True),
    ("AirQualityObserved", 'co==500;co.unitCode=="GP"', True),
    ("AirQualityObserved", "no2>50|so2>50", True),
    ("AirQualityObserved", "no2>100|so2>50", False),
    ("AirQualityObserved", "dateObserved==2016-03-15T11:00:00Z", True),  # stored without a zone: UTC
    ("AirQualityObserved", 'airQualityLevel=="good","moderate"', True),
    ("AirQualityObserved", "refPointOfInterest;!refDevice", True),
    ("AirQualityObserved", "tsp==73..74", True),
    ("Building", 'owner=="urn:ngsi-ld::1be9cd61-ef59-421f-a326-4b6c84411ad4"', True),
    ("Building", 'occupier!="urn:ngsi-ld:Person:9830f692-7677-11e6-838b-4f9fb3dc5a4f"', False),
    ("Building", "floorsAboveGround==5..10;floorsBelowGround==0", True),
    ("Building", 'category=="office"', True),
    ("Building", 'openingHours~="^Sa "', True),
    ("Building", 'address[postalCode]=="EC4N 8AF"', True),
    ("Device", 'mnc=="07"', True),
    ("Device", "mnc==07", True),
    ("Device", "mnc==7", False),
    ("Device", "mnc!=7", True),
    ("Device", "batteryLevel>=0.5;rssi>0.8", True),
    ("Device", 'deviceCategory=="sensor";controlledProperty=="temperature"', True),
    ("Device", "dateFirstUsed<2015-01-01T00:00:00Z", True),
    ("Device", 'refDeviceModel=="urn:ngsi-ld:DeviceModel:myDevice-wastecontainer-sensor-345"', True),
    ("DeviceMeasurement", "outlier==true;numValue>55", True),
    ("DeviceMeasurement", 'owner=="anyone"', False),
    ("DeviceMeasurement", 'owner!="anyone"', True),  # an empty array includes nothing
    ("DeviceMeasurement", 'textValue==""', True),
    ("DeviceMeasurement", 'location[type]=="Point"', True),
    ("EVChargingStation", 'capacity>=2;socketType=="Wall_Euro"', True),
    ("EVChargingStation", "startDateTime<2022-06-28T15:00:00Z", True),  # 20:27:27+05:30 is 14:57:27Z
    ("EVChargingStation", "amountCollected>0;taxAmountCollected==0", True),
    ("Streetlight", "municipalityInfo[wardNum]==4", True),
    ("Streetlight", 'municipalityInfo.deviceInfo[deviceModel.brandName]=="abc"', True),
    ("Streetlight", 'powerState=="off";status=="ok"', True),
    ("Streetlight", 'powerState=="on"|lanternHeight>10', False),
]


@pytest.mark.parametrize(("model", "q", "expected"), SDM_CASES, ids=[f"{m}:{q}" for m, q, _ in SDM_CASES])
def test_smart_data_models_examples(
    models: dict[str, dict[str, Any]], model: str, q: str, expected: bool
) -> None:
    assert evaluate(parse(q), models[model]) is expected


def _context_terms(model: str) -> dict[str, str]:
    """term -> IRI of a Smart Data Models @context (terms mapped to strings or to {"@id": ...})."""
    repository = {
        "WeatherObserved": "dataModel.Weather",
        "ParkingSpot": "dataModel.Parking",
        "Streetlight": "dataModel.Streetlighting",
    }[model]
    document = json.loads(
        (SMART_DATA_MODELS / "contexts" / f"{repository}-context.jsonld").read_text("utf-8")
    )
    return {
        term: definition if isinstance(definition, str) else definition["@id"]
        for term, definition in document["@context"].items()
        if isinstance(definition, str) or "@id" in definition
    }


def _expand_names(entity: Mapping[str, Any], expand: Callable[[str], str]) -> dict[str, Any]:
    """The entity with its attribute and sub-attribute names expanded, as the broker stores it."""
    expanded: dict[str, Any] = {}
    for name, member in entity.items():
        if isinstance(member, dict) and "type" in member and name not in ("value", "object"):
            expanded[expand(name)] = _expand_names(member, expand)
        else:
            expanded[name] = member
    return expanded


@pytest.mark.parametrize(
    ("model", "q"),
    [
        (
            "WeatherObserved",
            "temperature>3;refDevice==urn:ngsi-ld:Device:device-0A3478;address[addressCountry]==ES",
        ),
        (
            "ParkingSpot",
            'status.parkingPermit=="yes";status.observedAt<2019-01-01T00:00:00Z;category=="onStreet"',
        ),
        ("Streetlight", 'municipalityInfo.deviceInfo[deviceModel.modelName]=="SL1";powerState=="off"'),
    ],
)
def test_the_resolver_maps_short_names_onto_expanded_entities(
    models: dict[str, dict[str, Any]], model: str, q: str
) -> None:
    terms = _context_terms(model)

    def expand(name: str) -> str:
        return terms.get(name, f"https://uri.etsi.org/ngsi-ld/default-context/{name}")

    stored = _expand_names(models[model], expand)
    assert stored != models[model]
    assert evaluate(parse(q), models[model])
    assert evaluate(parse(q), stored, attribute_resolver=expand)
    assert not evaluate(parse(q), stored)  # the short names are not the stored keys
    assert attributes_referenced(parse(q), expand) <= set(stored)


# --- linked entities (clause 4.9 EXAMPLES 13 and 14) -------------------------------------------------------

STATION = {
    "id": "urn:ngsi-ld:WeatherStation:123",
    "type": "WeatherStation",
    "sensor": {"type": "Relationship", "objectType": "Device", "object": "urn:ngsi-ld:Device:345"},
    "sensors": {"type": "Relationship", "object": ["urn:ngsi-ld:Device:345", "urn:ngsi-ld:Device:346"]},
    "broken": {"type": "Relationship", "object": "urn:ngsi-ld:Device:gone"},
}
DEVICES: dict[str, dict[str, Any]] = {
    "urn:ngsi-ld:Device:345": {
        "id": "urn:ngsi-ld:Device:345",
        "type": "Device",
        "humidity": {"type": "Property", "value": 40},
        "site": {"type": "Relationship", "object": "urn:ngsi-ld:Site:1"},
    },
    "urn:ngsi-ld:Device:346": {"id": "urn:ngsi-ld:Device:346", "type": ["Sensor"], "humidity": {"value": 55}},
    "urn:ngsi-ld:Site:1": {
        "id": "urn:ngsi-ld:Site:1",
        "type": "Site",
        "name": {"type": "Property", "value": "roof"},
    },
}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("sensor{humidity}==40", True),
        ("sensor{humidity}==50", False),
        ("sensor{Device:humidity}==40", True),
        ("sensor{Vehicle:humidity}==40", False),
        ("sensor{Vehicle,Device:humidity}==40", True),
        ("sensors{humidity}==55", True),
        ("sensors{Device:humidity}==55", False),
        ("sensor{humidity}", True),
        ("sensor{pressure}", False),
        ("broken{humidity}", False),
        ('sensor{site{name}}=="roof"', True),
        ("humidity{sensor}", False),
    ],
)
def test_linked_entity_paths_follow_relationships(q: str, expected: bool) -> None:
    assert evaluate(parse(q), STATION, entity_lookup=DEVICES.get) is expected


def test_linked_paths_never_match_without_a_lookup() -> None:
    assert not evaluate(parse("sensor{humidity}==40"), STATION)


def test_linked_paths_spend_a_bounded_number_of_lookups() -> None:
    """A relationship cycle with fan-out costs fan-out^depth lookups; the budget caps them per evaluation."""
    node = {
        "id": "urn:a",
        "type": "Node",
        "next": {"type": "Relationship", "object": ["urn:a", "urn:a", "urn:a"]},
    }
    calls: list[str] = []

    def lookup(uri: str) -> dict[str, Any]:
        calls.append(uri)
        return node

    deep = "next{" * 8 + "missing" + "}" * 8
    assert not evaluate(parse(deep), node, entity_lookup=lookup)
    assert len(calls) == MAX_LINK_LOOKUPS


# --- analysis ----------------------------------------------------------------------------------------------


def test_attributes_referenced_are_the_top_level_names() -> None:
    expr = parse('a==1;(b.c>2|d[e]);!f;g{T:h}==1;i.observedAt>2020-01-01|j~="x"')
    assert attributes_referenced(expr) == {"a", "b", "d", "f", "g", "i", "j"}
    assert attributes_referenced(parse("a"), lambda name: f"urn:{name}") == {"urn:a"}


# --- properties --------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
)


def _number(value: float) -> str:
    return json.dumps(value)


def _entity(value: Any) -> dict[str, Any]:
    return {"id": "urn:x", "type": "T", "a": {"type": "Property", "value": value}}


@given(low=numbers, high=numbers, value=numbers)
def test_a_range_is_the_conjunction_of_its_bounds(low: float, high: float, value: float) -> None:
    entity = _entity(value)
    in_range = evaluate(parse(f"a=={_number(low)}..{_number(high)}"), entity)
    assert in_range == evaluate(parse(f"a>={_number(low)};a<={_number(high)}"), entity)
    assert in_range == (low <= value <= high)
    assert evaluate(parse(f"a!={_number(low)}..{_number(high)}"), entity) is not in_range


@given(literal=numbers, value=st.one_of(numbers, st.text(max_size=5), st.booleans()))
def test_unequal_is_the_negation_of_equal_on_a_present_single_value(literal: float, value: Any) -> None:
    entity = _entity(value)
    assert evaluate(parse(f"a!={_number(literal)}"), entity) is not evaluate(
        parse(f"a=={_number(literal)}"), entity
    )


@given(truth=st.lists(st.booleans(), min_size=3, max_size=3))
def test_and_or_are_associative_and_and_binds_tighter(truth: list[bool]) -> None:
    entity = {f"x{index}": {"type": "Property", "value": value} for index, value in enumerate(truth)}
    x, y, z = "x0==true", "x1==true", "x2==true"
    a, b, cc = truth

    def holds(q: str) -> bool:
        return evaluate(parse(q), entity)

    assert holds(f"({x};{y});{z}") == holds(f"{x};({y};{z})") == (a and b and cc)
    assert holds(f"({x}|{y})|{z}") == holds(f"{x}|({y}|{z})") == (a or b or cc)
    assert holds(f"{x}|{y};{z}") == holds(f"{x}|({y};{z})") == (a or (b and cc))
    assert holds(f"{x};{y}|{z}") == holds(f"({x};{y})|{z}") == ((a and b) or cc)
    assert parse(f"({x};{y});{z}") == parse(f"{x};({y};{z})")


def _compiles(pattern: str) -> bool:
    try:
        parse(f"a~={json.dumps(pattern)}")
    except QuerySyntaxError:
        return False
    return True


names = st.sampled_from(["a", "temp", "温度", "b_1", "observedAt"])
paths = st.one_of(
    names,
    st.builds(lambda n, m: f"{n}.{m}", names, names),
    st.builds(lambda n, m: f"{n}[{m}]", names, names),
    st.builds(lambda n, m: f"{n}{{T:{m}}}", names, names),
)
scalars = st.one_of(
    numbers.map(_number),
    st.text(max_size=8).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from(
        ["true", "false", "urn:ngsi-ld:X:1", "2020-02-29", "23:59:59Z", "2017-12-24T12:00:00+01:00"]
    ),
)
terms = st.one_of(
    paths,
    st.builds(lambda path, op, value: f"{path}{op}{value}", paths, st.sampled_from(["==", "!="]), scalars),
    st.builds(
        lambda path, low, high: f"{path}=={low}..{high}", paths, numbers.map(_number), numbers.map(_number)
    ),
    st.builds(
        lambda path, values: f"{path}!={','.join(values)}", paths, st.lists(scalars, min_size=2, max_size=3)
    ),
    st.builds(
        lambda path, op, value: f"{path}{op}{value}",
        paths,
        st.sampled_from([">", "<="]),
        numbers.map(_number),
    ),
    st.builds(
        lambda path, text: f"{path}~={json.dumps(text)}",
        paths,
        st.from_regex(r"[a-z.^$|()]{0,6}", fullmatch=True).filter(_compiles),
    ),
)


queries = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.builds(lambda left, right: f"{left};{right}", inner, inner),
        st.builds(lambda left, right: f"{left}|{right}", inner, inner),
        inner.map(lambda q: f"({q})"),
    ),
    max_leaves=6,
)


@given(q=queries)
def test_unparse_then_parse_round_trips(q: str) -> None:
    expr = parse(q)
    assert parse(to_q(expr)) == expr
