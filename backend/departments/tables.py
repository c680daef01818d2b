from piccolo.columns import ForeignKey, Integer, Serial, Text, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class Department(Table, tablename="department"):
    id = Serial(primary_key=True)
    code = Varchar(length=32, unique=True, index=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100)


class Service(Table, tablename="service"):
    """One assistance service (救助事项); each is decided by exactly one department."""

    id = Serial(primary_key=True)
    code = Varchar(length=48, unique=True, index=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=150)
    category = Varchar(length=32, index=True)
    description_zh = Text(default="")
    department = ForeignKey(Department, on_delete=OnDelete.restrict, index=True)
    # Working days the department has to decide a routed case.
    decision_days = Integer(default=10)
