"""The assistance catalogue, shaped like Changzhou's: 32 services across 14 departments.

Each service is decided by exactly one department ("policy powers and funding channels unchanged").
``decision_days`` is the working days the owning department has to decide a routed case: short for
emergency help (急难型 assistance is given first and checked afterwards), longer where a household
economic-status check or a site survey comes first. The figures are plausible, not official.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.audit.services import Actor, record
from backend.departments.tables import Department, Service
from backend.lib.db import write_transaction


@dataclass(frozen=True)
class DepartmentEntry:
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class ServiceEntry:
    code: str
    department: str
    name_zh: str
    name_en: str
    category: str
    decision_days: int
    description_zh: str = ""


DEPARTMENTS: tuple[DepartmentEntry, ...] = (
    DepartmentEntry("civil_affairs", "民政局", "Civil Affairs Bureau"),
    DepartmentEntry("hrss", "人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    DepartmentEntry("education", "教育局", "Education Bureau"),
    DepartmentEntry("health", "卫生健康委员会", "Health Commission"),
    DepartmentEntry("medical_insurance", "医疗保障局", "Medical Insurance Bureau"),
    DepartmentEntry("housing", "住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
    DepartmentEntry("disabled_persons_federation", "残疾人联合会", "Disabled Persons' Federation"),
    DepartmentEntry("trade_union", "总工会", "Federation of Trade Unions"),
    DepartmentEntry("womens_federation", "妇女联合会", "Women's Federation"),
    DepartmentEntry("red_cross", "红十字会", "Red Cross Society"),
    DepartmentEntry("charity_federation", "慈善总会", "Charity Federation"),
    DepartmentEntry("emergency_management", "应急管理局", "Emergency Management Bureau"),
    DepartmentEntry("youth_league", "共青团市委", "Communist Youth League City Committee"),
    DepartmentEntry("justice", "司法局（法律援助中心）", "Justice Bureau (Legal Aid Centre)"),
)

_S = ServiceEntry
SERVICES: tuple[ServiceEntry, ...] = (
    # 民政 civil affairs
    _S(
        "dibao",
        "civil_affairs",
        "最低生活保障",
        "Minimum living allowance (dibao)",
        "subsistence",
        30,
        "家庭人均收入低于当地低保标准且财产符合规定的，按差额发放低保金。",
    ),
    _S(
        "tekun_support",
        "civil_affairs",
        "特困人员救助供养",
        "Support for persons in extreme poverty (tekun)",
        "subsistence",
        30,
        "无劳动能力、无生活来源、无法定赡养抚养扶养义务人的老年人、残疾人和未成年人。",
    ),
    _S(
        "dibao_marginal",
        "civil_affairs",
        "低保边缘家庭认定",
        "Recognition as a dibao-marginal household",
        "subsistence",
        20,
        "收入略高于低保标准的困难家庭，认定后可享受医疗、教育、住房等专项救助。",
    ),
    _S(
        "expenditure_poverty",
        "civil_affairs",
        "支出型贫困家庭认定",
        "Recognition of expenditure-induced poverty",
        "subsistence",
        20,
        "因病、因学、因残等刚性支出过大导致基本生活困难的家庭。",
    ),
    _S(
        "temporary_emergency",
        "civil_affairs",
        "临时救助（急难型）",
        "Temporary assistance (emergency type)",
        "temporary",
        3,
        "遭遇火灾、交通事故、突发重大疾病等意外，基本生活陷入困境的，先行救助、事后补充说明。",
    ),
    _S(
        "temporary_expenditure",
        "civil_affairs",
        "临时救助（支出型）",
        "Temporary assistance (expenditure type)",
        "temporary",
        15,
        "因医疗、教育等必需支出突然增加，超出家庭承受能力的。",
    ),
    _S(
        "orphan_allowance",
        "civil_affairs",
        "孤儿和事实无人抚养儿童基本生活保障",
        "Basic living allowance for orphans and children without de facto carers",
        "child",
        20,
        "按月发放基本生活费。",
    ),
    _S(
        "elderly_care_subsidy",
        "civil_affairs",
        "困难老年人居家养老服务补贴",
        "Home-care service subsidy for elderly people in hardship",
        "elderly",
        20,
        "低保、特困等困难家庭中失能、高龄老年人的居家养老服务补贴。",
    ),
    # 人社 human resources and social security
    _S(
        "employment_assistance",
        "hrss",
        "就业援助（就业困难人员认定）",
        "Employment assistance (recognition as a person with employment difficulty)",
        "employment",
        15,
        "认定后提供职业介绍、技能培训和岗位推荐。",
    ),
    _S(
        "public_welfare_job",
        "hrss",
        "公益性岗位安置",
        "Placement in a public-welfare job",
        "employment",
        20,
        "为就业困难人员开发托底安置的公益性岗位。",
    ),
    _S(
        "social_insurance_subsidy",
        "hrss",
        "灵活就业困难人员社会保险补贴",
        "Social insurance subsidy for people with employment difficulty in flexible work",
        "employment",
        20,
    ),
    # 教育 education
    _S(
        "student_aid_compulsory",
        "education",
        "义务教育家庭经济困难学生生活补助",
        "Living subsidy for compulsory-education students from families in hardship",
        "education",
        15,
    ),
    _S(
        "student_aid_high_school",
        "education",
        "普通高中国家助学金",
        "National grant for high-school students",
        "education",
        15,
    ),
    _S(
        "student_aid_university",
        "education",
        "困难家庭大学新生入学资助",
        "Enrolment grant for new university students from families in hardship",
        "education",
        15,
    ),
    # 卫健 health
    _S(
        "family_doctor_care",
        "health",
        "困难群众家庭医生签约服务",
        "Contracted family-doctor service for people in hardship",
        "medical",
        10,
        "低收入人口免费签约家庭医生，提供健康管理和上门服务。",
    ),
    # 医保 medical insurance
    _S(
        "medical_assistance",
        "medical_insurance",
        "医疗救助",
        "Medical assistance",
        "medical",
        15,
        "对救助对象经基本医保、大病保险报销后的政策范围内个人自付费用按比例救助。",
    ),
    _S(
        "serious_illness_assistance",
        "medical_insurance",
        "重特大疾病医疗倾斜救助",
        "Extra medical assistance for catastrophic illness",
        "medical",
        20,
        "大额医疗费用支出导致家庭基本生活困难的，给予倾斜救助。",
    ),
    _S(
        "medical_premium_subsidy",
        "medical_insurance",
        "城乡居民医保参保资助",
        "Premium subsidy for residents' basic medical insurance",
        "medical",
        15,
    ),
    # 住建 housing
    _S(
        "public_rental_housing",
        "housing",
        "住房救助（公共租赁住房）",
        "Housing assistance: public rental housing",
        "housing",
        30,
        "符合条件的低保、低保边缘、特困家庭优先配租公共租赁住房。",
    ),
    _S("rent_subsidy", "housing", "住房租赁补贴", "Rental housing subsidy", "housing", 30),
    _S(
        "dilapidated_house_renovation",
        "housing",
        "农村困难群众危房改造",
        "Renovation of dilapidated rural homes",
        "housing",
        30,
    ),
    # 残联 disabled persons' federation
    _S(
        "disability_living_subsidy",
        "disabled_persons_federation",
        "困难残疾人生活补贴（两项补贴）",
        "Living subsidy for disabled people in hardship (one of the two disability subsidies)",
        "disability",
        15,
    ),
    _S(
        "severe_disability_care_subsidy",
        "disabled_persons_federation",
        "重度残疾人护理补贴（两项补贴）",
        "Care subsidy for people with severe disabilities (one of the two disability subsidies)",
        "disability",
        15,
        "残疾等级为一级、二级的重度残疾人按月发放护理补贴。",
    ),
    _S(
        "disabled_child_rehabilitation",
        "disabled_persons_federation",
        "残疾儿童康复救助",
        "Rehabilitation assistance for disabled children",
        "disability",
        20,
    ),
    # 工会 trade union
    _S(
        "worker_hardship_aid",
        "trade_union",
        "困难职工帮扶",
        "Hardship assistance for employees",
        "charity",
        15,
        "对因病、因灾等陷入困境的在职职工及其家庭给予生活、医疗、助学帮扶。",
    ),
    _S(
        "golden_autumn_student_aid",
        "trade_union",
        "金秋助学",
        "Golden Autumn student aid for workers' children",
        "education",
        15,
    ),
    # 妇联 women's federation
    _S(
        "two_cancers_aid",
        "womens_federation",
        "“两癌”困难妇女救助",
        "Aid for women in hardship with cervical or breast cancer",
        "medical",
        15,
    ),
    # 红十字会 Red Cross
    _S(
        "red_cross_relief",
        "red_cross",
        "红十字人道救助（博爱救助）",
        "Red Cross humanitarian relief",
        "charity",
        10,
        "对遭遇重大疾病或意外的困难群众给予人道救助。",
    ),
    # 慈善总会 charity federation
    _S(
        "charity_medical_aid",
        "charity_federation",
        "慈善医疗救助",
        "Charity medical aid",
        "charity",
        15,
        "对医保报销和医疗救助后仍有较大自付费用的困难患者给予慈善救助。",
    ),
    # 应急管理 emergency management
    _S(
        "disaster_relief",
        "emergency_management",
        "受灾人员生活救助",
        "Living assistance for disaster victims",
        "disaster",
        5,
        "自然灾害发生后的应急救助、过渡期生活救助和冬春救助。",
    ),
    # 团委 youth league
    _S("project_hope_aid", "youth_league", "希望工程助学", "Project Hope student aid", "education", 15),
    # 司法 justice
    _S(
        "legal_aid",
        "justice",
        "法律援助",
        "Legal aid",
        "legal",
        7,
        "经济困难公民在追索劳动报酬、工伤赔偿、赡养费等事项中获得免费法律服务。",
    ),
)


async def seed_catalogue() -> None:
    """Insert whichever departments and services are missing (by code). Existing rows are left alone."""
    async with write_transaction():
        added_departments = await _insert_missing_departments()
        added_services = await _insert_missing_services()
        if added_departments or added_services:
            await record(
                "catalogue.seed",
                actor=Actor.system("catalogue"),
                object_type="catalogue",
                detail={"departments": added_departments, "services": added_services},
            )


async def _insert_missing_departments() -> list[str]:
    existing = {row["code"] for row in await Department.select(Department.code)}
    missing = [entry for entry in DEPARTMENTS if entry.code not in existing]
    if missing:
        await Department.insert(
            *(Department(code=entry.code, name_zh=entry.name_zh, name_en=entry.name_en) for entry in missing)
        )
    return [entry.code for entry in missing]


async def _insert_missing_services() -> list[str]:
    existing = {row["code"] for row in await Service.select(Service.code)}
    missing = [entry for entry in SERVICES if entry.code not in existing]
    if missing:
        rows = await Department.select(Department.id, Department.code)
        department_ids = {row["code"]: row["id"] for row in rows}
        await Service.insert(*(_service_row(entry, department_ids[entry.department]) for entry in missing))
    return [entry.code for entry in missing]


def _service_row(entry: ServiceEntry, department_id: int) -> Service:
    return Service(
        code=entry.code,
        name_zh=entry.name_zh,
        name_en=entry.name_en,
        category=entry.category,
        description_zh=entry.description_zh,
        department=department_id,
        decision_days=entry.decision_days,
    )
