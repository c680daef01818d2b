"""The household facts that eligibility rules may use: one vocabulary for the file, the visit form,
the rules and the explanation read aloud to the family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from backend.lib.errors import InvalidInput

FactKind = Literal["number", "integer", "boolean", "enum"]


@dataclass(frozen=True)
class Fact:
    name: str
    kind: FactKind
    label_zh: str
    label_en: str
    unit_zh: str = ""
    unit_en: str = ""
    options: tuple[str, ...] = ()
    # How each enum option is said aloud: {option: (zh, en)}.
    option_labels: tuple[tuple[str, str, str], ...] = ()

    def say(self, option: str, *, chinese: bool) -> str:
        for value, zh, en in self.option_labels:
            if value == option:
                return zh if chinese else en
        return option


FACTS: tuple[Fact, ...] = (
    Fact("household_size", "integer", "家庭人口", "household size", "人", "people"),
    Fact("income_per_capita", "number", "家庭人均月收入", "monthly income per person", "元", "yuan"),
    Fact("assets_per_capita", "number", "家庭人均金融资产", "financial assets per person", "元", "yuan"),
    Fact(
        "category",
        "enum",
        "救助类别",
        "assistance category",
        options=("none", "dibao", "tekun", "marginal"),
        option_labels=(
            ("none", "无", "none"),
            ("dibao", "低保", "dibao"),
            ("tekun", "特困", "tekun"),
            ("marginal", "低保边缘", "dibao-marginal"),
        ),
    ),
    Fact("rural", "boolean", "农村户籍", "rural household"),
    Fact("disability_grade", "integer", "最重残疾等级", "most severe disability grade", "级", ""),
    Fact("disabled_children", "integer", "残疾儿童人数", "disabled children", "人", "people"),
    Fact("chronic_illness", "boolean", "有慢性病患者", "a member with a chronic illness"),
    Fact("major_illness", "boolean", "有重大疾病患者", "a member with a major illness"),
    Fact("women_two_cancers", "boolean", "有患宫颈癌或乳腺癌的妇女", "a woman with cervical or breast cancer"),
    Fact(
        "medical_out_of_pocket_12m",
        "number",
        "近 12 个月医疗自付费用",
        "out-of-pocket medical costs, last 12 months",
        "元",
        "yuan",
    ),
    Fact("unemployed_members", "integer", "失业人数", "unemployed members", "人", "people"),
    Fact("union_member_employee", "boolean", "有在职工会会员", "an employed trade-union member"),
    Fact("children_compulsory_school", "integer", "义务教育阶段子女", "children in compulsory school", "人", "people"),
    Fact("children_high_school", "integer", "高中在读子女", "children in high school", "人", "people"),
    Fact("new_university_students", "integer", "当年考入大学的子女", "children starting university", "人", "people"),
    Fact("orphan_children", "integer", "孤儿或事实无人抚养儿童", "orphans or children without carers", "人", "people"),
    Fact("elderly_living_alone", "boolean", "有独居或空巢老人", "an elderly member living alone"),
    Fact("elderly_disabled_care", "boolean", "有失能或高龄老人", "a frail or very old elderly member"),
    Fact("no_work_ability", "boolean", "无劳动能力", "unable to work"),
    Fact("no_income_source", "boolean", "无生活来源", "no source of living"),
    Fact("no_legal_supporter", "boolean", "无法定赡养抚养扶养人", "nobody legally bound to support them"),
    Fact(
        "sudden_hardship", "boolean", "遭遇突发事件（事故、重病、亡故等）", "a sudden crisis (accident, illness, death)"
    ),
    Fact("expenditure_burden", "number", "近 12 个月刚性支出", "essential spending, last 12 months", "元", "yuan"),
    Fact("disaster_loss", "number", "灾害损失", "loss from a disaster", "元", "yuan"),
    Fact("housing_area_per_capita", "number", "人均住房面积", "housing area per person", "平方米", "m²"),
    Fact("dilapidated_home", "boolean", "住房鉴定为危房", "home assessed as dilapidated"),
    Fact("renting", "boolean", "租房居住", "living in rented housing"),
    Fact("flexible_employment", "boolean", "灵活就业", "in flexible (informal) work"),
    Fact("legal_need", "boolean", "有欠薪、工伤、赡养等法律需求", "a legal need (unpaid wages, injury, support)"),
)

FACTS_BY_NAME = {fact.name: fact for fact in FACTS}


_KIND_CHECKS = {
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
    "boolean": lambda value: isinstance(value, bool),
}


def checked_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Known fact names with values of the right kind, or a clear error naming the fact; null is
    allowed (it means "not known" and forgets a recorded value)."""
    for name, value in facts.items():
        fact = FACTS_BY_NAME.get(name)
        if fact is None:
            raise InvalidInput(f"Unknown fact {name!r}.", f"未知的情况项：{name}", code="facts.unknown")
        if value is None:
            continue
        valid = value in fact.options if fact.kind == "enum" else _KIND_CHECKS[fact.kind](value)
        if not valid:
            raise InvalidInput(
                f"{name} must be a {fact.kind}{' of ' + ', '.join(fact.options) if fact.options else ''}.",
                f"“{fact.label_zh}”的取值不正确",
                code="facts.invalid",
                errors=[{"field": "facts", "fact": name}],
            )
    return facts
