"""Synthetic people for the demo: names, checksum-valid ID numbers, phones, addresses, households.

Everything is drawn from one seeded ``numpy`` generator, so the same seed gives the same people.
No real person is described: names are random combinations, ID serials and phones are random.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from backend.households.tables import HouseholdCategory, Relation
from backend.lib.pii import id_check_char

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严戴孔汤"
)
MALE_GIVEN = "伟强磊军洋勇杰涛明超华建国平刚辉鹏飞斌志文俊峰浩宇晨阳亮健成东海林波新春荣德福"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀英玲婷雪梅兰凤红琴云莉萍燕慧颖倩佳欣悦琳月桂珍美淑晓"

# Mostly ordinary households; the rest spread over the categories an assistance office watches.
CATEGORY_WEIGHTS: dict[HouseholdCategory, float] = {
    HouseholdCategory.ordinary: 0.70,
    HouseholdCategory.dibao: 0.08,
    HouseholdCategory.dibao_marginal: 0.07,
    HouseholdCategory.low_income: 0.07,
    HouseholdCategory.expenditure_poverty: 0.05,
    HouseholdCategory.tekun: 0.03,
}
DEMO_TODAY = date(2026, 1, 1)


@dataclass
class Person:
    name: str
    relation: Relation
    id_number: str
    birth: date
    disability_grade: int | None = None
    is_main_earner: bool = False


@dataclass
class PlannedHousehold:
    head_name: str
    address: str
    phone: str
    category: HouseholdCategory
    members: list[Person] = field(default_factory=list)


class PeopleFactory:
    """Draws people from one generator and never repeats an ID number or a phone."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._ids: set[str] = set()
        self._phones: set[str] = set()

    def _pick(self, chars: str) -> str:
        return chars[int(self.rng.integers(len(chars)))]

    def name(self, male: bool, surname: str | None = None) -> str:
        given_chars = MALE_GIVEN if male else FEMALE_GIVEN
        given = "".join(self._pick(given_chars) for _ in range(1 + int(self.rng.random() < 0.6)))
        return (surname or self._pick(SURNAMES)) + given

    def phone(self) -> str:
        while True:
            value = "1" + self._pick("35789") + "".join(str(d) for d in self.rng.integers(0, 10, 9))
            if value not in self._phones:
                self._phones.add(value)
                return value

    def id_number(self, region: str, birth: date, male: bool) -> str:
        """GB 11643: region (6) + birth date (8) + serial (3, odd for men) + check character."""
        while True:
            # The serial's last digit is odd for men, even for women.
            serial = int(self.rng.integers(0, 100)) * 10 + int(self.rng.integers(0, 5)) * 2 + int(male)
            first17 = f"{region}{birth:%Y%m%d}{serial:03d}"
            value = first17 + id_check_char(first17)
            if value not in self._ids:
                self._ids.add(value)
                return value

    def birth(self, age_low: int, age_high: int) -> date:
        age_days = int(self.rng.integers(age_low * 365, age_high * 365 + 1))
        return DEMO_TODAY - timedelta(days=age_days)

    def person(
        self,
        region: str,
        relation: Relation,
        age: tuple[int, int],
        male: bool,
        surname: str | None = None,
        disability_rate: float = 0.04,
    ) -> Person:
        birth = self.birth(*age)
        grade = int(self.rng.integers(1, 5)) if self.rng.random() < disability_rate else None
        return Person(self.name(male, surname), relation, self.id_number(region, birth, male), birth, grade)

    def category(self) -> HouseholdCategory:
        categories = list(CATEGORY_WEIGHTS)
        weights = np.array(list(CATEGORY_WEIGHTS.values()))
        return categories[int(self.rng.choice(len(categories), p=weights / weights.sum()))]

    def household(self, region: str, address: str) -> PlannedHousehold:
        category = self.category()
        members = self._members(region, category)
        head = members[0]
        return PlannedHousehold(head.name, address, self.phone(), category, members)

    def _members(self, region: str, category: HouseholdCategory) -> list[Person]:
        hardship = category != HouseholdCategory.ordinary
        disability_rate = 0.25 if hardship else 0.04
        if category == HouseholdCategory.tekun:
            # 特困: lives alone, no working-age support; old or severely disabled.
            male = bool(self.rng.random() < 0.5)
            return [self.person(region, Relation.head, (60, 92), male, disability_rate=0.5)]
        size = int(self.rng.choice([1, 2, 3, 4], p=[0.2, 0.3, 0.3, 0.2]))
        head_male = bool(self.rng.random() < 0.6)
        head = self.person(region, Relation.head, (28, 80), head_male, disability_rate=disability_rate)
        head.is_main_earner = (DEMO_TODAY.year - head.birth.year) < 62 and head.disability_grade is None
        surname = head.name[0]
        members = [head]
        head_age = DEMO_TODAY.year - head.birth.year
        if size >= 2:
            spouse_age = max(22, head_age + int(self.rng.integers(-5, 6)))
            members.append(
                self.person(
                    region, Relation.spouse, (spouse_age, spouse_age), not head_male, disability_rate=disability_rate
                )
            )
        for _ in range(size - len(members)):
            members.append(self._dependant(region, head_age, surname, disability_rate))
        return members

    def _dependant(self, region: str, head_age: int, surname: str, disability_rate: float) -> Person:
        male = bool(self.rng.random() < 0.5)
        if head_age < 55 or self.rng.random() < 0.7:
            age = max(0, head_age - int(self.rng.integers(22, 36)))
            return self.person(region, Relation.child, (max(0, age - 2), age), male, surname, disability_rate)
        if head_age <= 60:
            age = min(95, head_age + int(self.rng.integers(22, 32)))
            return self.person(region, Relation.parent, (age, age), male, surname, disability_rate)
        age = max(0, head_age - int(self.rng.integers(48, 60)))
        relation = Relation.grandchild
        return self.person(region, relation, (max(0, age - 2), age), male, surname, disability_rate)


def urban_address(street: str, estate: str, rng: np.random.Generator) -> str:
    building, unit = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    room = int(rng.integers(1, 19)) * 100 + int(rng.integers(1, 5))
    return f"{street}{estate}{building}幢{unit}单元{room}室"


def village_address(town: str, village: str, rng: np.random.Generator) -> str:
    return f"{town}{village}{int(rng.integers(1, 13))}组{int(rng.integers(1, 120))}号"
