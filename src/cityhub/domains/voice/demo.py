"""The demo city's 12345 hotline: a classification tree tied to the city's departments (with emergencies and
questions of its own), the knowledge base, today's duty roster, and tickets of the last weeks at every
stage, reported by residents from inside the city's communities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Principal,
    account_holders,
    accounts_holding,
    get_organization_by_code,
    system_principal,
    units_in_scope,
)
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Duty, Ticket, TicketEvent
from cityhub.domains.voice.service import alarm, categories, knowledge, tickets
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.demo import DemoContext, DemoSize
from cityhub.kernel.settings import domain_settings

# (code, Chinese name, English name, handling organisation or None for the operator to dispatch)
CATEGORY_TREE = (
    ("01", "城乡建设", "Urban and rural construction", None),
    ("01.01", "物业管理", "Property management", "dept-housing"),
    ("01.02", "违章搭建", "Illegal construction", "dept-housing"),
    ("01.03", "房屋倒塌", "Collapsed structure", "dept-housing"),
    ("02", "交通运输", "Transport", None),
    ("02.01", "道路设施损坏", "Damaged roads and street furniture", "dept-transport"),
    ("02.02", "公交服务", "Bus services", "dept-transport"),
    ("02.03", "道路积水", "Flooded roads", "dept-transport"),
    ("02.04", "路灯故障", "Street light out", "dept-transport"),
    ("03", "劳动和社会保障", "Labour and social security", None),
    ("03.01", "社保缴费", "Social insurance contributions", "dept-hrss"),
    ("03.02", "欠薪与劳动纠纷", "Unpaid wages and labour disputes", "dept-hrss"),
    ("04", "卫生健康", "Health", None),
    ("04.01", "医疗服务", "Medical services", "dept-health"),
    ("05", "公共安全", "Public safety", None),
    ("05.01", "噪音扰民", "Noise nuisance", "dept-police"),
    ("05.02", "治安隐患", "Public order hazards", "dept-police"),
    ("05.03", "燃气泄漏", "Gas smell", "dept-police"),
    ("05.04", "火灾隐患", "Fire risk", "dept-police"),
    ("06", "民政服务", "Civil affairs", None),
    ("06.01", "养老服务", "Elderly care", "dept-civil"),
    ("99", "其他", "Other", None),
)
EMERGENCY_CODES = frozenset({"01.03", "02.03", "05.03", "05.04"})
QUESTIONS = {
    "02.04": [
        {"code": "pole", "datatype": "string", "description": "灯杆编号（杆身上的铭牌）", "order": 1},
        {
            "code": "state",
            "datatype": "singlevaluelist",
            "description": "现象",
            "required": True,
            "order": 2,
            "values": [
                {"key": "dark", "name": "不亮"},
                {"key": "blink", "name": "闪烁"},
                {"key": "down", "name": "倒伏"},
            ],
        },
    ],
    "02.01": [
        {
            "code": "size",
            "datatype": "singlevaluelist",
            "description": "损坏面积",
            "order": 1,
            "values": [{"key": "small", "name": "小于 1 平方米"}, {"key": "large", "name": "1 平方米以上"}],
        }
    ],
}
ARTICLES = (
    (
        "03",
        "灵活就业人员如何缴纳养老保险？",
        "持身份证到社保经办窗口或在“城市服务—社保”中办理灵活就业参保登记，按月或按季缴费，"
        "缴费基数可在上年度全省平均工资的 60%～300% 之间自选。",
    ),
    (
        "03",
        "社保卡丢了怎么补办？",
        "可在“城市服务—社保”在线挂失，再到任一合作银行网点补卡，当场可领临时卡，新卡约 7 个工作日制成。",
    ),
    (
        "01",
        "居住证怎么办理？",
        "持身份证、租房合同或房产证明到所在社区服务中心申请居住证，材料齐全的当场受理，15 个工作日内领证。",
    ),
    (
        "02",
        "公交卡余额怎么退？",
        "记名公交卡可在公交集团服务网点办理退卡退余额；不记名卡余额不退，可继续使用或转入城市服务电子卡。",
    ),
    (
        "04",
        "怎么预约社区医院的家庭医生？",
        "在“城市服务—医疗”中选择所在社区卫生服务中心，签约家庭医生后可在线预约门诊和上门随访。",
    ),
    (
        "06",
        "老年人乘公交有什么优惠？",
        "本市户籍及持居住证的 65 周岁以上老人可申领老年卡，免费乘坐市区公交；60～64 周岁半价。",
    ),
    (
        "05",
        "夜间噪音扰民可以找谁？",
        "22 时至次日 6 时的生活噪音可拨打 110 或通过 12345 反映，商铺经营噪音由属地执法部门处理。",
    ),
    (
        "01",
        "小区电梯坏了应该找谁修？",
        "先联系物业服务企业报修；物业 24 小时内未处理的，可通过 12345 反映，由住建部门督促维修。",
    ),
)
REPORTS = (
    ("help", "01.01", "小区电梯已经停运三天，老人上下楼很困难，请尽快维修。"),
    ("complaint", "05.01", "楼下商铺每晚十点后还在大声播放音乐，影响休息。"),
    ("report", "01.02", "隔壁楼顶正在违规加盖房屋，存在安全隐患。"),
    ("help", "02.01", "路口人行道地砖松动，下雨天容易滑倒。"),
    ("suggestion", "02.02", "建议增加早高峰时段公交班次，车厢太拥挤。"),
    ("consultation", "03.01", "灵活就业人员怎么缴纳养老保险？"),
    ("complaint", "03.02", "公司已经拖欠两个月工资，请帮忙协调。"),
    ("suggestion", "06.01", "希望社区增设老年食堂。"),
    ("complaint", "04.01", "社区卫生服务中心周末不开门，看病不方便。"),
    ("help", "99", "小区门口的流浪狗较多，孩子上学害怕。"),
)
EMERGENCY = ("help", "05.03", "单元楼道里闻到很浓的煤气味，请马上派人来看看！")
TICKETS = {DemoSize.TINY: 6, DemoSize.SMALL: 30, DemoSize.MEDIUM: 150, DemoSize.LARGE: 600}


def seed(ctx: DemoContext) -> None:
    task = ctx.progress.add_task("voice: 12345 categories and tickets", total=2)
    session, rng = ctx.session, ctx.rng
    units = list(session.scalars(units_in_scope(["/"])))
    tree = schemas.CategoriesIn(
        categories=[
            schemas.CategoryIn(
                code=code,
                name_zh=zh,
                name_en=en,
                organization_code=organization,
                emergency=code in EMERGENCY_CODES,
                attributes=[schemas.AttributeIn.model_validate(raw) for raw in QUESTIONS.get(code, [])],
            )
            for code, zh, en, organization in CATEGORY_TREE
        ]
    )
    operator = system_principal(session, "demo", {categories.MANAGE, knowledge.MANAGE})
    categories.import_categories(session, operator, tree)
    for category, title, body in ARTICLES:
        knowledge.save(session, operator, schemas.ArticleIn(title=title, body=body, category=category))
    _roster(session)
    ctx.progress.advance(task)
    communities = [
        unit for unit in units if unit.kind == "community" and unit.lon is not None and unit.lat is not None
    ]
    reporters = account_holders(session, TICKETS[ctx.size], usernames=("resident",))
    clock = tickets.Clock(domain_settings(VoiceSettings), ctx.settings.timezone)
    for n in range(TICKETS[ctx.size] + 1):
        account_id, person = reporters[n % len(reporters)]
        kind, category, text = REPORTS[n % len(REPORTS)] if n < TICKETS[ctx.size] else EMERGENCY
        place = rng.choice(communities) if communities else None
        reporter = Principal("account", account_id, person.name, person.id, ())
        given = schemas.TicketIn(
            type=kind,
            category=category,
            description=text,
            address=place.name if place else "",
            lon=place.lon + rng.uniform(-0.002, 0.002) if place and place.lon is not None else None,
            lat=place.lat + rng.uniform(-0.002, 0.002) if place and place.lat is not None else None,
        )
        made = tickets.intake(session, reporter, given, clock)
        if made.emergency:
            continue  # on the live board, waiting for the staff on duty
        _age(
            session,
            made.number,
            days=rng.randrange(0, 20),
            stage=rng.choice(("new", "signed", "replied", "closed")),
        )
    ctx.progress.advance(task)


def _roster(session: Session) -> None:
    """Today's duty: the first police officer for the police's emergencies, the first operator for the
    hotline."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    police = get_organization_by_code(session, "dept-police")
    for organization_id, holders in (
        (police.id, accounts_holding(session, alarm.HANDLE, police.id)),
        (None, accounts_holding(session, alarm.DISPATCH)),
    ):
        if holders:
            session.add(
                Duty(
                    organization_id=organization_id,
                    account_id=holders[0],
                    starts_at=now,
                    ends_at=now + timedelta(days=1),
                )
            )


