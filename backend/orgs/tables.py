from enum import Enum

from piccolo.columns import Bytea, ForeignKey, Serial, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class OrgLevel(str, Enum):
    city = "city"
    district = "district"
    street = "street"  # 街道 or 镇
    community = "community"  # 社区 or 村


class OrgUnit(Table, tablename="org_unit"):
    """city › district › street/town › community/village; grids hang under communities."""

    id = Serial(primary_key=True)
    code = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=100)
    level = Varchar(length=16, choices=OrgLevel, index=True)
    parent: ForeignKey["OrgUnit"] = ForeignKey("self", null=True, on_delete=OnDelete.restrict)
    # WKB polygon in WGS84, when the unit's boundary is known (districts from the city's file).
    boundary = Bytea(null=True)
