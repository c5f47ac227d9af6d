"""The demo city's 12345 hotline: a classification tree tied to the city's departments (with emergencies and
questions of its own), the knowledge base, today's duty roster, and tickets of the last weeks at every
stage, reported by residents from inside the city's communities; and participation: city projects with
milestones and ratings, residents' proposals with supports, comments and official answers (one comment
waits for the moderators), and surveys, one open and one closed with its answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from cityhub.domains.voice.service import (
    alarm,
    categories,
    knowledge,
    projects,
    proposals,
    rollup,
    surveys,
    tickets,
)
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
    session.flush()
    rollup.rebuild(session, clock.tz)  # _age closes tickets behind the workflow's back
    ctx.progress.advance(task)
    seed_participation(ctx)


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


# -- participation -------------------------------------------------------------------------------------------

# (code, Chinese name, English name, department, milestones as (title, days from today, progress, reached))
PROJECTS = (
    (
        "park-riverside",
        "滨江公园改造",
        "Riverside park renovation",
        "dept-housing",
        (("设计方案公示", -60, 10, True), ("步道与照明施工", -10, 60, True), ("绿化与验收", 45, 100, False)),
    ),
    (
        "lift-retrofit",
        "老旧小区加装电梯",
        "Lifts for old residential buildings",
        "dept-housing",
        (
            ("居民意见征集", -30, 20, True),
            ("首批 12 部电梯开工", 30, 50, False),
            ("全部投用", 180, 100, False),
        ),
    ),
    (
        "bus-15min",
        "15 分钟社区微循环公交",
        "15-minute community shuttle buses",
        "dept-transport",
        (("线路试运行", 20, 40, False), ("正式开通", 90, 100, False)),
    ),
)
# (title, body, state the city gave it, project that carries it out, share of residents who support it)
PROPOSALS = (
    (
        "滨江步道加装路灯",
        "滨江步道晚上太暗，散步和夜跑都不安全，建议每五十米加装一盏节能路灯。",
        "accepted",
        "park-riverside",
        1.0,
    ),
    (
        "社区食堂延长营业时间",
        "社区老年食堂晚上五点就关门，上班的子女没法陪老人吃饭，建议延长到七点。",
        "evaluating",
        None,
        0.6,
    ),
    (
        "小区增设电动自行车充电棚",
        "楼道里给电瓶车充电很危险，建议每个小区增设带消防设施的集中充电棚。",
        "open",
        None,
        0.4,
    ),
    ("学校门口设置护学岗", "上下学高峰期学校门口车流量大，建议设置护学岗和临时停车区。", "open", None, 0.2),
    (
        "把广场舞时间限制在晚上九点前",
        "广场舞音响太大，影响居民休息，建议晚上九点后停止。",
        "rejected",
        None,
        0.3,
    ),
)
ANSWERS = {
    "accepted": "采纳。已纳入滨江公园改造工程，路灯随步道与照明施工一并安装。",
    "evaluating": "民政部门正在评估各社区食堂的人员配置，一个月内答复。",
    "rejected": "不予采纳：现行规定已要求晚上十点后停止使用音响，将加强巡查。",
}
COMMENTS = ("支持！晚上带孩子散步确实太黑了。", "同意，希望尽快落实。", "建议同时加装监控探头。")
SPAM = "加微信领取免费礼品，名额有限！"


def seed_participation(ctx: DemoContext) -> None:
    """Projects, proposals and their supports, comments and answers; thresholds scaled to the demo's size."""
    task = ctx.progress.add_task("voice: participation", total=2)
    session = ctx.session
    residents = [
        Principal("account", account_id, person.name, person.id, ())
        for account_id, person in account_holders(session, TICKETS[ctx.size], usernames=("resident",))
    ]
    city = system_principal(session, "demo", {projects.MANAGE, proposals.ANSWER, proposals.MODERATE})
    local_today = datetime.now(ZoneInfo(ctx.settings.timezone)).date()  # milestones around the real date
    for code, zh, en, department, milestones in PROJECTS:
        projects.save(
            session, city, schemas.ProjectIn(code=code, name_zh=zh, name_en=en, department=department)
        )
        for title, days, progress, reached in milestones:
            due = local_today + timedelta(days=days)
            step = projects.add_milestone(
                session, city, code, schemas.MilestoneIn(title=title, due_on=due, progress=progress)
            )
            if reached:
                reached_in = schemas.MilestoneReachedIn(reached_on=due)
                projects.reach_milestone(session, city, code, step.id, reached_in, ctx.settings.timezone)
        for n, resident in enumerate(residents[1:]):
            level = 5 - (n + len(code)) % 3  # mostly satisfied, a few fair
            projects.rate(session, resident, code, schemas.ProjectRatingIn(level=level))
    ctx.progress.advance(task)
    # a small city needs fewer supports than the default threshold: a quarter of its residents
    settings = domain_settings(VoiceSettings).model_copy(
        update={"proposal_support_threshold": max(len(residents) // 4, 2)}
    )
    for n, (title, body, state, project, share) in enumerate(PROPOSALS):
        author = residents[(n + 1) % len(residents)]
        made = proposals.propose(session, author, schemas.ProposalIn(title=title, body=body), settings)
        backers = [r for r in residents if r.person_id != author.person_id][: round(share * len(residents))]
        for backer in backers:
            proposals.support(session, backer, made.id, settings)
        for text, commenter in zip(COMMENTS[: 3 - n % 3], backers, strict=False):
            proposals.comment(session, commenter, made.id, schemas.CommentIn(body=text))
        if state != "open":
            answer = schemas.ProposalAnswerIn(state=state, answer=ANSWERS[state], project=project)
            proposals.answer(session, city, made.id, answer)
        if n == 1 and backers:  # spam under a popular proposal, reported by its author
            spam = proposals.comment(session, backers[-1], made.id, schemas.CommentIn(body=SPAM))
            flag = schemas.FlagIn(target="comment", id=spam.id, reason="spam")
            proposals.flag(session, author, flag, settings)
    ctx.progress.advance(task)
    _surveys(ctx, residents)


ELDERLY_CARE: list[dict[str, Any]] = [
    {
        "key": "canteen",
        "kind": "single",
        "text": "您或家中老人多久去一次社区老年食堂？",
        "options": [
            {"key": "daily", "label": "几乎每天"},
            {"key": "weekly", "label": "每周几次"},
            {"key": "rarely", "label": "很少或从不"},
        ],
    },
    {
        "key": "wanted",
        "kind": "multiple",
        "text": "您最希望社区增加哪些养老服务？（最多选两项）",
        "max_choices": 2,
        "options": [
            {"key": "meals", "label": "助餐送餐"},
            {"key": "health", "label": "上门健康服务"},
            {"key": "daycare", "label": "日间照料"},
            {"key": "activities", "label": "文体活动"},
        ],
    },
    {"key": "satisfaction", "kind": "scale", "text": "您对目前社区养老服务的满意度（1 很不满意，5 很满意）"},
    {"key": "ideas", "kind": "text", "text": "其他意见和建议", "required": False},
]
PARK_PLAN: list[dict[str, Any]] = [
    {
        "key": "plan",
        "kind": "single",
        "text": "您更支持哪个改造方案？",
        "options": [
            {"key": "a", "label": "方案一：保留大草坪"},
            {"key": "b", "label": "方案二：增设儿童乐园"},
        ],
    },
    {"key": "need", "kind": "scale", "text": "您认为改造的必要性有多大？"},
]
IDEAS = ("希望食堂周末也开门。", "上门服务最好能预约到具体时间。", "")


def _surveys(ctx: DemoContext, residents: list[Principal]) -> None:
    """An open survey half the residents answered, and a closed one with its results."""
    session, now = ctx.session, datetime.now(UTC)
    city = system_principal(session, "demo", {surveys.MANAGE})
    for code, title, questions, share in (
        ("elderly-care-2026", "社区养老服务需求调查", ELDERLY_CARE, 0.5),
        ("park-plan", "滨江公园改造方案意见征集", PARK_PLAN, 0.8),
    ):
        published = schemas.SurveyIn.model_validate(
            {
                "code": code,
                "title": title,
                "questions": questions,
                "opens_at": now - timedelta(days=40),
                "closes_at": now + timedelta(days=20),
            }
        )
        surveys.save(session, city, published)
        for n, resident in enumerate(residents[1 : 1 + round(share * len(residents))]):
            surveys.answer(session, resident, code, schemas.SurveyAnswersIn(answers=_answers(questions, n)))
        if code == "park-plan":  # ended ten days ago; its results stay public
            surveys.save(session, city, published.model_copy(update={"closes_at": now - timedelta(days=10)}))


def _answers(questions: list[dict[str, Any]], n: int) -> dict[str, str | int | list[str]]:
    """A varied, valid set of answers for the n-th respondent."""
    answers: dict[str, str | int | list[str]] = {}
    for question in questions:
        keys = [option["key"] for option in question.get("options", [])]
        if question["kind"] == "single":
            answers[question["key"]] = keys[n % len(keys)]
        elif question["kind"] == "multiple":
            answers[question["key"]] = [keys[n % len(keys)], keys[(n + 1) % len(keys)]]
        elif question["kind"] == "scale":
            answers[question["key"]] = 5 - n % 3
        elif IDEAS[n % len(IDEAS)]:
            answers[question["key"]] = IDEAS[n % len(IDEAS)]
    return answers