def _age(session: Session, number: str, days: int, stage: str) -> None:
    """Move a fresh demo ticket back in time and along the workflow, as if it had been handled."""
    ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
    shift = timedelta(days=days)
    ticket.created_at -= shift
    ticket.deadline_at -= shift
    if ticket.sign_due_at is not None:
        ticket.sign_due_at -= shift
    for event in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)):
        event.at -= shift
    if ticket.status != "dispatched" or stage == "new":
        return
    steps = [("signed", "dispatched", "handling", "")]
    if stage in ("replied", "closed"):
        steps.append(("replied", "handling", "replied", "已安排人员处理，感谢您的反映。"))
    if stage == "closed":
        steps.append(("callback", "replied", "closed", ""))
    at = ticket.created_at
    for action, before, after, note in steps:
        at += timedelta(hours=20)
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=min(at, datetime.now(UTC)),
                actor="system:demo",
                action=action,
                from_status=before,
                to_status=after,
                note=note,
            )
        )
    ticket.status = steps[-1][2]
    ticket.signed_at = ticket.created_at + timedelta(hours=20)
    if stage in ("replied", "closed"):
        ticket.replied_at, ticket.reply = ticket.signed_at + timedelta(hours=20), steps[1][3]
    if stage == "closed":
        ticket.satisfaction, ticket.closed_at = 5 if days % 3 else 4, ticket.replied_at
