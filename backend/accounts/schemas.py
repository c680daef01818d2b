from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from backend.accounts.tables import Role
from backend.lib.schema import InputStruct, OutputStruct

Login = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
OtpCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}$")]
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=128)]
Username = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]{3,64}$")]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Phone = Annotated[str, msgspec.Meta(min_length=7, max_length=20)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=48)]


class LoginIn(InputStruct):
    login: Login
    password: Password
    otp: OtpCode | None = None


class RefreshIn(InputStruct):
    refresh_token: Token


class TokensOut(OutputStruct):
    access_token: str
    refresh_token: str
    token_type: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    role: Role
    mfa_enrolment_required: bool = False


class MeOut(OutputStruct):
    id: UUID
    username: str
    display_name: str
    role: Role
    phone_masked: str | None
    street_id: int | None
    department_id: int | None
    grid_codes: list[str]
    totp_enabled: bool
    mfa_enrolment_required: bool


class TotpEnrolOut(OutputStruct):
    secret: str
    otpauth_uri: str


class TotpConfirmIn(InputStruct):
    code: OtpCode


class PasswordChangeIn(InputStruct):
    current_password: Password
    new_password: Password


class AccountIn(InputStruct):
    username: Username
    display_name: DisplayName
    password: Password
    role: Role
    phone: Phone | None = None
    street_code: Code | None = None
    department_code: Code | None = None


class AccountPatch(InputStruct):
    display_name: DisplayName | None = None
    role: Role | None = None
    is_active: bool | None = None
    street_code: Code | None = None
    department_code: Code | None = None


class AccountOut(OutputStruct):
    id: UUID
    username: str
    display_name: str
    role: Role
    phone_masked: str | None
    is_active: bool
    totp_enabled: bool
    street_id: int | None
    department_id: int | None


class AccountPage(OutputStruct):
    items: list[AccountOut]
    total: int


class RolePolicyIn(InputStruct):
    totp_required: bool


class RolePolicyOut(OutputStruct):
    role: Role
    totp_required: bool


class RevokedOut(OutputStruct):
    sessions_revoked: int
