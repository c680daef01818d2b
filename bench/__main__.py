"""Every benchmark, one after another: ``uv run python -m bench`` (each writes its part of RESULTS.md).

Each takes no options here; run one on its own for its options (listed in RESULTS.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("bench.run", "bench.warnings", "bench.sync")


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False).returncode != 0:  # noqa: S603
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
