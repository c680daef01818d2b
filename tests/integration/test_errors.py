"""Bad input gets a clear, bilingual problem document; never a stack trace."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def test_unknown_field_is_refused_with_a_problem_document(as_role, world) -> None:
    admin = await as_role("admin")
    response = await admin.request(
        "PATCH",
        f"/api/v1/accounts/{world.account_ids['resident']}",
        json={"display_name": "x", "role_override": "admin"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_input"
    assert any("role_override" in error["message"] for error in problem["errors"]), problem
    assert problem["detail_zh"] and problem["type"].endswith("/invalid_input")
    assert problem["status"] == 400


async def test_language_follows_accept_language(api, world) -> None:
    zh = await api.post("/api/v1/auth/login", json={"login": "nobody", "password": "whatever-x"})
    en = await api.post(
        "/api/v1/auth/login", json={"login": "nobody", "password": "whatever-x"}, headers={"accept-language": "en-GB"}
    )
    assert zh.json()["detail"] == "用户名或密码错误"
    assert en.json()["detail"] == "Wrong username or password"


async def test_oversized_body_is_refused(as_role) -> None:
    admin = await as_role("admin")
    huge = {"code": "x" * 10, "head_name": "x", "address": "y" * (2 * 1024 * 1024)}
    response = await admin.post("/api/v1/households", json=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_unknown_api_route_is_a_problem_not_a_page(api) -> None:
    response = await api.get("/api/v1/no-such-thing")
    assert response.status_code in (401, 404)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_bad_path_parameter_is_not_a_server_error(as_role) -> None:
    admin = await as_role("admin")
    response = await admin.get("/api/v1/households/not-a-uuid")
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.text


async def test_security_headers_and_no_store(as_role) -> None:
    admin = await as_role("admin")
    response = await admin.get("/api/v1/auth/me")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


async def test_openapi_schema_is_served(api) -> None:
    response = await api.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/auth/login" in paths and "/api/v1/households/{household_id}" in paths
