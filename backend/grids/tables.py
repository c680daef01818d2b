from piccolo.columns import JSON, Boolean, Bytea, DoublePrecision, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.orgs.tables import OrgUnit


class GridVersion(Table, tablename="grid_version"):
    """One imported grid layer. Exactly one is current; earlier ones stay for history."""

    id = Serial(primary_key=True)
    number = Integer(unique=True)
    source = Varchar(length=255, default="")
    imported_at = Timestamptz(default=TimestamptzNow())
    imported_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    is_current = Boolean(default=False, index=True)
    report = JSON(default={})


class Grid(Table, tablename="grid"):
    """A grid polygon in one layer version. ``code`` is the stable business key across versions."""

    id = Serial(primary_key=True)
    layer = ForeignKey(GridVersion, on_delete=OnDelete.restrict, index=True)
    code = Varchar(length=32, index=True)
    name = Varchar(length=100)
    community = ForeignKey(OrgUnit, on_delete=OnDelete.restrict, index=True)
    # Polygon as WKB in WGS84 (EPSG:4326); the bbox columns let SQL pre-filter without geometry support.
    geometry = Bytea()
    min_lon = DoublePrecision()
    min_lat = DoublePrecision()
    max_lon = DoublePrecision()
    max_lat = DoublePrecision()


class GridAssignment(Table, tablename="grid_assignment"):
    """Who owns which grid, and since when. Closed rows (``ended_at`` set) are the history."""

    id = Serial(primary_key=True)
    grid_code = Varchar(length=32, index=True)
    worker = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    started_at = Timestamptz(default=TimestamptzNow())
    ended_at = Timestamptz(null=True, default=None, index=True)
    assigned_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    reason = Varchar(length=255, default="")
