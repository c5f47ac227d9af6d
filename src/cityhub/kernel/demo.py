"""Shared plumbing for `cityhub demo`: the seeder context, deterministic randomness, synthetic Chinese people
data, simple map layout, and a bulk insert that is fast on SQLite and PostgreSQL.

Every domain's ``demo_seeder`` receives a :class:`DemoContext`. All randomness comes from ``ctx.rng`` (one
``random.Random`` per domain, derived from ``--seed`` and the domain name), and ages are counted from
``ctx.today`` (1 January of the current year), so one seed gives the same city every time within a year.

Synthetic resident id numbers use the region codes 3312xx, which belong to no real prefecture, so no
generated number can be a real person's.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from itertools import accumulate
from typing import Any

from rich.progress import Progress
from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from cityhub.kernel import audit
from cityhub.kernel.bulk import table_of
from cityhub.kernel.db import Base, is_postgres
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import Settings

DEMO_PASSWORD = "demo12345"  # noqa: S105 - the published password of every demo login
SEEDED_ACTION = "demo.seeded"


class DemoSize(StrEnum):
    TINY = "tiny"  # for tests
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@dataclass(frozen=True)
class DemoLogin:
    """A login the demo city offers, printed at the end of `cityhub demo`."""

    role: str
    username: str
    scope: str  # the org unit the role covers
    organization: str | None = None


@dataclass
class DemoContext:
    """What a domain's demo seeder gets: one transaction for the whole city, and its own RNG."""

    session: Session
    settings: Settings
    size: DemoSize
    seed: int
    rng: random.Random
    progress: Progress
    today: date
    logins: list[DemoLogin] = field(default_factory=list)  # shared by all seeders


@dataclass(frozen=True)
class Seeding:
    """The last demo city written into a database (kept in the audit chain)."""

    seed: int
    size: DemoSize
    logins: tuple[DemoLogin, ...]


def derive_rng(seed: int, name: str) -> random.Random:
    """An RNG for one purpose (a domain), stable across processes (unlike ``hash(str)``)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def reference_date(today: date | None = None) -> date:
    """1 January of the current year: ages are counted from it, so a seed gives one city per year."""
    return date((today or date.today()).year, 1, 1)


def spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts differing by at most one, larger first."""
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


# ---------------------------------------------------------------------------------------------------------
# People: names, ages, phones, resident id numbers


def _words(text: str) -> list[str]:
    return text.split()


# The most common surnames and their approximate share (per mille) of the population (2020 census).
_SURNAME_TABLE = _words("""
王 71.2  李 70.0  张 67.4  刘 51.0  陈 46.1  杨 32.2  黄 24.5  赵 21.9  吴 20.8  周 20.0  徐 14.5  孙 13.8
马 12.9  朱 12.6  胡 11.6  郭 11.5  何 10.6  林 10.1  高 10.0  罗 9.5   郑 9.1   梁 8.7   谢 7.0   宋 6.7
唐 6.6   许 6.3   韩 6.2   邓 6.1   冯 6.1   曹 6.0   彭 5.8   曾 5.7   肖 5.6   田 5.4   董 5.3   潘 5.2
袁 5.1   蔡 5.0   蒋 4.9   余 4.8   于 4.7   杜 4.6   叶 4.5   程 4.4   魏 4.3   苏 4.2   吕 4.1   丁 4.0
任 3.9   卢 3.8   姚 3.7   沈 3.6   钟 3.5   姜 3.4   崔 3.3   谭 3.2   陆 3.1   范 3.0   汪 2.9   廖 2.8
石 2.7   金 2.6   韦 2.5   贾 2.4   夏 2.3   付 2.2   方 2.2   邹 2.1   熊 2.1   白 2.0   孟 2.0   秦 1.9
邱 1.9   侯 1.8   江 1.8   尹 1.7   薛 1.7   闫 1.6   段 1.6   雷 1.5   龙 1.5   黎 1.4   史 1.4   陶 1.3
贺 1.3   毛 1.2   郝 1.2   顾 1.2   龚 1.1   邵 1.1   万 1.1   钱 1.0   戴 1.0   严 0.9   莫 0.9   孔 0.9
向 0.8   常 0.8   欧阳 0.2 司马 0.05 诸葛 0.03 上官 0.03
""")
SURNAMES = tuple(_SURNAME_TABLE[0::2])
_SURNAME_CUMULATIVE = tuple(accumulate(float(share) for share in _SURNAME_TABLE[1::2]))


@dataclass(frozen=True)
class _NamePool:
    """Given names of one generation and gender: whole popular names, and characters to combine."""

    names: tuple[str, ...]
    first: str
    second: str


