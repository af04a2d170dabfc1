"""Summarize a `mutmut run`: the score of each mutated module, then why each mutant lived.

Reads mutmut's result files under `mutants/` (run `make mutation` first) and prints a plain
text report; `make mutation` writes it to `mutation/results-<date>.txt`. Each mutant not killed
gets its reason: "wording" when it only changes the text of a message (adds `XX` or changes
the case of a literal inside a `raise` or a message builder), else the first pattern of
`mutation/explained.txt` that matches its name, else "UNEXPLAINED" (write a test, or explain it).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

PACKAGE = "valerie.infrastructure.session_store."
EXPLAINED = Path(__file__).with_name("explained.txt")

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
# Functions whose string literals are the text of a message.
_MESSAGE_BUILDERS = {"_conflict", "_not_owned", "_unsupported", "_denied_message", "_check_hint"}


def _status(code: int | None) -> str:
    status = _STATUS.get(code, "suspicious")
    return status if status in _COLUMNS else "other"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _functions(module: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The original and mutated functions of a file mutmut wrote, by name."""
    tree = ast.parse(module.read_text())
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name
    }


def _texts(function: ast.AST) -> list[tuple[str, bool]]:
    """Every string literal of `function`, with whether it is part of a message."""
    texts: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_message: bool) -> None:
        in_message = in_message or isinstance(node, ast.Raise) or _makes_error(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append((node.value, in_message))
        for child in ast.iter_child_nodes(node):
            visit(child, in_message)

    visit(function, False)
    return texts


def _makes_error(node: ast.AST) -> bool:
    """Whether `node` calls an exception class (`...Error(...)`, codec's `_Invalid(...)`)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name.endswith("Error") or name == "_Invalid"


def _only_wording(original: ast.AST, mutant: ast.AST, builder: bool) -> bool:
    """Whether `mutant` differs from `original` only in the text of a message."""

    def shape(node: ast.AST) -> str:
        copy = ast.parse(ast.unparse(node))
        for child in ast.walk(copy):
            if isinstance(child, ast.Constant) and isinstance(child.value, str):
                child.value = ""
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                child.name = ""
        return ast.dump(copy)

    if shape(original) != shape(mutant):
        return False
    changed = [
        (old, new, in_message)
        for (old, in_message), (new, _) in zip(_texts(original), _texts(mutant), strict=True)
        if old != new
    ]
    return bool(changed) and all(
        (in_message or builder) and _reworded(old, new) for old, new, in_message in changed
    )


def _reworded(old: str, new: str) -> bool:
    """Whether `new` is `old` in another case, or with `XX` around (a part of) it."""
    return new.lower() == old.lower() or (
        new.count("XX") == old.count("XX") + 2 and new.replace("XX", "") == old.replace("XX", "")
    )


def _explanations() -> list[tuple[str, str]]:
    patterns = []
    for line in EXPLAINED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, _, reason = line.partition(" ")
            patterns.append((pattern, reason.strip()))
    return patterns


def _reason(name: str, functions: Mapping[str, ast.AST], patterns: list[tuple[str, str]]) -> str:
    short = name.removeprefix(PACKAGE)
    mangled = name.rpartition(".")[2]
    function = mangled.partition("__mutmut_")[0]
    original = functions.get(function + "__mutmut_orig")
    mutant = functions.get(mangled)
    builder = function.rpartition("ǁ")[2].removeprefix("x_") in _MESSAGE_BUILDERS
    if original is not None and mutant is not None and _only_wording(original, mutant, builder):
        return "wording"
    for pattern, reason in patterns:
        if fnmatch.fnmatchcase(short, pattern):
            return reason
    return "UNEXPLAINED"


def main() -> None:
    """Print the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, help="how long the run took")
    args = parser.parse_args()
    patterns = _explanations()
    rows: list[tuple[str, Counter[str]]] = []
    left: list[tuple[str, str, str]] = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        module = meta.name.removesuffix(".meta")
        functions = _functions(meta.with_name(module))
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items()):
            status = _status(code)
            counts[status] += 1
            if status not in ("killed", "timeout"):
                reason = _reason(name, functions, patterns)
                left.append((name.removeprefix(PACKAGE), status, reason))
        rows.append((module, counts))
    total: Counter[str] = sum((counts for _, counts in rows), Counter())
    dirty = " (+ uncommitted changes)" if _git("status", "--porcelain", "src", "tests") else ""
    commit = _git("rev-parse", "--short", "HEAD")
    print(f"make mutation on {datetime.now(UTC):%Y-%m-%d}, commit {commit}{dirty}")
    print(f"Python {platform.python_version()}, mutmut {version('mutmut')}, {os.cpu_count()} cores")
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
    print("\nScore: (killed + timeout) / total.\n\nWhy the others lived (mutation/explained.txt):")
    for reason, count in Counter(reason for _, _, reason in left).most_common():
        print(f"  {count:>4}  {reason}")
    print("\nEach mutant not killed (see `mutmut show valerie.infrastructure.session_store.NAME`):")
    for name, status, reason in left:
        print(f"  {status:<9} {name}  [{reason}]")


if __name__ == "__main__":
    main()
