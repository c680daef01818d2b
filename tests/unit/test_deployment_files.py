"""The compose file cannot be run here (no Docker engine); check it says what we mean."""

from pathlib import Path

import yaml
from click.testing import CliRunner

from backend.cli import main

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def test_every_long_running_service_has_a_health_check() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, name
    assert services["api"]["deploy"]["replicas"] >= 2


def test_compose_commands_exist_in_our_cli() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    runner = CliRunner()
    for name in ("migrate", "api", "worker"):
        command = services[name]["command"]
        assert command[0] == "gridaid"
        result = runner.invoke(main, [command[1], "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_worker_health_check_names_real_settings() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    check = services["worker"]["healthcheck"]["test"]
    module, _, attribute = check[-1].rpartition(".")
    import importlib

    assert hasattr(importlib.import_module(module), attribute)