def _pool(names: str, first: str, second: str) -> _NamePool:
    return _NamePool(tuple(names.split()), first, second)


# Given names follow fashions: (born before this year, male pool, female pool).
_GIVEN_NAMES: tuple[tuple[int, _NamePool, _NamePool], ...] = (
    (
        1960,
        _pool(
            "建国 国庆 建华 国强 志明 德明 卫国 建军 振华 福生 金根 永年 长林 宝山 树林 和平 学军 玉林 成才",
            "建国志德永金长福振文光树荣海宝根",
            "华明林生强民荣才富山平成发祥奎良",
        ),
        _pool(
            "秀英 桂英 玉兰 凤英 秀兰 桂兰 玉珍 淑珍 秀珍 美华 翠花 金凤 素芬 月娥 兰英 惠芳 桂芳 玉梅 秀芳",
            "秀桂玉淑凤素月美翠金兰惠彩爱巧雪",
            "英兰珍芳华梅娥霞琴凤仙花娣莲芬妹",
        ),
    ),
    (
        1980,
        _pool(
            "伟 勇 军 强 磊 斌 涛 刚 建华 志强 海涛 晓东 建平 卫东 国华 文斌 永刚 春雷 红军 立新 向东 志刚",
            "建志晓海国文永春立向明利卫小东新",
            "华强东平刚斌军峰明新伟勇涛杰辉林",
        ),
        _pool(
            "丽 红 艳 敏 芳 燕 娟 静 霞 玲 丽华 红梅 晓红 春燕 海燕 雪梅 丽萍 秀丽 爱华 晓燕 红霞 丽娟 美玲",
            "丽红晓春海雪秀美慧亚小素爱建卫玉",
            "华梅红燕英萍丽娟玲敏芳霞琴艳静云",
        ),
    ),
    (
        2000,
        _pool(
            "浩 杰 鹏 超 磊 伟 宇 鑫 俊杰 晓明 志伟 建伟 文杰 海洋 子龙 家豪 晨 亮 明辉 一鸣 振宇 鹏飞 嘉伟",
            "俊志文家明晓子天嘉振鹏建宇浩一海",
            "杰伟豪辉宇鹏飞明龙鸣涛超峰博阳鑫",
        ),
        _pool(
            "婷 丹 倩 洁 雪 琳 颖 晶 佳 慧 婷婷 晓燕 丹丹 倩倩 静怡 雨婷 佳琪 梦婷 晓雪 思雨 莉 璐 嘉怡 文静",
            "婷丹晓静雨佳梦思诗嘉文欣雪玉慧美",
            "婷怡琪雨雪燕娜丽静敏璐颖丹倩洁蕾",
        ),
    ),
    (
        10_000,
        _pool(
            "子轩 浩然 宇轩 俊熙 睿 博文 一诺 奕辰 子墨 宇航 皓轩 梓睿 铭泽 沐阳 浩宇 子豪 思远 天佑 嘉懿",
            "子浩宇俊梓睿博奕皓铭沐思天嘉承景",
            "轩然熙辰墨航泽阳宇豪远佑睿诚瑞霖",
        ),
        _pool(
            "子涵 欣怡 梓涵 诗涵 雨桐 可馨 梓萱 若汐 语桐 思彤 欣妍 梦琪 紫萱 佳怡 诗琪 雨欣 芷若 安琪 一诺",
            "子欣梓诗雨可若语思紫佳芷依梦安沐",
            "涵怡萱桐馨汐彤妍琪欣若晴然曦诺瑶",
        ),
    ),
)

# Share (per mille) of the population in each five-year age band, 0-4 ... 95-99 (2020 census, rounded).
AGE_BANDS = (55, 65, 63, 53, 53, 65, 88, 69, 66, 82, 87, 72, 52, 55, 37, 24, 15, 8, 2.5, 0.5)
MAX_AGE = 5 * len(AGE_BANDS) - 1

# Mobile number prefixes of the three carriers and the virtual operators (170/171).
MOBILE_PREFIXES = tuple(
    _words(
        """130 131 132 133 134 135 136 137 138 139 147 150 151 152 153 155 156 157 158 159 166 170 171 173 175
    176 177 178 180 181 182 183 184 185 186 187 188 189 191 195 198 199"""
    )
)

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def surname(rng: random.Random) -> str:
    """A surname drawn by its frequency in the population."""
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUMULATIVE)[0]


