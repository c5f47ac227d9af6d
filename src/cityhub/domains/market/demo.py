"""The demo city's community market: every merchant organisation identity's demo opened (one or two per
community, brands such as 邻里生鲜 or 仁心大药房) is enrolled as an approved market merchant, with stores,
coupon batches of every kind, and coupons claimed, redeemed and given on by residents; one of them is
suspended (when at least three trade), one application waits for review and one was rejected.

Everything goes through the market's own service functions, as the API would: the "operator" login enrols
the existing organisations (``merchants.enrol``: no second organisation, no role granted), residents apply
(``merchants.apply``) and the operator reviews (``merchants.review``, reject and suspend only), owners open
stores and batches, residents claim (``coupons.claim``), owners and clerks redeem at the counter
(``coupons.redeem``). The "merchant_owner" login is the owner of record of the merchant it already works
for in identity, where "merchant_clerk" is its clerk; it gets a till key. The other organisations have no
staff in the demo, so the operator stands as their owner of record and a principal acting for the
organisation runs them. The "resident" login holds coupons of several merchants, one given by a neighbour.
The first two merchants run member cards (``members.save_program``; the first takes the citizen card): the
"resident" login and a few other customers join, earn points at the counter, and the "resident" login has
taken a reward.

Contents follow ``ctx.rng``; times follow the real clock (claims and validity must lie around now), and
coupon codes are drawn by the service from ``secrets``, so those two differ from one run to the next.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Grant,
    Principal,
    account_holders,
    account_id_of,
    get_organization_by_code,
    get_unit,
    organization_staff,
    person_of_account,
    system_principal,
    units_in_scope,
    usernames_of,
)
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Merchant, Store
from cityhub.domains.market.service import batches, coupons, members, merchants, stores
from cityhub.domains.market.service.access import REVIEW
from cityhub.kernel.db import utcnow
from cityhub.kernel.demo import METRES_PER_DEGREE_LAT, DemoContext, DemoSize, mobile_number, road_name
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import NotFound

OWNER_LOGIN = "merchant_owner"
CLERK_LOGIN = "merchant_clerk"
RESIDENT_LOGIN = "resident"
OPERATOR_LOGIN = "operator"
STAFF_ROLES = ("merchant_owner", "merchant_clerk")
# Residents who claim coupons (the "resident" login and resident0001, resident0002, ...).
CUSTOMERS = {DemoSize.TINY: 12, DemoSize.SMALL: 40, DemoSize.MEDIUM: 80, DemoSize.LARGE: 120}
NEAR_COMMUNITIES = 6  # residents claim at the merchants of the communities nearest the first one
STORE_SPREAD_M = 320.0  # how far from a community's centre a store may be
REDEEMED_SHARE = 0.35
SUSPEND_FROM = 3  # one merchant is suspended only when at least this many are enrolled (two keep trading)
SUSPENDED_REASON = "营业执照已过期，请上传新的营业执照后申请恢复。"
# Member cards of the first two merchants (the first takes the citizen card as its card): their levels, how
# many customers join each, and what the second reward costs.
MEMBER_LEVELS = (
    {"name": "普通会员", "name_en": "Member", "min_points": 0},
    {"name": "银卡会员", "name_en": "Silver", "min_points": 300, "discount_percent": 5},
    {"name": "金卡会员", "name_en": "Gold", "min_points": 1000, "discount_percent": 10},
)
CARD_MEMBERS = 6
VOUCHER_POINTS = 500
WEEK = schemas.WEEKDAYS

Hours = dict[str, list[list[str]]]


def _hours(*spans: tuple[str, str], days: tuple[str, ...] = WEEK) -> Hours:
    return {day: [list(span) for span in spans] for day in days}


ALL_DAY = _hours(("00:00", "24:00"))
WEEKDAYS_ONLY = WEEK[:5]
MON_TO_SAT = WEEK[:6]


@dataclass(frozen=True)
class StoreSpec:
    hours: Hours
    shopfront: str = ""  # appended to the street address


# What a brand offers, one batch of each kind (BatchIn fields without the terms, which the plans give).
def _cash(title: str, description: str, least_yuan: int, reduce_yuan: int) -> dict[str, Any]:
    return {
        "kind": "CASH",
        "title": title,
        "description": description,
        "least_cost_cents": least_yuan * 100,
        "reduce_cost_cents": reduce_yuan * 100,
    }


def _discount(title: str, description: str, percent_off: int) -> dict[str, Any]:
    return {"kind": "DISCOUNT", "title": title, "description": description, "discount_percent": percent_off}


def _gift(title: str, description: str, gift: str, value_yuan: int) -> dict[str, Any]:
    return {
        "kind": "GIFT",
        "title": title,
        "description": description,
        "gift": gift,
        "face_value_cents": value_yuan * 100,
    }


def _groupon(title: str, description: str, deal: str, price_yuan: int) -> dict[str, Any]:
    return {
        "kind": "GROUPON",
        "title": title,
        "description": description,
        "deal_detail": deal,
        "face_value_cents": price_yuan * 100,
    }


def _general(title: str, description: str, value_yuan: int = 0) -> dict[str, Any]:
    return {
        "kind": "GENERAL",
        "title": title,
        "description": description,
        "face_value_cents": value_yuan * 100,
    }


@dataclass(frozen=True)
class Brand:
    """How a brand of identity's demo (``MERCHANT_BRANDS``) trades: category, description, its stores
    (merchants open the first, some both) and an offer of every batch kind."""

    category: str
    description: str
    stores: tuple[StoreSpec, StoreSpec]
    offers: tuple[dict[str, Any], ...]

    def offer(self, kind: str) -> dict[str, Any]:
        return next(offer for offer in self.offers if offer["kind"] == kind)


BRANDS: dict[str, Brand] = {
    "邻里生鲜": Brand(
        "grocery",
        "社区生鲜超市，蔬菜、肉禽、蛋奶每天早上到货；晚上八点后蔬菜打折。",
        (StoreSpec(_hours(("06:30", "21:30")), "沿街商铺"), StoreSpec(_hours(("07:00", "21:00")), "底商")),
        (
            _cash("满50减8", "蔬菜、肉禽、蛋奶均可使用，每单限用一张。", 50, 8),
            _discount("蔬菜九折", "限蔬菜和水果，特价商品除外。", 10),
            _gift("满额送鸡蛋", "单笔满 30 元，到收银台领取。", "土鸡蛋 6 枚", 9),
            _groupon("周末家庭菜篮", "周六、周日到店自提。", "时令蔬菜 3 斤 + 猪肉 1 斤 + 鸡蛋 10 枚", 49),
            _general("会员日积分翻倍", "每周二会员日到店出示，积分翻倍。"),
        ),
    ),
    "快客便利店": Brand(
        "grocery",
        "24 小时便利店，代收快递、代缴水电费。",
        (StoreSpec(ALL_DAY, "底商"), StoreSpec(ALL_DAY, "沿街商铺")),
        (
            _cash("满30减5", "烟酒、奶粉除外，每单限用一张。", 30, 5),
            _discount("日用品八八折", "烟酒、奶粉及特价商品除外。", 12),
            _gift("早餐送豆浆", "早上 9 点前购买任意早餐可用。", "热豆浆 1 杯", 3),
            _groupon(
                "早餐套餐", "工作日早上 6 点至 10 点可用。", "饭团 1 个 + 茶叶蛋 1 个 + 热豆浆 1 杯", 10
            ),
            _general("代收快递免保管费", "快递超过三天未取，凭券免收一次保管费。", 2),
        ),
    ),
    "老杭帮面馆": Brand(
        "food",
        "现做手擀面和杭帮浇头，早上六点半开门；社区 70 岁以上老人早餐八折。",
        (
            StoreSpec(_hours(("06:30", "21:00")), "沿街商铺"),
            StoreSpec(_hours(("06:30", "14:00"), ("16:30", "21:00")), "1楼"),
        ),
        (
            _cash("满30减5", "堂食、外带均可使用，每单限用一张。", 30, 5),
            _discount("早餐九折", "早上 10 点前可用。", 10),
            _gift("加送卤蛋", "每碗面加送一个。", "卤蛋 1 个", 2),
            _groupon("双人套餐", "节假日通用。", "片儿川 2 碗 + 凉拌小菜 2 份 + 酸梅汤 2 杯", 48),
            _general("会员日加面不加价", "每周三会员日到店出示，加一份面不收费。", 3),
        ),
    ),
    "惠民早餐": Brand(
        "food",
        "社区平价早餐点，包子、油条、豆浆现做现卖。",
        (
            StoreSpec(_hours(("05:30", "10:30")), "早餐亭"),
            StoreSpec(_hours(("05:30", "10:30"), ("16:00", "19:00")), "沿街商铺"),
        ),
        (
            _cash("满15减3", "每单限用一张。", 15, 3),
            _discount("早餐九五折", "豆浆、粥品、包点通用。", 5),
            _gift("买二送一", "买两个包子送一个。", "鲜肉包 1 个", 2),
            _groupon("一周早餐卡", "7 天内每天一份。", "豆浆 1 杯 + 包子 2 个，共 7 份", 35),
            _general("老人加豆浆", "70 岁以上老人凭券免费加一杯豆浆。", 2),
        ),
    ),
    "小城咖啡": Brand(
        "food",
        "社区咖啡馆，手冲和烘焙甜点。",
        (
            StoreSpec(
                {**_hours(("07:30", "19:00"), days=MON_TO_SAT), "sun": [["09:00", "18:00"]]}, "沿街商铺"
            ),
            StoreSpec(_hours(("08:00", "18:00"), days=WEEKDAYS_ONLY), "写字楼大堂"),
        ),
        (
            _cash("满40减6", "饮品、甜点均可使用。", 40, 6),
            _discount("手冲咖啡八五折", "限手冲单品。", 15),
            _gift("开业赠饮", "开业第一周限量赠送。", "中杯美式咖啡 1 杯", 18),
            _groupon("双人下午茶", "下午 2 点至 5 点可用。", "拿铁 2 杯 + 司康 2 个", 58),
            _general("自带杯立减", "自带杯子购买任意饮品立减 2 元。", 2),
        ),
    ),
    "仁心大药房": Brand(
        "pharmacy",
        "医保定点药店，执业药师全天在岗；夜间售药窗口 24 小时开放。",
        (StoreSpec(_hours(("08:00", "22:00"))), StoreSpec(ALL_DAY, "夜间售药窗口")),
        (
            _cash("满100减15", "处方药、医保统筹支付部分不参与。", 100, 15),
            _discount("保健品九折", "限保健食品和医疗器械。", 10),
            _gift("免费领口罩", "到店领取，每人一份。", "医用外科口罩 10 只", 5),
            _groupon("家庭小药箱", "药师讲解用法。", "感冒、肠胃、外伤常用非处方药 6 种 + 体温计 1 支", 99),
            _general("会员日免费测血压血糖", "每月 8 日会员日，凭券免费测量一次血压和血糖。"),
        ),
    ),
    "德华洗衣": Brand(
        "housekeeping",
        "干洗、水洗、皮具护理，三天取件；社区内免费上门收送。",
        (
            StoreSpec(_hours(("08:30", "20:00"), days=MON_TO_SAT)),
            StoreSpec(_hours(("09:00", "19:00"), days=MON_TO_SAT), "收衣点"),
        ),
        (
            _cash("满100减20", "皮具护理除外。", 100, 20),
            _discount("羽绒服清洗八五折", "三天取件。", 15),
            _gift("免费熨烫一件", "送洗任意衣物可用。", "衬衫熨烫 1 件", 8),
            _groupon("换季洗护套餐", "三天取件，社区内上门收送。", "大衣 2 件 + 羽绒服 1 件干洗", 88),
            _general("免费上门收送", "社区内上门收衣、送衣一次不收费。", 5),
        ),
    ),
    "阳光书屋": Brand(
        "education",
        "社区书店和自习室，周末有少儿绘本阅读课。",
        (
            StoreSpec(
                {
                    **_hours(("15:30", "20:30"), days=WEEKDAYS_ONLY),
                    **_hours(("08:30", "17:30"), days=WEEK[5:]),
                },
                "2楼",
            ),
            StoreSpec(_hours(("09:00", "21:00")), "自习室"),
        ),
        (
            _cash("满60减10", "图书、文具均可使用。", 60, 10),
            _discount("图书九折", "新书、教辅通用。", 10),
            _gift("购书送书签", "购买任意图书可用。", "手工书签 1 套", 6),
            _groupon("绘本阅读课", "需提前一天电话预约。", "少儿绘本阅读课 4 节（每节 45 分钟）", 120),
            _general("自习室体验一天", "凭券免费使用自习室一天。", 15),
        ),
    ),
    "好日子水果": Brand(
        "grocery",
        "每日产地直采的时令水果，可在社区内配送。",
        (StoreSpec(_hours(("08:00", "22:00"))), StoreSpec(_hours(("08:00", "22:00")), "底商")),
        (
            _cash("满58减8", "社区内配送订单同样可用。", 58, 8),
            _discount("鲜果九五折", "礼盒除外。", 5),
            _gift("满额送香蕉", "单笔满 40 元可用。", "香蕉 1 把", 6),
            _groupon("家庭水果箱", "社区内免费配送。", "时令水果 5 种共 5 斤", 68),
            _general("免费切果", "购买西瓜、菠萝凭券免费切果装盒。"),
        ),
    ),
    "家和五金": Brand(
        "repair",
        "五金建材、水电维修，社区内上门换锁、修水管。",
        (
            StoreSpec(_hours(("08:00", "12:00"), ("13:30", "19:00"), days=MON_TO_SAT)),
            StoreSpec(_hours(("08:30", "18:00"), days=MON_TO_SAT), "建材市场"),
        ),
        (
            _cash("满100减12", "材料、工具均可使用。", 100, 12),
            _discount("灯具八八折", "限 LED 灯具。", 12),
            _gift("送生料带", "购买水暖件可用。", "生料带 2 卷", 3),
            _groupon("上门换水龙头", "含上门和安装，材料一并提供。", "普通冷热水龙头 1 个 + 上门安装", 89),
            _general("上门检测免费", "社区内上门检测不收费，维修另计。", 30),
        ),
    ),
}
# A brand this table does not know (identity's demo changed): a general shop.
OTHER_BRAND = Brand(
    "other",
    "社区小店。",
    (StoreSpec(_hours(("08:00", "20:00"))), StoreSpec(_hours(("09:00", "18:00"), days=MON_TO_SAT))),
    (
        _cash("满50减5", "每单限用一张。", 50, 5),
        _discount("全场九五折", "特价商品除外。", 5),
        _gift("进店有礼", "到店领取。", "小礼品 1 份", 5),
        _groupon("超值套餐", "到店使用。", "店内招牌商品套餐 1 份", 50),
        _general("会员日优惠", "会员日到店出示。"),
    ),
)


@dataclass(frozen=True)
class BatchSpec:
    """A batch of the brand's offer of ``kind``: its terms (stock, limits, transferable, ...), validity
    (``valid_days`` or a fixed range of ``fixed_days`` from today), how long it may be claimed, the share of
    customers who claim it, and what happens after."""

    kind: str
    terms: dict[str, Any]
    valid_days: int | None = None
    fixed_days: int | None = None
    claim_days: int = 14
    claim_share: float = 0.3
    first_store_only: bool = False  # else every store of the merchant
    sold_out: bool = False  # claimed until the stock is gone
    paused: bool = False  # paused after the claims


# Which batches a merchant runs, by its place in the enrolment: the first (the "merchant_owner" login's),
# the second, then the others in turn. Between the first two, the tiny city has every kind.
FIRST_PLAN = (
    BatchSpec(
        "CASH",
        {"stock": 300, "per_person_limit": 2, "per_day_limit": 1, "transferable": True},
        valid_days=30,
        claim_days=30,
        claim_share=0.6,
    ),
    BatchSpec("GROUPON", {"stock": 80}, fixed_days=30, claim_days=30, claim_share=0.3, first_store_only=True),
    BatchSpec(
        "GENERAL",
        {"stock": 500, "per_person_limit": 4, "per_day_limit": 1},
        valid_days=14,
        claim_days=28,
        claim_share=0.4,
    ),
)
SECOND_PLAN = (
    BatchSpec("GIFT", {"stock": 6}, valid_days=7, claim_days=7, sold_out=True),
    BatchSpec(
        "DISCOUNT",
        {"stock": 1000, "per_person_limit": 3, "per_day_limit": 1},
        valid_days=7,
        claim_days=21,
        claim_share=0.5,
        paused=True,
    ),
    BatchSpec("CASH", {"stock": 200}, fixed_days=14, claim_days=14, claim_share=0.25),
)
OTHER_PLANS = (
    (
        BatchSpec(
            "DISCOUNT",
            {"stock": 300, "per_person_limit": 2, "per_day_limit": 1, "stackable": True},
            valid_days=7,
            claim_days=14,
            claim_share=0.35,
        ),
        BatchSpec("CASH", {"stock": 200, "stackable": True}, fixed_days=10, claim_days=10, claim_share=0.25),
    ),
    (
        BatchSpec("GIFT", {"stock": 100}, valid_days=30, claim_days=30, claim_share=0.2),
        BatchSpec("GENERAL", {"stock": 300}, valid_days=30, claim_days=30, claim_share=0.25),
    ),
    (BatchSpec("GROUPON", {"stock": 40}, fixed_days=60, claim_days=30, claim_share=0.2),),
    (BatchSpec("CASH", {"stock": 100}, valid_days=60, claim_days=30, claim_share=0.15),),
)


@dataclass(frozen=True)
class Application:
    """An application that stays unapproved: ``fate`` pending or rejected (with ``reason``)."""

    name: str
    name_en: str
    category: str
    description: str
    fate: str
    reason: str | None = None


APPLICATIONS = (
    Application(
        "乐童托管",
        "Letong After-School Care",
        "education",
        "小学生放学后托管和作业辅导，场地在社区活动中心二楼；消防验收意见书正在办理，办好后补交。",
        "pending",
    ),
    Application(
        "速修手机维修",
        "Suxiu Phone Repair",
        "repair",
        "手机换屏、换电池，立等可取。",
        "rejected",
        "营业执照的经营范围不含电子产品维修，请变更经营范围后重新申请。",
    ),
)
# A community's address: city and district, street, number (identity's demo writes them so).
ADDRESS = re.compile(r"^(?P<district>.+?区)(?P<street>.+?(?:大道|路|街|巷))\d+号$")
SECOND_STORE = "二"  # 幸福店, 幸福二店


@dataclass(frozen=True)
class Actor:
    """A demo login acting in the market: its account, person, username and home community."""

    account_id: int
    person_id: int
    username: str
    community: Any  # the identity org unit


@dataclass
class Trading:
    """An enrolled merchant as the seeder drives it."""

    merchant: Merchant
    community: Any  # its organisation's community
    brand: Brand
    plan: tuple[BatchSpec, ...]
    owner: Principal  # acting for the organisation with merchant_owner's permissions
    owner_person: int
    stores: list[Store] = field(default_factory=list)
    batches: list[tuple[BatchSpec, schemas.BatchOut]] = field(default_factory=list)
    redeemers: list[Principal] = field(default_factory=list)
    suspended: bool = False
    redeemed: int = 0  # coupons redeemed so far, for taking turns at the counter


@dataclass(frozen=True)
class Held:
    """A claimed coupon: its code, the merchant, the batch, the holder's person id."""

    code: str
    shop: Trading
    batch: schemas.BatchOut
    holder: int


