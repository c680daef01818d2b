from enum import Enum

from piccolo.columns import JSON, UUID, DoublePrecision, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.households.tables import Household
from backend.tasks.tables import VisitTask


class LocationSource(str, Enum):
    gps = "gps"  # the phone's position
    pin = "pin"  # a pin the resident put on the map
    address = "address"  # words only: the grid worker confirms where it is


class RequestOutcome(str, Enum):
    tasked = "tasked"  # a visit task is on a grid worker's phone
    unplaced = "unplaced"  # no grid yet: on the supervisors' "unplaced" list
    no_worker = "no_worker"  # a grid with nobody assigned: the street's supervisor was told


class HelpRequest(Table, tablename="help_request"):
    """A resident's own request for help (居民主动求助), signed in or as a guest."""

    id = UUID(primary_key=True)  # the app's Idempotency-Key: a retried submission finds its row
    tracking_code = Varchar(length=16, unique=True, index=True)
    account = ForeignKey(Account, null=True, on_delete=OnDelete.set_null, index=True)
    name = Varchar(length=50)
    id_number_sealed = Text()
    id_number_index = Varchar(length=64, index=True)
    phone_sealed = Text()
    phone_index = Varchar(length=64, index=True)
    location_source = Varchar(length=16, choices=LocationSource)
    lon = DoublePrecision(null=True, default=None)  # WGS84
    lat = DoublePrecision(null=True, default=None)
    accuracy_m = DoublePrecision(null=True, default=None)
    address = Varchar(length=255, default="")
    description = Text()
    needs = JSON(default=[])
    household = ForeignKey(Household, null=True, on_delete=OnDelete.set_null, index=True)
    task = ForeignKey(VisitTask, null=True, on_delete=OnDelete.set_null, index=True)
    outcome = Varchar(length=16, null=True, default=None, choices=RequestOutcome)
    # Smart matching on what was known at submission: [{service, verdict}] under rule_version.
    matches = JSON(default=[])
    rule_version = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class PhoneCode(Table, tablename="phone_code"):
    """A one-time sign-up code sent by SMS. Only its keyed hash is kept."""

    id = Serial(primary_key=True)
    phone_index = Varchar(length=64, index=True)
    code_hash = Varchar(length=64)
    expires_at = Timestamptz()
    attempts = Integer(default=0)
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class RequestPhoto(Table, tablename="request_photo"):
    """A photo a resident sent with their request, kept like a visit photo: re-encoded, no metadata."""

    id = UUID(primary_key=True)
    request = ForeignKey(HelpRequest, on_delete=OnDelete.cascade, index=True)
    sha256 = Varchar(length=64)  # of the bytes the phone sent
    dedupe_key = Varchar(length=110, unique=True)  # request id + sha256: the same photo twice is one photo
    storage_key = Varchar(length=128)
    thumbnail_key = Varchar(length=128)
    width = Integer()
    height = Integer()
    bytes = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