def given_name(rng: random.Random, gender: str, birth_year: int) -> str:
    """A given name in the fashion of the birth year; gender "M" or "F" (anything else: either)."""
    male, female = next((male, female) for before, male, female in _GIVEN_NAMES if birth_year < before)
    pool = male if gender == "M" or (gender != "F" and rng.random() < 0.5) else female
    if rng.random() < 0.5:
        return rng.choice(pool.names)
    return rng.choice(pool.first) + rng.choice(pool.second)


def sample_age(rng: random.Random, minimum: int = 0, maximum: int = MAX_AGE) -> int:
    """An age in [minimum, maximum] drawn from the national age pyramid."""
    candidates: list[tuple[int, int]] = []
    weights: list[float] = []
    for band, share in enumerate(AGE_BANDS):
        low, high = max(minimum, 5 * band), min(maximum, 5 * band + 4)
        if low <= high:
            candidates.append((low, high))
            weights.append(share * (high - low + 1) / 5)
    if not candidates:
        raise ValueError(f"no ages between {minimum} and {maximum}")
    low, high = rng.choices(candidates, weights=weights)[0]
    return rng.randint(low, high)


def birth_date_for_age(rng: random.Random, age: int, today: date) -> date:
    """A birthday at which someone is ``age`` years old on ``today``."""
    try:
        latest = today.replace(year=today.year - age)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year - age, day=28)
    return latest - timedelta(days=rng.randrange(365))


def mobile_number(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident identity number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def resident_id_number(region: str, birth_date: date, sequence: int) -> str:
    """Region code (6) + birth date (8) + sequence (3, odd for men) + check character."""
    if len(region) != 6 or not region.isdigit() or not 0 <= sequence <= 999:
        raise ValueError("region must be 6 digits and sequence 0..999")
    first17 = f"{region}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + id_check_digit(first17)


class IdNumberIssuer:
    """Unique resident id numbers: the sequence is random, odd for men, even for women (GB 11643)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: dict[tuple[str, date, int], set[int]] = {}

    def issue(self, region: str, birth_date: date, gender: str) -> str:
        parity = 1 if gender == "M" else 0
        used = self._used.setdefault((region, birth_date, parity), set())
        if len(used) == 500:
            raise ValueError(f"all 500 sequence numbers of {region} {birth_date} {gender} are taken")
        sequence = self._rng.randrange(500) * 2 + parity
        while sequence in used:
            sequence = self._rng.randrange(500) * 2 + parity
        used.add(sequence)
        return resident_id_number(region, birth_date, sequence)


# ---------------------------------------------------------------------------------------------------------
# Places: names and a simple, gap-free map layout

# Characters for made-up place names, each followed by its pinyin (for the English names).
PLACE_SYLLABLES = tuple(
    (word[0], word[1:])
    for word in _words(
        """春Chun 江Jiang 月Yue 明Ming 锦Jin 华Hua 晖Hui 苑Yuan 湾Wan 桥Qiao 塘Tang 滨Bin 湖Hu 山Shan
    溪Xi 庭Ting 新Xin 安An 和He 康Kang 宁Ning 泰Tai 丰Feng 盛Sheng 嘉Jia 兴Xing 长Chang 青Qing 翠Cui 碧Bi
    云Yun 星Xing 光Guang 阳Yang 东Dong 南Nan 杨Yang 柳Liu 梅Mei 竹Zhu 枫Feng 荷He 浦Pu 洲Zhou 澜Lan 汇Hui
    信Xin 诚Cheng"""
    )
)
ROAD_SUFFIXES = ("路", "街", "大道", "巷")
ROAD_SUFFIX_WEIGHTS = (6, 2, 1, 1)


def place_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct two-character place names as (Chinese, pinyin), e.g. ("春晖", "Chunhui")."""
    if count > len(PLACE_SYLLABLES) * (len(PLACE_SYLLABLES) - 1):
        raise ValueError(f"cannot make {count} distinct place names")
    names: dict[str, str] = {}
    while len(names) < count:
        (first, first_en), (second, second_en) = rng.sample(PLACE_SYLLABLES, 2)
        names.setdefault(first + second, first_en + second_en.lower())
    return list(names.items())


def road_name(rng: random.Random) -> str:
    (first, _), (second, _) = rng.sample(PLACE_SYLLABLES, 2)
    return first + second + rng.choices(ROAD_SUFFIXES, weights=ROAD_SUFFIX_WEIGHTS)[0]


@dataclass(frozen=True)
class Box:
    """A lon/lat rectangle: split it into neighbours that tile it, inset it, draw it as GeoJSON."""

    west: float
    south: float
    east: float
    north: float

    @classmethod
    def around(cls, lon: float, lat: float, width_m: float, height_m: float) -> Box:
        half_lon = width_m / 2 / _metres_per_degree_lon(lat)
        half_lat = height_m / 2 / METRES_PER_DEGREE_LAT
        return cls(lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.west + self.east) / 2, (self.south + self.north) / 2

    def split(self, count: int) -> list[Box]:
        """``count`` boxes tiling this one in near-square cells, row by row from the north-west."""
        lat = self.centre[1]
        width = (self.east - self.west) * _metres_per_degree_lon(lat)
        height = (self.north - self.south) * METRES_PER_DEGREE_LAT
        columns = max(1, round(math.sqrt(count * width / height)))
        rows = math.ceil(count / columns)
        row_height = (self.north - self.south) / rows
        boxes: list[Box] = []
        for row, cells in enumerate(spread(count, rows)):
            north = self.north - row * row_height
            cell_width = (self.east - self.west) / cells
            for cell in range(cells):
                west = self.west + cell * cell_width
                boxes.append(Box(west, north - row_height, west + cell_width, north))
        return boxes

    def inset(self, metres: float) -> Box:
        lon_margin = metres / _metres_per_degree_lon(self.centre[1])
        lat_margin = metres / METRES_PER_DEGREE_LAT
        return Box(
            self.west + lon_margin, self.south + lat_margin, self.east - lon_margin, self.north - lat_margin
        )

    def polygon(self) -> dict[str, Any]:
        """GeoJSON Polygon, counter-clockwise (RFC 7946), coordinates rounded to ~1 cm."""
        ring = [
            (self.west, self.south),
            (self.east, self.south),
            (self.east, self.north),
            (self.west, self.north),
        ]
        coordinates = [[round(lon, 7), round(lat, 7)] for lon, lat in [*ring, ring[0]]]
        return {"type": "Polygon", "coordinates": [coordinates]}

    def point(self, rng: random.Random) -> tuple[float, float]:
        """A random point inside, rounded to ~1 cm."""
        return (
            round(rng.uniform(self.west, self.east), 7),
            round(rng.uniform(self.south, self.north), 7),
        )


METRES_PER_DEGREE_LAT = 111_320.0


def _metres_per_degree_lon(lat: float) -> float:
    return METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))


