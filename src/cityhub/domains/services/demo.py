"""The demo city's city services: the catalogue from ``demo_catalogue.json`` (loaded through the same import
as `cityhub services import`), and a year of department records, bills, appointment slots, bookings and
ratings for residents with a login — the "resident" login among them, so every page has something to show.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import account_holders
from cityhub.domains.services.models import (
    Application,
    ApplicationEvent,
    Bill,
    Booking,
    FollowUp,
    Item,
    Payment,
    QueryRecord,
    Rating,
    Slot,
)
from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.domains.services.service.desk import new_reference
from cityhub.kernel.demo import DemoContext, DemoSize
from cityhub.kernel.workdays import CalendarNotCoveredError, is_workday

CATALOGUE_FILE = Path(__file__).with_name("demo_catalogue.json")
PEOPLE = {DemoSize.TINY: 5, DemoSize.SMALL: 40, DemoSize.MEDIUM: 200, DemoSize.LARGE: 1000}
SLOT_TIMES = ("09:00", "09:30", "10:00", "10:30", "11:00", "14:00", "14:30", "15:00", "15:30", "16:00")
SLOT_DAYS = 10  # working days of slots before and after today
# 好差评 as residents give them: mostly satisfied, a few bad ones for the departments to follow up.
RATING_WEIGHTS = {5: 60, 4: 25, 3: 8, 2: 4, 1: 3}
COMPANIES = ("滨江科技有限公司", "钱塘建设集团", "西溪医药股份", "城东物流有限公司", "云栖软件有限公司")
PLACES = ("文三路与学院路口", "滨盛路", "江南大道", "之江路隧道口", "风情大道")
OFFENCES = (
    ("违反禁令标志", 20_000, 0),
    ("超速不足20%", 20_000, 3),
    ("违停", 15_000, 0),
    ("闯红灯", 20_000, 6),
)


def demo_catalogue() -> CatalogueIn:
    return CatalogueIn.model_validate(json.loads(CATALOGUE_FILE.read_text(encoding="utf-8")))


def seed(ctx: DemoContext) -> None:
    """Seed the catalogue and the residents' transactions (``Domain.demo_seeder``)."""
    task = ctx.progress.add_task("services: catalogue, records, bills, appointments", total=4)
    catalogue.import_catalogue(ctx.session, "system:demo", demo_catalogue())
    ctx.progress.advance(task)
    people = account_holders(ctx.session, PEOPLE[ctx.size], usernames=("resident",))
    city = _DemoServices(ctx, {item.code: item for item in ctx.session.scalars(select(Item))})
    for account_id, person in people:
        assert person.id_number_hash is not None
        city.records(person.id_number_hash)
        city.bills(account_id, person.id_number_hash)
    ctx.progress.advance(task)
    slots = city.slots()
    ctx.progress.advance(task)
    city.bookings([account_id for account_id, _person in people], {p.id: p for _a, p in people}, slots)
    city.applications(people)
    ctx.progress.advance(task)


