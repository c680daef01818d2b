"""One exception hierarchy, one mapping to RFC 9457 problem details.

Every error a client sees has a stable ``code`` (for programs and the PWA's message catalogue)
and a human message in Simplified Chinese and English. Nothing else leaks: no stack trace, no SQL.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, ValidationException
from litestar.exceptions import PermissionDeniedException as LitestarPermissionDenied
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

log = logging.getLogger("gridaid.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://gridaid.example/problems/"


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    code: str
    detail: str
    detail_zh: str
    detail_en: str
    instance: str = ""
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)


class GridAidError(Exception):
    status_code: int = HTTP_400_BAD_REQUEST
    code: str = "bad_request"
    message_zh: str = "请求有误"
    message_en: str = "The request is not valid"

    def __init__(
        self,
        message_en: str | None = None,
        message_zh: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message_en = message_en or type(self).message_en
        self.message_zh = message_zh or type(self).message_zh
        self.code = code or type(self).code
        self.errors = errors or []
        self.headers = headers or {}
        super().__init__(self.message_en)


class InvalidInput(GridAidError):
    status_code = HTTP_422_UNPROCESSABLE_ENTITY
    code = "invalid_input"
    message_zh = "提交的数据不符合要求"
    message_en = "The submitted data is not valid"


class NotAuthenticated(GridAidError):
    status_code = HTTP_401_UNAUTHORIZED
    code = "auth.required"
    message_zh = "请先登录"
    message_en = "Sign in first"


class Forbidden(GridAidError):
    status_code = HTTP_403_FORBIDDEN
    code = "auth.forbidden"
    message_zh = "您没有权限执行此操作"
    message_en = "You are not allowed to do this"


class NotFound(GridAidError):
    """Also the answer for an object outside the caller's scope: its existence is not revealed."""

    status_code = HTTP_404_NOT_FOUND
    code = "not_found"
    message_zh = "未找到"
    message_en = "Not found"


class Conflict(GridAidError):
    status_code = HTTP_409_CONFLICT
    code = "conflict"
    message_zh = "与现有数据冲突"
    message_en = "This conflicts with existing data"


class TooManyRequests(GridAidError):
    status_code = HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"
    message_zh = "操作过于频繁，请稍后再试"
    message_en = "Too many attempts; try again later"


_GENERIC: dict[int, tuple[str, str, str]] = {
    HTTP_400_BAD_REQUEST: ("bad_request", "请求有误", "The request is not valid"),
    HTTP_401_UNAUTHORIZED: ("auth.required", "请先登录", "Sign in first"),
    HTTP_403_FORBIDDEN: ("auth.forbidden", "您没有权限执行此操作", "You are not allowed to do this"),
    HTTP_404_NOT_FOUND: ("not_found", "未找到", "Not found"),
    HTTP_405_METHOD_NOT_ALLOWED: ("method_not_allowed", "不支持该请求方法", "This method is not allowed here"),
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: ("body_too_large", "提交的内容过大", "The request body is too large"),
    HTTP_415_UNSUPPORTED_MEDIA_TYPE: ("unsupported_media_type", "不支持的内容类型", "Unsupported content type"),
    HTTP_429_TOO_MANY_REQUESTS: ("rate_limited", "操作过于频繁，请稍后再试", "Too many attempts; try again later"),
    HTTP_500_INTERNAL_SERVER_ERROR: (
        "internal_error",
        "服务器内部错误，请稍后再试",
        "Something went wrong on our side",
    ),
}


def _preferred_language(request: Request[Any, Any, Any]) -> str:
    accept = request.headers.get("accept-language", "zh")
    return "en" if accept.lower().startswith("en") else "zh"


def problem_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    code: str,
    message_zh: str,
    message_en: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    detail = message_en if _preferred_language(request) == "en" else message_zh
    body = Problem(
        type=PROBLEM_BASE + code,
        title=message_en,
        status=status,
        code=code,
        detail=detail,
        detail_zh=message_zh,
        detail_en=message_en,
        instance=request.url.path,
        errors=errors or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _validation_errors(extra: Any) -> list[dict[str, Any]]:
    if not isinstance(extra, list):
        return []
    # Echo where and why, never the submitted value: it may be an ID number.
    return [
        {"key": str(item.get("key", "")), "message": str(item.get("message", ""))}
        for item in extra
        if isinstance(item, dict)
    ]


def handle_gridaid_error(request: Request[Any, Any, Any], exc: GridAidError) -> Response[Problem]:
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        message_zh=exc.message_zh,
        message_en=exc.message_en,
        errors=exc.errors,
        headers=exc.headers,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return problem_response(
            request,
            status=HTTP_400_BAD_REQUEST,
            code="invalid_input",
            message_zh="提交的数据格式不正确",
            message_en="The submitted data is not valid",
            errors=_validation_errors(exc.extra),
        )
    code, zh, en = _GENERIC.get(status, ("http_error", "请求失败", "The request failed"))
    if isinstance(exc, NotAuthorizedException):
        code = "auth.required"
    elif isinstance(exc, LitestarPermissionDenied):
        code = "auth.forbidden"
    elif isinstance(exc, NotFoundException):
        code = "not_found"
    return problem_response(request, status=status, code=code, message_zh=zh, message_en=en, headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The traceback goes to the server log (scrubbed of personal data by the log filter), never out.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    code, zh, en = _GENERIC[HTTP_500_INTERNAL_SERVER_ERROR]
    return problem_response(request, status=HTTP_500_INTERNAL_SERVER_ERROR, code=code, message_zh=zh, message_en=en)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GridAidError: handle_gridaid_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_MEDIA_TYPE",
    "Conflict",
    "Forbidden",
    "GridAidError",
    "InvalidInput",
    "MediaType",
    "NotAuthenticated",
    "NotFound",
    "Problem",
    "TooManyRequests",
]
