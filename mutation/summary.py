"""Summarize a `mutmut run`: the score of each mutated module, then every mutant not killed.

Reads mutmut's result files under `mutants/` (run `make mutation` first) and prints a plain
text report; `make mutation` writes it to `mutation/results-<date>.txt`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): what happened to each mutant.
_STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
    None: "not checked",
}
_COLUMNS = ("killed", "timeout", "survived", "no tests", "other")


def _status(code: int | None) -> str:
    status = _STATUS.get(code, "suspicious")
    return status if status in _COLUMNS else "other"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _mutmut_version() -> str:
    return f"mutmut {version('mutmut')}"


def main() -> None:
    """Print the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, help="how long the run took")
    args = parser.parse_args()
    rows: list[tuple[str, Counter[str]]] = []
    left: list[tuple[str, str]] = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        module = meta.name.removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items()):
            status = _status(code)
            counts[status] += 1
            if status not in ("killed", "timeout"):
                left.append((name.removeprefix("valerie.infrastructure.session_store."), status))
        rows.append((module, counts))
    total: Counter[str] = sum((counts for _, counts in rows), Counter())
    dirty = " (+ uncommitted changes)" if _git("status", "--porcelain", "src", "tests") else ""
    commit = _git("rev-parse", "--short", "HEAD")
    print(f"make mutation on {datetime.now(UTC):%Y-%m-%d}, commit {commit}{dirty}")
    print(f"Python {platform.python_version()}, {_mutmut_version()}, {os.cpu_count()} cores")
    if args.seconds is not None:
        print(f"took {args.seconds // 60} min {args.seconds % 60} s")
    print()
    header = ("module", "total", *_COLUMNS, "score")
    print("{:<16}{:>7}{:>8}{:>9}{:>10}{:>10}{:>7}{:>8}".format(*header))
    for module, counts in [*rows, ("all", total)]:
        mutants = sum(counts.values())
        caught = counts["killed"] + counts["timeout"]
        score = f"{100 * caught / mutants:.1f}%" if mutants else "-"
        cells = (module, mutants, *(counts[column] for column in _COLUMNS), score)
        print("{:<16}{:>7}{:>8}{:>9}{:>10}{:>10}{:>7}{:>8}".format(*cells))
    print()
    print("Score: (killed + timeout) / total. Not killed (see `mutmut show NAME`):")
    for name, status in left:
        print(f"  {status:<9} {name}")


if __name__ == "__main__":
    main()