@dataclass
class _DemoServices:
    ctx: DemoContext
    items: dict[str, Item]

    @property
    def today(self) -> date:
        """The real date, not the seed's reference date: slots must lie around now to be bookable, and
        records and bills around them (so one seed gives the same city on the same day)."""
        return datetime.now(ZoneInfo(self.ctx.settings.timezone)).date()

    @property
    def rng(self) -> random.Random:
        return self.ctx.rng

    @property
    def session(self) -> Session:
        return self.ctx.session

    def _months(self, count: int) -> list[date]:
        """The first days of the ``count`` months before this one, oldest first."""
        index = self.today.year * 12 + self.today.month - 1
        return [date((index - back) // 12, (index - back) % 12 + 1, 1) for back in range(count, 0, -1)]

    # -- department records --------------------------------------------------------------------------------

    def records(self, subject: str) -> None:
        base = self.rng.randrange(4_500, 25_000) * 100  # the monthly contribution base, in cents
        company = self.rng.choice(COMPANIES)
        balance = self.rng.randrange(5_000, 80_000) * 100
        medical = self.rng.randrange(500, 6_000) * 100
        rows: list[dict[str, Any]] = []
        for month in self._months(12):
            key = f"{month:%Y%m}"
            rows.append(
                self._record(
                    "rsj-pension-record",
                    subject,
                    key,
                    f"{month:%Y年%m月}养老保险",
                    month,
                    {
                        "base": base,
                        "personal": base * 8 // 100,
                        "employer": base * 16 // 100,
                        "company": company,
                    },
                )
            )
            deposit = base * 24 // 100
            balance += deposit
            rows.append(
                self._record(
                    "gjj-account",
                    subject,
                    key,
                    f"{month:%Y年%m月}汇缴",
                    month,
                    {"deposit": deposit, "balance": balance, "company": company},
                )
            )
            credited, spent = base * 2 // 100, self.rng.choice((0, 0, 1_850, 4_200, 12_600))
            medical += credited - min(spent, medical)
            rows.append(
                self._record(
                    "ybj-account",
                    subject,
                    key,
                    f"{month:%Y年%m月}个人账户",
                    month,
                    {"credited": credited, "spent": spent, "balance": medical},
                )
            )
        for n in range(self.rng.choice((0, 0, 1, 2))):
            offence, fine, points = self.rng.choice(OFFENCES)
            day = self.today - timedelta(days=self.rng.randrange(5, 300))
            rows.append(
                self._record(
                    "jj-violations",
                    subject,
                    f"V{day:%Y%m%d}{n}",
                    offence,
                    day,
                    {
                        "plate": f"浙A{self.rng.randrange(10_000, 99_999)}",
                        "place": self.rng.choice(PLACES),
                        "act": offence,
                        "fine": fine,
                        "points": points,
                        "handled": self.rng.choice(("已处理", "未处理")),
                    },
                )
            )
        self.session.execute(insert(QueryRecord), rows)

    def _record(
        self, item: str, subject: str, key: str, title: str, day: date, data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "item_id": self.items[item].id,
            "record_key": f"{key}-{subject[:12]}",
            "subject_hash": subject,
            "title": title,
            "occurred_on": day,
            "data": data,
        }

    # -- bills ---------------------------------------------------------------------------------------------

    def bills(self, account_id: int, subject: str) -> None:
        months = self._months(4)
        for kind, title, low, high in (
            ("gysy-water", "水费", 30, 120),
            ("gysy-electricity", "电费", 80, 400),
        ):
            for month in months:
                bill = self._bill(
                    kind,
                    subject,
                    f"{kind[5:].upper()}{month:%Y%m}-{subject[:10]}",
                    f"{month:%Y年%m月}{title}",
                    self.rng.randrange(low, high) * 100 + self.rng.randrange(100),
                    month,
                )
                if month != months[-1]:
                    self._paid(bill, account_id)
        if self.rng.random() < 0.5:
            premium = self._bill(
                "ybj-resident-pay",
                subject,
                f"YB{self.today.year + 1}-{subject[:10]}",
                f"{self.today.year + 1}年度城乡居民医保",
                38_000,
                self.today,
            )
            if self.rng.random() < 0.3:
                self._paid(premium, account_id)

    def _bill(self, item_code: str, subject: str, number: str, title: str, cents: int, month: date) -> Bill:
        item = self.items[item_code]
        issued = datetime.combine(month, time(9), tzinfo=UTC)
        bill = Bill(
            department_id=item.department_id,
            item_id=item.id,
            number=number,
            subject_hash=subject,
            title=title,
            amount_cents=cents,
            due_on=month + timedelta(days=45),
            issued_at=issued,
        )
        self.session.add(bill)
        return bill

    def _paid(self, bill: Bill, account_id: int) -> None:
        self.session.flush()
        paid_at = bill.issued_at + timedelta(days=self.rng.randrange(1, 20))
        bill.status, bill.paid_at = "paid", paid_at
        payment = Payment(
            reference=new_reference("P"),
            bill_id=bill.id,
            account_id=account_id,
            provider="sandbox",
            amount_cents=bill.amount_cents,
            status="succeeded",
            provider_transaction=new_reference("SBX"),
            created_at=paid_at,
            settled_at=paid_at,
        )
        self.session.add(payment)
        self.session.flush()
        payment.receipt_number = f"R{paid_at:%Y%m%d}{payment.id:08d}"

    # -- appointments ---------------------------------------------------------------------------------------

    def slots(self) -> list[Slot]:
        """Slots of every appointment item on the working days around today."""
        zone = ZoneInfo(self.ctx.settings.timezone)
        days = _workdays_around(self.today, SLOT_DAYS)
        slots = [
            Slot(
                item_id=item.id,
                starts_at=datetime.combine(day, time.fromisoformat(clock), tzinfo=zone).astimezone(UTC),
                ends_at=datetime.combine(day, time.fromisoformat(clock), tzinfo=zone).astimezone(UTC)
                + timedelta(minutes=30),
                place="一楼综合窗口",
                capacity=self.rng.choice((2, 3, 5)),
            )
            for item in self.items.values()
            if item.kind == "appointment"
            for day in days
            for clock in SLOT_TIMES
        ]
        self.session.add_all(slots)
        self.session.flush()
        return slots

    def bookings(self, accounts: list[int], people: dict[int, Any], slots: list[Slot]) -> None:
        """About one booking per account: past ones attended (most of them rated), future ones booked."""
        now = datetime.now(UTC)
        person_of = {account: person.id for (account, person) in zip(accounts, people.values(), strict=True)}
        departments = dict(self.session.execute(select(Item.id, Item.department_id)).all())
        for account in accounts:
            slot = self.rng.choice([s for s in slots if s.booked < s.capacity])
            past = slot.starts_at < now
            slot.booked += 1
            booking = Booking(
                reference=new_reference("B"),
                slot_id=slot.id,
                item_id=slot.item_id,
                account_id=account,
                person_id=person_of[account],
                status=("attended" if self.rng.random() < 0.9 else "missed") if past else "booked",
                created_at=slot.starts_at - timedelta(days=3),
            )
            self.session.add(booking)
            if booking.status == "attended" and self.rng.random() < 0.8:
                self.session.flush()
                self._rate(booking, departments[slot.item_id])

    def applications(self, people: list[tuple[int, Any]]) -> None:
        """Rent withdrawals of the provident fund by about a quarter of the people, at every stage."""
        item = self.items["gjj-rent-withdrawal"]
        for account_id, person in people:
            if (
                account_id != people[0][0] and self.rng.random() >= 0.25
            ):  # the "resident" login always applies
                continue
            path = self.rng.choice(APPLICATION_PATHS)
            start = datetime.now(UTC) - timedelta(days=self.rng.randrange(2, 20))
            application = Application(
                reference=new_reference("A"),
                item_id=item.id,
                department_id=item.department_id,
                account_id=account_id,
                person_id=person.id,
                status=path[-1][0],
                answers={
                    "name": person.name,
                    "phone": person.phone,
                    "amount": self.rng.randrange(10, 60) * 10_000,
                    "lease_start": (start.date() - timedelta(days=60)).isoformat(),
                    "monthly_rent": self.rng.randrange(15, 60) * 10_000,
                    "no_home": True,
                    "remarks": None,
                },
                created_at=start,
                changed_at=start + timedelta(days=len(path) - 1),
            )
            self.session.add(application)
            self.session.flush()
            self.session.add_all(
                ApplicationEvent(
                    application_id=application.id,
                    status=status,
                    note=note,
                    actor="system:demo",
                    by_department=step > 0,
                    at=start + timedelta(days=step),
                )
                for step, (status, note) in enumerate(path)
            )

    def _rate(self, booking: Booking, department_id: int) -> None:
        level = self.rng.choices(list(RATING_WEIGHTS), weights=list(RATING_WEIGHTS.values()))[0]
        rating = Rating(
            subject_kind="booking",
            subject_id=booking.id,
            item_id=booking.item_id,
            department_id=department_id,
            account_id=booking.account_id,
            level=level,
            comment={1: "等了一个多小时，窗口只开了一个", 2: "材料要求没有提前说清楚"}.get(level, ""),
        )
        self.session.add(rating)
        if level <= 2:
            self.session.flush()
            self.session.add(FollowUp(rating_id=rating.id, department_id=department_id))


# An application's way so far, and the department's notes on it.
APPLICATION_PATHS = (
    (("submitted", ""),),
    (("submitted", ""), ("accepted", "")),
    (("submitted", ""), ("needs_more", "请补充房东身份证复印件")),
    (("submitted", ""), ("accepted", ""), ("approved", "提取款将于3个工作日内到账")),
)


def _workdays_around(today: date, count: int) -> list[date]:
    """``count`` working days before today and ``count`` from today on. Where the holiday calendar has no
    data yet (a year not yet announced), the demo falls back to Monday-Friday rather than fail."""
    days: list[date] = []
    for step in (-1, 1):
        day, found = today if step == 1 else today - timedelta(days=1), 0
        while found < count:
            if _working(day):
                days.append(day)
                found += 1
            day += timedelta(days=step)
    return sorted(days)


def _working(day: date) -> bool:
    try:
        return is_workday(day)
    except CalendarNotCoveredError:
        return day.weekday() < 5
