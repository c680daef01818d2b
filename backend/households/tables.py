from enum import Enum

from piccolo.columns import UUID, Boolean, DoublePrecision, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.orgs.tables import OrgUnit


class HouseholdCategory(str, Enum):
    dibao = "dibao"  # 低保
    dibao_marginal = "dibao_marginal"  # 低保边缘
    tekun = "tekun"  # 特困人员
    expenditure_poverty = "expenditure_poverty"  # 支出型贫困
    low_income = "low_income"  # 其他低收入
    ordinary = "ordinary"


class PlacementFlag(str, Enum):
    inside = "inside"  # inside a grid polygon
    near = "near"  # outside every grid but within tolerance: nearest grid, flagged for review
    unplaced = "unplaced"  # no grid: on the supervisor's "unplaced" list


class Relation(str, Enum):
    head = "head"
    spouse = "spouse"
    child = "child"
    parent = "parent"
    grandchild = "grandchild"
    sibling = "sibling"
    other = "other"


class Household(Table, tablename="household"):
    """A household file (一户一档). Place is denormalised (grid, community, street) for scope queries."""

    id = UUID(primary_key=True)
    code = Varchar(length=32, unique=True, index=True)
    head_name = Varchar(length=50)
    address = Varchar(length=255)
    phone_sealed = Text(null=True, default=None)
    phone_index = Varchar(length=64, null=True, default=None, index=True)
    category = Varchar(length=32, choices=HouseholdCategory, default=HouseholdCategory.ordinary, index=True)
    lon = DoublePrecision(null=True, default=None)  # WGS84
    lat = DoublePrecision(null=True, default=None)
    grid_code = Varchar(length=32, null=True, default=None, index=True)
    placement = Varchar(length=16, choices=PlacementFlag, default=PlacementFlag.unplaced)
    community = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict, index=True)
    street = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class HouseholdMember(Table, tablename="household_member"):
    id = UUID(primary_key=True)
    household = ForeignKey(Household, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=50)
    relation = Varchar(length=16, choices=Relation, default=Relation.other)
    id_number_sealed = Text()
    id_number_index = Varchar(length=64, unique=True, index=True)
    birth_year = Integer(null=True, default=None)
    disability_grade = Integer(null=True, default=None)  # 1 (most severe) … 4; null when none
    is_main_earner = Boolean(default=False)
