from piccolo.columns import JSON, ForeignKey, Integer, Text, Timestamptz
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.households.tables import Household


class RuleVersion(Table, tablename="rule_version"):
    """One saved version of the whole eligibility rule set. Never edited: a change is a new version,
    so every match and every department case can name the exact rules it was decided under."""

    id = Integer(primary_key=True)  # the version number; 1 is the shipped rules_v1.json
    document = JSON()
    note = Text(default="")
    created_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())


class HouseholdFacts(Table, tablename="household_facts"):
    """What workers learnt about a household's circumstances (income, illness, spending …), by fact name.
    The file's own columns (category, members' disabilities) are read from the file, not copied here."""

    household = ForeignKey(Household, on_delete=OnDelete.cascade, unique=True, index=True)
    facts = JSON(default={})
    updated_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz(default=TimestamptzNow())
