#!/usr/bin/env python3
"""Benchmark evindex against find and ncdu on a large generated tree.

    python3 Tests/Benchmarks/bench.py --evindex .build/release/evindex [--quick]

The tree is built once with Fixtures/mktree.py and cached under .bench/, so
only the first invocation for a given --entries pays for it. Each case runs
--runs times; the table reports wall time (median/min/max), the ratio to
ncdu's median, peak RSS, and the database size for evindex cases.
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
SEED = 1
TARGET_CASE = "evindex run"
TARGET_WALL_RATIO = 1.5
TARGET_RSS_MB = 300


class BenchError(Exception):
    pass


@dataclass
class Measurement:
    wall_s: float
    rss_kib: int


@dataclass
class Prepared:
    """One repetition of a case: what to time, and what to do afterwards."""
    argv: list[str]
    # Runs untimed after the repetition; returns metrics for the table
    # (keys: "data_mdb", "allocated", "grew") and removes scratch state.
    finish: Callable[[], dict[str, int]] = dict


@dataclass
class Case:
    name: str
    # Runs untimed before every repetition, so each one starts from the same state.
    prepare: Callable[[], Prepared]
    runs: list[Measurement] = field(default_factory=list)
    # From the last repetition's finish().
    metrics: dict[str, int] = field(default_factory=dict)


def measure(argv: list[str]) -> Measurement:
    """Run argv to completion with stdout discarded; raise if it fails."""
    # stderr goes to a file rather than a pipe: nothing reads a pipe while we
    # block in wait4, so a chatty child could fill it and deadlock.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        # wait4 gives this child's own rusage. RUSAGE_CHILDREN cannot: its
        # ru_maxrss is a max over every child ever reaped, so deltas are meaningless.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        # We reaped the child ourselves; tell Popen so it does not try again.
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace"))
            raise BenchError(f"exit status {proc.returncode}: {shlex.join(argv)}")
    return Measurement(wall, usage.ru_maxrss)


def ensure_tree(cache: Path, entries: int, mktree: Path) -> tuple[Path, int]:
    """Return the cached tree for `entries` (building it if needed) and its entry count."""
    tree = cache / f"tree-{entries}"
    meta = cache / f"tree-{entries}.json"
    if tree.exists():
        print(f"tree: reusing {tree}")
    else:
        # Build under a fixed temporary name and rename at the end, so a
        # build that was interrupted is never mistaken for a finished tree.
        partial = cache / f"tree-{entries}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        print(f"tree: building {tree} ({entries} entries, seed {SEED}) ...", flush=True)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(mktree), str(partial), "--entries", str(entries), "--seed", str(SEED)],
            stdout=subprocess.PIPE, text=True, check=True).stdout
        info = json.loads(out)
        info["root"] = str(tree)
        # Metadata first: if we die before the rename, the next build overwrites it.
        meta.write_text(json.dumps(info) + "\n")
        partial.rename(tree)
        print(f"tree: built in {time.perf_counter() - start:.1f} s")
    try:
        count = json.loads(meta.read_text())["entries"]
    except (OSError, ValueError, KeyError):
        print(f"tree: no usable {meta.name}; counting entries with os.walk")
        count = sum(len(dirs) + len(files) for _, dirs, files in os.walk(tree))
    return tree, count


def ensure_ncdu() -> str | None:
    if path := shutil.which("ncdu"):
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "ncdu"]
    # Try without `apt-get update` first: it is slow and usually not needed.
    for steps in ([install], [["apt-get", "update"], install]):
        try:
            if all(subprocess.run(step, env=env).returncode == 0 for step in steps):
                break
        except FileNotFoundError:
            break
    if path := shutil.which("ncdu"):
        return path
    print("ncdu: not found and could not be installed; skipping it (no ratio column)")
    return None


def data_mdb_size(db: str | Path) -> int:
    # A run that exits 0 without writing a database is a broken benchmark,
    # not a fast one.
    try:
        return os.stat(os.path.join(db, "data.mdb")).st_size
    except FileNotFoundError:
        raise BenchError(f"evindex exited 0 but left no data.mdb in {db}") from None


def db_metrics(db: str | Path) -> dict[str, int]:
    # data.mdb's st_size is the logical size; st_blocks shows what is really
    # allocated, which differs if LMDB ever leaves the file sparse.
    allocated = sum(os.lstat(os.path.join(d, f)).st_blocks * 512
                    for d, _, files in os.walk(db) for f in files)
    return {"data_mdb": data_mdb_size(db), "allocated": allocated}


def make_cases(evindex: str, ncdu: str | None, tree: Path, scratch: Path) -> list[Case]:
    def index_fresh() -> Prepared:
        db = tempfile.mkdtemp(prefix="db-", dir=scratch)

        def finish() -> dict[str, int]:
            metrics = db_metrics(db)
            shutil.rmtree(db)
            return metrics
        return Prepared([evindex, "run", str(tree), "--db", db], finish)

    base_db = scratch / "base-db"

    def rescan_unchanged() -> Prepared:
        # One full index per invocation, shared by every repetition; each
        # repetition works on its own copy so none sees another's writes.
        if not base_db.exists():
            base_db.mkdir()
            print("evindex rescan (no change): building base db ...", flush=True)
            measure([evindex, "run", str(tree), "--db", str(base_db)])
        db = scratch / "rescan-db"
        shutil.copytree(base_db, db)
        before = data_mdb_size(db)

        def finish() -> dict[str, int]:
            metrics = db_metrics(db)
            metrics["grew"] = metrics["data_mdb"] - before
            shutil.rmtree(db)
            return metrics
        return Prepared([evindex, "run", str(tree), "--db", str(db)], finish)

    # TODO: "evindex rescan after --mutate 10000". mktree --mutate edits in
    # place, so it must never touch the cached tree, and copying a 1M tree per
    # repetition is too slow. Plan: once per invocation, regenerate a scratch
    # tree with mktree (about 3 s per 100k entries), index it into a base db,
    # mutate it; each repetition then rescans it with a copy of the base db.
    # TODO: "replay": time rebuilding projections from the event log of a base
    # db once evindex has a command for it.
    cases = [
        Case(TARGET_CASE, index_fresh),
        Case("evindex rescan (no change)", rescan_unchanged),
        Case("find", lambda: Prepared(["find", str(tree), "-printf", "%s %i %T@\\n"])),
    ]
    if ncdu:
        cases.append(Case("ncdu", lambda: Prepared([ncdu, "-0", "-x", "-o", "/dev/null", str(tree)])))
    return cases


def run_case(case: Case, runs: int) -> None:
    for i in range(runs):
        prepared = case.prepare()
        m = measure(prepared.argv)
        case.metrics = prepared.finish()
        case.runs.append(m)
        print(f"{case.name}: run {i + 1}/{runs} {m.wall_s:.3f} s, {rss_mb(m.rss_kib):.1f} MB", flush=True)


def rss_mb(kib: int) -> float:
    return kib * 1024 / 1e6  # ru_maxrss is in KiB on Linux


def median_wall(case: Case) -> float:
    return statistics.median(m.wall_s for m in case.runs)


def print_table(cases: list[Case], entries: int) -> None:
    ncdu = next((c for c in cases if c.name == "ncdu"), None)
    header = ["tool", "median s", "min s", "max s", "vs ncdu", "peak RSS MB",
              "db B/entry", "db MB on disk", "data.mdb grew B"]
    rows = []
    for c in cases:
        walls = [m.wall_s for m in c.runs]
        mx = c.metrics
        rows.append([
            c.name,
            f"{median_wall(c):.3f}", f"{min(walls):.3f}", f"{max(walls):.3f}",
            f"{median_wall(c) / median_wall(ncdu):.2f}×" if ncdu else "-",
            f"{max(rss_mb(m.rss_kib) for m in c.runs):.1f}",
            f"{mx['data_mdb'] / entries:.1f}" if "data_mdb" in mx else "-",
            f"{mx['allocated'] / 1e6:.1f}" if "allocated" in mx else "-",
            f"{mx['grew']:+d}" if "grew" in mx else "-",
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        # Left-align the name, right-align the numbers.
        print("  ".join(r[0].ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(r)))


def print_verdict(cases: list[Case]) -> None:
    target = next(c for c in cases if c.name == TARGET_CASE)
    ncdu = next((c for c in cases if c.name == "ncdu"), None)
    if ncdu:
        ratio = median_wall(target) / median_wall(ncdu)
        wall = f"{'PASS' if ratio <= TARGET_WALL_RATIO else 'FAIL'} ({ratio:.2f}x)"
    else:
        wall = "SKIP (no ncdu)"
    peak = max(rss_mb(m.rss_kib) for m in target.runs)
    rss = f"{'PASS' if peak <= TARGET_RSS_MB else 'FAIL'} ({peak:.0f} MB)"
    print(f"target: evindex <= {TARGET_WALL_RATIO}x ncdu wall: {wall}, <= {TARGET_RSS_MB} MB RSS: {rss}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evindex", required=True, help="evindex binary to benchmark")
    ap.add_argument("--entries", type=int, default=1_000_000, help="tree size (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions per case (default %(default)s)")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench", help="where trees and scratch dbs live")
    ap.add_argument("--mktree", type=Path, default=REPO / "Fixtures" / "mktree.py", help="tree generator")
    ap.add_argument("--quick", action="store_true", help="smoke test: 100000 entries, 1 run")
    args = ap.parse_args()
    if args.quick:
        args.entries, args.runs = 100_000, 1
    return args


def main() -> int:
    args = parse_args()
    # Check the binary before spending minutes on a tree.
    evindex = shutil.which(args.evindex)
    if not evindex:
        print(f"bench: {args.evindex} is not an executable", file=sys.stderr)
        return 2
    evindex = os.path.abspath(evindex)
    args.cache.mkdir(parents=True, exist_ok=True)

    tree, entries = ensure_tree(args.cache, args.entries, args.mktree)
    ncdu = ensure_ncdu()

    start = time.perf_counter()
    subprocess.run(["find", str(tree)], stdout=subprocess.DEVNULL, check=True)
    print(f"warm-up: find took {time.perf_counter() - start:.1f} s")

    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=args.cache))
    try:
        # The kernel carries a parent's RSS high-water mark across vfork+exec
        # into the child's ru_maxrss, so every figure includes at least this
        # process's own RSS; show it so small numbers are read correctly.
        floor = measure(["true"]).rss_kib
        print(f"RSS floor inherited from bench.py: {rss_mb(floor):.1f} MB")
        cases = make_cases(evindex, ncdu, tree, scratch)
        for case in cases:
            run_case(case, args.runs)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{entries} entries in {tree}, {args.runs} run(s) per case")
    print_table(cases, entries)
    print_verdict(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