# ---------------------------------------------------------------------------------------------------------
# Storage: ids, bulk inserts, emptying domain tables, remembering what was seeded


class IdAllocator:
    """Hands out primary keys after the table's largest, so a seeder knows ids (and paths) before inserting.

    Only for seeding, when nothing else writes the table; :func:`bulk_insert` moves PostgreSQL's sequence on.
    """

    def __init__(self, session: Session, table: type[Base] | Table) -> None:
        column = table_of(table).c.id
        self._next = int(session.scalar(select(func.max(column))) or 0) + 1

    def take(self) -> int:
        value = self._next
        self._next += 1
        return value


def domain_tables(domains: Sequence[str]) -> list[Table]:
    """The tables of the named domains (prefixed "<domain>_"), parents before children.

    The domains' models must be imported (``cityhub.domains.load_models``).
    """
    prefixes = tuple(f"{name}_" for name in domains)
    return [table for table in Base.metadata.sorted_tables if table.name.startswith(prefixes)]


def has_rows(session: Session, tables: Sequence[Table]) -> bool:
    return any(session.execute(select(1).select_from(table).limit(1)).first() for table in tables)


def delete_rows(session: Session, tables: Sequence[Table]) -> None:
    """Empty the tables (given parents first), in the session's transaction."""
    if is_postgres(session):
        names = ", ".join(table.name for table in tables)
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        return
    for table in reversed(tables):
        session.execute(table.delete())


def record_seeding(
    session: Session, seed: int, size: DemoSize, domains: Sequence[str], logins: Sequence[DemoLogin]
) -> None:
    """Note in the audit chain which demo city was written, so a second `cityhub demo` can recognise it."""
    audit.record(
        session,
        actor="system",
        action=SEEDED_ACTION,
        object_type="demo",
        object_id=str(seed),
        details={
            "seed": seed,
            "size": size.value,
            "domains": list(domains),
            "logins": [asdict(login) for login in logins],
        },
    )


def last_seeding(session: Session) -> Seeding | None:
    details = session.scalar(
        select(AuditRecord.details)
        .where(AuditRecord.action == SEEDED_ACTION)
        .order_by(AuditRecord.id.desc())
        .limit(1)
    )
    if details is None:
        return None
    logins = tuple(DemoLogin(**login) for login in details.get("logins", []))
    return Seeding(int(details["seed"]), DemoSize(details["size"]), logins)
