"""An unexpected exception becomes a plain 500 problem document: no stack trace, no message."""

from litestar import Litestar, get
from litestar.testing import TestClient

from backend.lib.errors import EXCEPTION_HANDLERS


@get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: SELECT * FROM account WHERE id_number = '320402198001011234'")


def test_unexpected_error_is_a_generic_problem() -> None:
    with TestClient(Litestar([boom], exception_handlers=EXCEPTION_HANDLERS)) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "internal_error"
    assert "Traceback" not in response.text and "secret internals" not in response.text
    assert "320402198001011234" not in response.text
