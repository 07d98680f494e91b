"""Start-up time: ``import pophealth`` and ``pophealth --version`` (issue 15, item 4).

``python -m benchmarks.bench_import [--runs 7] [--before SRC]`` starts a fresh interpreter
``--runs`` times per command and reports the median wall time (and the minimum, which is
less sensitive to other load on a shared machine). ``--before`` measures a second source
tree (e.g. an export of an earlier commit's ``src``) for comparison. Written to
``benchmarks/results/import.md``.

Commands measured (each in a new process, with ``PYTHONPATH`` set to the tree):

* ``python -c pass`` - the interpreter alone, the floor;
* ``import pophealth`` - the package door;
* ``pophealth --version`` (``python -m pophealth.cli --version``);
* ``import pophealth; pophealth.flag_conditions`` - first use of the core (loads pandas);
* ``import pophealth; pophealth.RiskModel`` - first use of a risk model (loads sklearn).

The target is ``import pophealth`` under 0.5 s and ``pophealth --version`` under 1 s.
The machine-independent check (no heavy library is loaded) is ``tests/test_lazy_import.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

COMMANDS = {
    "python -c pass (interpreter only)": ["-c", "pass"],
    "import pophealth": ["-c", "import pophealth"],
    "pophealth --version": ["-m", "pophealth.cli", "--version"],
    "first use of the core (ph.flag_conditions)": [
        "-c", "import pophealth as ph; ph.flag_conditions"],
    "first use of a risk model (ph.RiskModel)": ["-c", "import pophealth as ph; ph.RiskModel"],
}


def time_command(args: list[str], src: Path, runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh ``python <args>`` processes (after one warm-up)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
        if i:  # the first run warms the file cache and byte-code
            times.append(time.perf_counter() - t0)
    return times


def measure(src: Path, runs: int) -> dict:
    return {name: time_command(args, src, runs) for name, args in COMMANDS.items()}


def _cell(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} (min {min(times):.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    p.add_argument("--before", type=Path, default=None,
                   help="another src directory to measure for comparison")
    p.add_argument("--out", type=Path, default=HERE / "results" / "import.md")
    args = p.parse_args(argv)
    load = os.getloadavg()
    after = measure(SRC, args.runs)
    before = measure(args.before, args.runs) if args.before else None
    head = "| command | " + ("before, s | " if before else "") + "after, s |"
    rows = [head, "|---|" + ("---|" if before else "") + "---|"]
    for name in COMMANDS:
        rows.append(f"| {name} | " + (f"{_cell(before[name])} | " if before else "")
                    + f"{_cell(after[name])} |")
    text = "\n".join([
        "# Start-up time (`python -m benchmarks.bench_import`)",
        "",
        f"Median (and minimum) wall seconds of {args.runs} fresh processes per command, "
        "after one warm-up run. Targets: `import pophealth` < 0.5 s, "
        "`pophealth --version` < 1 s.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}; load average at start {load[0]:.1f} "
        "(a shared machine: other jobs were running).",
        "",
        *rows,
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