def seed(ctx: DemoContext) -> None:
    """Seed the market (``Domain.demo_seeder``)."""
    _MarketSeeder(ctx).run()


class _MarketSeeder:
    def __init__(self, ctx: DemoContext) -> None:
        self.ctx = ctx
        self.session: Session = ctx.session
        self.rng = ctx.rng
        self.tz = ctx.settings.timezone
        self.now = utcnow()
        local = self.now.astimezone(ZoneInfo(self.tz))
        self.midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self.communities: list[Any] = []
        self.near: list[Any] = []
        self.customers: list[Actor] = []

    def run(self) -> None:
        task = self.ctx.progress.add_task("market: merchants, stores, coupons", total=3)
        statement = units_in_scope(["/"])
        statement = statement.where(statement.selected_columns.kind == "community").order_by(
            statement.selected_columns.id
        )
        communities = [unit for unit in self.session.scalars(statement) if unit.lon is not None]
        home = communities[0]
        self.communities = communities
        self.near = sorted(communities, key=lambda unit: (_distance_m(home, unit), unit.id))[
            :NEAR_COMMUNITIES
        ]
        self.operator = self._operator()
        customers = self.customers = self._customers()
        shops = [
            self._enrol(index, organization, community)
            for index, (organization, community) in enumerate(self._organizations())
        ]
        self._applications(customers)
        self._till(shops[0])
        self.ctx.progress.advance(task)
        trading = [shop for shop in shops if shop.community in self.near]  # where the customers shop
        if len(shops) >= SUSPEND_FROM:  # the last one near the logins, not one of the first two
            ([shop for shop in shops[2:] if shop.community in self.near] or shops[2:])[-1].suspended = True
        held = self._claims(trading, customers)
        self.ctx.progress.advance(task)
        given = self._transfer(shops[0], held)
        self._redemptions([coupon for coupon in held if coupon.code != given])
        for number, shop in enumerate(shops[:2]):
            self._member_card(shop, takes_citizen_card=number == 0)
        for shop in shops:
            for spec, batch in shop.batches:
                if spec.paused:
                    batches.set_status(self.session, shop.owner, shop.merchant.id, batch.id, "paused")
            if shop.suspended:
                self._review(shop.merchant, "suspend", SUSPENDED_REASON)
        self.ctx.progress.advance(task)

    # -- people

    def _operator(self) -> Principal:
        """The "operator" login with its city-wide grant (the reviewer)."""
        root = system_principal(self.session, "demo", {REVIEW}).grants[0]
        account_id = account_id_of(self.session, OPERATOR_LOGIN)
        grant = Grant(
            "operator",
            root.org_unit_id,
            root.org_path,
            get_organization_by_code(self.session, "operator").id,
            access_catalog.permissions_of("operator"),
        )
        return Principal(
            "account", account_id, OPERATOR_LOGIN, person_of_account(self.session, account_id), (grant,)
        )

    def _customers(self) -> list[Actor]:
        """The "resident" login and the first resident0001... logins with an id number on file."""
        wanted = CUSTOMERS[self.ctx.size]
        holders = account_holders(self.session, wanted + 20, usernames=(RESIDENT_LOGIN,))
        names = usernames_of(self.session, [account_id for account_id, _person in holders])
        chosen = [
            self._person(account_id, person.id, names[account_id], person.home_unit_id)
            for account_id, person in holders
            if names[account_id].startswith(RESIDENT_LOGIN)
        ]
        if all(person.username != RESIDENT_LOGIN for person in chosen):  # no id number on file: still shops
            chosen.insert(0, self._login(RESIDENT_LOGIN))
        return chosen[:wanted]

    def _login(self, username: str) -> Actor:
        account_id = account_id_of(self.session, username)
        return self._person(account_id, person_of_account(self.session, account_id), username, None)

    def _person(self, account_id: int, person_id: int, username: str, home_unit_id: int | None) -> Actor:
        community = self.communities[0]
        if home_unit_id is not None:
            path = get_unit(self.session, home_unit_id).path
            community = next((unit for unit in self.communities if path.startswith(unit.path)), community)
        return Actor(account_id, person_id, username, community)

    def _resident(self, person: Actor) -> Principal:
        return self._acting(person, "resident", person.community, None)

    def _acting(self, person: Actor, role: str, unit: Any, organization_id: int | None) -> Principal:
        """The principal identity would load for the person, with the one grant that matters here."""
        grant = Grant(role, unit.id, unit.path, organization_id, access_catalog.permissions_of(role))
        return Principal("account", person.account_id, person.username, person.person_id, (grant,))

    # -- merchants, stores, batches

    def _organizations(self) -> list[tuple[Any, Any]]:
        """Identity's demo merchant organisations (``merchant-<community code>-<n>``, n = 1, 2, ...) with
        their communities; the one the "merchant_owner" login works for first."""
        found: list[tuple[Any, Any]] = []
        for community in self.communities:
            number = 1
            while True:
                try:
                    organization = get_organization_by_code(
                        self.session, f"merchant-{community.code}-{number}"
                    )
                except NotFound:
                    break
                if organization.kind == "merchant":
                    found.append((organization, community))
                number += 1
        owner = account_id_of(self.session, OWNER_LOGIN)
        first = next(
            (
                index
                for index, (organization, _community) in enumerate(found)
                if owner in {member.account_id for member in self._staff(organization.id)}
            ),
            0,
        )
        return [found[first], *found[:first], *found[first + 1 :]]

    def _staff(self, organization_id: int) -> list[Any]:
        return organization_staff(self.session, organization_id, STAFF_ROLES)

    def _review(self, merchant: Merchant, decision: str, reason: str | None) -> None:
        merchants.review(
            self.session,
            self.operator,
            merchant.id,
            schemas.ReviewIn.model_validate({"decision": decision, "reason": reason}),
        )

    def _enrol(self, index: int, organization: Any, community: Any) -> Trading:
        """Enrol the organisation (approved at once) and open its stores and batches. Its owner of record
        is its merchant_owner in identity, else the operator; it is run by a principal acting for it."""
        brand = BRANDS.get(organization.name.split("（")[0], OTHER_BRAND)
        staff = self._staff(organization.id)
        owners = [member for member in staff if member.role == "merchant_owner"]
        owner = self._login(owners[0].username) if owners else self._login(OPERATOR_LOGIN)
        data = schemas.MerchantIn.model_validate(
            {
                "name": organization.name,
                "name_en": organization.name_en,
                "category": brand.category,
                "licence_number": self._licence(),
                "contact_phone": mobile_number(self.rng),
                "description": brand.description,
                "community": community.code,  # ignored: the organisation's unit is the merchant's home
            }
        )
        merchant = merchants.enrol(self.session, self.operator, organization.id, owner.account_id, data)
        acting = self._acting(owner, "merchant_owner", community, organization.id)
        plan = FIRST_PLAN if index == 0 else SECOND_PLAN if index == 1 else OTHER_PLANS[(index - 2) % 4]
        shop = Trading(merchant, community, brand, plan, acting, owner.person_id, redeemers=[acting])
        for member in staff:  # identity's clerks redeem too
            if member.role == "merchant_clerk":
                shop.redeemers.append(
                    self._acting(self._login(member.username), member.role, community, organization.id)
                )
        stores_open = 2 if index % 2 == 0 else 1  # the first, third, ... open both of the brand's stores
        for number, store_spec in enumerate(brand.stores[:stores_open]):
            shop.stores.append(self._store(shop, store_spec, number))
        for batch_spec in plan:
            shop.batches.append((batch_spec, self._batch(shop, batch_spec)))
        return shop

    def _applications(self, customers: list[Actor]) -> None:
        """Residents' applications that stay unapproved: one waiting for review, one rejected."""
        applicants = [person for person in reversed(customers) if person.username != RESIDENT_LOGIN]
        for index, spec in enumerate(APPLICATIONS):
            applicant = applicants[index % len(applicants)]
            data = schemas.MerchantIn.model_validate(
                {
                    "name": spec.name,
                    "name_en": spec.name_en,
                    "category": spec.category,
                    "licence_number": self._licence(),
                    "contact_phone": mobile_number(self.rng),
                    "description": spec.description,
                    "community": applicant.community.code,
                }
            )
            merchant = merchants.apply(self.session, self._resident(applicant), data)
            merchant.code = f"M{self.rng.getrandbits(40):010X}"  # the service draws it from `secrets`
            if spec.fate == "rejected":
                self._review(merchant, "reject", spec.reason)

    def _licence(self) -> str:
        """A unified social credit code in form (92: an individual business) of the fictional city 331200."""
        alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        return "92331200" + "".join(self.rng.choice(alphabet) for _ in range(10))

    def _store(self, shop: Trading, spec: StoreSpec, number: int) -> Store:
        """The merchant's first store (named as its organisation) or second (幸福二店), in its community."""
        community = shop.community
        name, name_en = shop.merchant.name, shop.merchant.name_en or shop.merchant.name
        if number:
            short = community.name.removesuffix("社区")
            short_en = (community.name_en or "").removesuffix(" Community")
            name = f"{name.split('（')[0]}（{short}{SECOND_STORE}店）"
            name_en = f"{name_en.split(' (')[0]} ({short_en} 2)"
        found = ADDRESS.match(community.address or "")
        # Most stores on the community's own street, some round the corner.
        street = found["street"] if found and self.rng.random() < 0.7 else road_name(self.rng)
        district = found["district"] if found else ""
        distance = self.rng.uniform(40, STORE_SPREAD_M)
        bearing = self.rng.uniform(0, 2 * math.pi)
        lat = community.lat + distance * math.cos(bearing) / METRES_PER_DEGREE_LAT
        lon = community.lon + distance * math.sin(bearing) / (
            METRES_PER_DEGREE_LAT * math.cos(math.radians(community.lat))
        )
        data = schemas.StoreIn.model_validate(
            {
                "name": name,
                "name_en": name_en,
                "category": shop.merchant.category,
                "address": f"{district}{street}{self.rng.randint(1, 200)}号{spec.shopfront}",
                "phone": mobile_number(self.rng),
                "lon": round(lon, 7),
                "lat": round(lat, 7),
                "opening_hours": spec.hours,
            }
        )
        return stores.add_store(self.session, shop.owner, shop.merchant.id, data)

    def _batch(self, shop: Trading, spec: BatchSpec) -> schemas.BatchOut:
        timing: dict[str, Any] = {"claim_until": self.midnight + timedelta(days=spec.claim_days)}
        if spec.fixed_days is not None:
            timing["valid_from"] = self.midnight
            timing["valid_until"] = self.midnight + timedelta(days=max(spec.fixed_days, spec.claim_days))
        else:
            timing["valid_days"] = spec.valid_days
        if spec.sold_out:  # small enough for the demo's customers to empty it
            timing["stock"] = max(1, min(int(spec.terms["stock"]), len(self.customers) - 1))
        data = schemas.BatchIn.model_validate(
            {
                **shop.brand.offer(spec.kind),
                **spec.terms,
                **timing,
                "store_ids": [shop.stores[0].id] if spec.first_store_only else [],
            }
        )
        return batches.create(self.session, shop.owner, shop.merchant.id, data)

    def _till(self, shop: Trading) -> None:
        """A till key for the first merchant ("merchant_clerk" is already its clerk in identity)."""
        merchants.issue_pos_key(
            self.session, shop.owner, shop.merchant.id, schemas.PosKeyIn(name="收银台 1 号机")
        )

    # -- coupons

    def _claims(self, shops: list[Trading], customers: list[Actor]) -> list[Held]:
        """Residents claim within every limit (a refused claim would leave its tallies in this transaction);
        the coupons, in claim order."""
        resident = next((person for person in customers if person.username == RESIDENT_LOGIN), None)
        principals = {person.person_id: self._resident(person) for person in customers}
        held: list[Held] = []
        offers = [(shop, spec, batch) for shop in shops for spec, batch in shop.batches]
        for number, (shop, spec, batch) in enumerate(offers):
            eligible = [person for person in customers if person.person_id != shop.owner_person]
            wanted = batch.stock if spec.sold_out else max(1, round(spec.claim_share * len(eligible)))
            claimers = self.rng.sample(eligible, min(len(eligible), wanted, batch.stock))
            if not spec.sold_out and number % 2 == 0 and resident in eligible and resident not in claimers:
                claimers[0] = resident  # the "resident" login holds coupons of every other batch
            for person in claimers:
                coupon = coupons.claim(self.session, principals[person.person_id], batch.id, self.tz)
                held.append(Held(coupon.code, shop, batch, person.person_id))
        return held

    def _transfer(self, shop: Trading, held: list[Held]) -> str | None:
        """A neighbour gives the "resident" login one of the first merchant's transferable coupons."""
        resident = self._login(RESIDENT_LOGIN)
        transferable = [
            coupon
            for coupon in held
            if coupon.shop is shop and coupon.batch.transferable and coupon.holder != resident.person_id
        ]
        if not transferable:
            return None
        coupon = transferable[0]
        giver = next(person for person in self.customers if person.person_id == coupon.holder)
        coupons.transfer(self.session, self._resident(giver), coupon.code, RESIDENT_LOGIN, self.tz)
        return coupon.code

    def _redemptions(self, held: list[Held]) -> None:
        """About a third of each batch's coupons (and the "resident" login's first) are used at a counter,
        by the owner and the first shop's clerk in turn; none of the merchant about to be suspended."""
        resident = self._login(RESIDENT_LOGIN).person_id
        first_of_resident = next((coupon.code for coupon in held if coupon.holder == resident), None)
        chosen = {first_of_resident} if first_of_resident is not None else set()
        by_batch: dict[int, list[str]] = {}
        for coupon in held:
            by_batch.setdefault(coupon.batch.id, []).append(coupon.code)
        for codes in by_batch.values():
            chosen.update(self.rng.sample(codes, round(REDEEMED_SHARE * len(codes))))
        for number, coupon in enumerate(held):
            shop = coupon.shop
            if shop.suspended or coupon.code not in chosen:
                continue
            places = [
                store
                for store in shop.stores
                if not coupon.batch.store_ids or store.id in coupon.batch.store_ids
            ]
            store = self.rng.choice(places)
            data = schemas.RedemptionIn(
                codes=[coupon.code],
                store_id=store.id,
                amount_cents=self._order_amount(coupon.batch),
                client_key=f"demo-{shop.merchant.id}-{number:05d}",
            )
            redeemer = shop.redeemers[shop.redeemed % len(shop.redeemers)]  # in turn
            coupons.redeem(self.session, redeemer, shop.merchant.id, data, self.tz)
            shop.redeemed += 1

    def _order_amount(self, batch: schemas.BatchOut) -> int:
        """What the order cost before the coupon, in cents (whole yuan)."""
        if batch.kind == "CASH":
            return batch.least_cost_cents + self.rng.randrange(0, 60) * 100
        if batch.kind == "GROUPON":
            return batch.face_value_cents
        return self.rng.randrange(15, 200) * 100

    # -- member cards

    def _member_card(self, shop: Trading, takes_citizen_card: bool) -> None:
        """The shop's member card with two rewards, and its first members."""
        program = schemas.ProgramIn.model_validate(
            {
                "title": f"{shop.merchant.name.split('（')[0]}会员卡",
                "levels": MEMBER_LEVELS,
                "accepts_citizen_card": takes_citizen_card,
            }
        )
        members.save_program(self.session, shop.owner, shop.merchant.id, program)
        gift = shop.brand.offer("GIFT")
        first = schemas.RewardIn(
            title=gift["gift"], description=gift["description"], points_cost=100, stock=20
        )
        voucher = schemas.RewardIn(
            title="10 元代金券", description="下次消费抵 10 元。", points_cost=VOUCHER_POINTS
        )
        reward = members.add_reward(self.session, shop.owner, shop.merchant.id, first)
        members.add_reward(self.session, shop.owner, shop.merchant.id, voucher)
        self._card_members(shop, reward.id)

    def _card_members(self, shop: Trading, reward_id: int) -> None:
        """The "resident" login and a few other customers join and earn points at the counter; the "resident"
        login, three purchases of ¥60 or more (180 points and up) behind it, takes the first reward."""
        customers = [person for person in self.customers if person.person_id != shop.owner_person]
        customers.sort(key=lambda person: person.username != RESIDENT_LOGIN)
        till, settings = shop.redeemers[0], self.ctx.settings
        for number, person in enumerate(customers[:CARD_MEMBERS]):
            card, _joined = members.join(self.session, self._resident(person), shop.merchant.id)
            visits = 3 if person.username == RESIDENT_LOGIN else self.rng.randint(1, 4)
            for visit in range(visits):
                data = schemas.PurchaseIn(
                    card_number=card.number,
                    amount_cents=self.rng.randrange(60, 200) * 100,
                    store_id=self.rng.choice(shop.stores).id,
                    client_key=f"demo-points-{shop.merchant.id}-{number}-{visit}",
                )
                members.record_purchase(self.session, till, shop.merchant.id, data, settings)
            if person.username == RESIDENT_LOGIN:
                taken = schemas.RewardRedemptionIn(
                    card_number=card.number, reward_id=reward_id, client_key=f"demo-reward-{shop.merchant.id}"
                )
                members.redeem_reward(self.session, till, shop.merchant.id, taken, settings)


def _distance_m(one: Any, other: Any) -> float:
    """Roughly, between two units' centres (for choosing the communities near the first one)."""
    dy = (other.lat - one.lat) * METRES_PER_DEGREE_LAT
    dx = (other.lon - one.lon) * METRES_PER_DEGREE_LAT * math.cos(math.radians(one.lat))
    return math.hypot(dx, dy)
