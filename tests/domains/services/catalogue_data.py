"""A small bilingual catalogue for the services tests (the demo file is tested on its own)."""

from __future__ import annotations

from typing import Any


def text(zh: str, en: str) -> dict[str, str]:
    return {"zh_CN": zh, "en": en}


def item(
    code: str, department: str, category: str, kind: str, zh: str, en: str, **extra: Any
) -> dict[str, Any]:
    return {
        "code": code,
        "department": department,
        "category": category,
        "kind": kind,
        "name": text(zh, en),
        **extra,
    }


CATALOGUE: dict[str, Any] = {
    "departments": [
        {
            "code": "gjj",
            "name": text("住房公积金管理中心", "Housing Provident Fund Centre"),
            "phone": "12329",
        },
        {"code": "crj", "name": text("出入境管理局", "Exit-Entry Administration"), "icon": "globe"},
        {"code": "rsj", "name": text("人力资源和社会保障局", "Human Resources and Social Security Bureau")},
    ],
    "categories": [
        {"code": "housing", "name": text("住房", "Housing"), "icon": "home"},
        {"code": "exit-entry", "name": text("出入境", "Exit and entry"), "icon": "globe"},
        {"code": "social-security", "name": text("社保", "Social security"), "icon": "shield"},
    ],
    "life_events": [
        {"code": "buying-a-home", "name": text("购房", "Buying a home"), "icon": "home"},
        {
            "code": "retiring",
            "name": text("退休", "Retiring"),
            "summary": text("退休前后要办的事", "Before and after"),
        },
    ],
    "items": [
        item(
            "gjj-balance",
            "gjj",
            "housing",
            "query",
            "公积金账户余额查询",
            "Provident fund balance",
            life_events=["buying-a-home"],
            keywords={"zh_CN": ["公积金", "余额"], "en": ["provident fund"]},
            summary=text(
                "查看个人住房公积金账户余额和缴存明细。", "See your provident fund balance and deposits."
            ),
        ),
        item(
            "gjj-withdraw-purchase",
            "gjj",
            "housing",
            "form",
            "购房提取住房公积金",
            "Withdraw the fund to buy a home",
            life_events=["buying-a-home"],
            keywords={"zh_CN": ["公积金提取", "买房"], "en": ["withdrawal"]},
        ),
        item(
            "crj-passport",
            "crj",
            "exit-entry",
            "appointment",
            "普通护照办理预约",
            "Book a passport appointment",
            keywords={"zh_CN": ["护照", "出国"], "en": ["passport"]},
        ),
        item(
            "crj-guide",
            "crj",
            "exit-entry",
            "information",
            "港澳通行证办理指南",
            "Hong Kong and Macao permit guide",
            online=False,
            keywords={"zh_CN": ["港澳通行证"], "en": ["permit"]},
        ),
        item(
            "rsj-pension",
            "rsj",
            "social-security",
            "query",
            "养老保险缴费记录",
            "Pension contribution record",
            life_events=["retiring"],
            keywords={"zh_CN": ["养老金", "社保"], "en": ["pension"]},
        ),
        item(
            "rsj-hidden",
            "rsj",
            "social-security",
            "bill",
            "灵活就业社保缴费",
            "Social insurance for freelancers",
            published=False,
        ),
    ],
}
