"""Running GridAid as one process tree: children die with their parent and stop on SIGTERM."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us if our parent dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the supervisor's own signal handling still stops children


class Supervisor:
    """Starts commands as children, and on SIGINT/SIGTERM (or any child dying) stops them all."""

    def __init__(self, grace_s: float = 15.0) -> None:
        self.grace_s = grace_s
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopping = False
        # Handlers first, children second: a SIGTERM that arrives while we are still starting up
        # (or waiting for /ready) must stop everything cleanly, not kill us by default action.
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(list(argv), env=env, preexec_fn=die_with_parent)  # noqa: S603
        self.children.append((name, process))

    def _request_stop(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def wait(self) -> int:
        exit_code = 0
        while not self._stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    print(f"gridaid: {name} exited with {process.returncode}; stopping the rest", file=sys.stderr)
                    exit_code = process.returncode or 1
                    self._stopping = True
            time.sleep(0.2)
        self.stop_all()
        return exit_code

    def stop_all(self) -> None:
        for _, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for _, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def environ_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
