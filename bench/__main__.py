"""Every benchmark, one after another: ``uv run python -m bench`` (each writes its part of RESULTS.md).

Or one by name, with its options: ``uv run python -m bench pwa --runs 9`` (names: the modules below,
without ``bench.``). Each takes no options when all run; run one on its own for its options (listed
in RESULTS.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("bench.run", "bench.warnings", "bench.sync", "bench.pwa", "bench.routing")


def main(argv: list[str]) -> int:
    if argv:
        module = f"bench.{argv[0]}"
        if module not in BENCHMARKS:
            print(f"unknown benchmark {argv[0]!r}; one of: {', '.join(m.split('.')[1] for m in BENCHMARKS)}")
            return 2
        return subprocess.run([sys.executable, "-m", module, *argv[1:]], cwd=ROOT, check=False).returncode  # noqa: S603
    failed = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False).returncode != 0:  # noqa: S603
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
