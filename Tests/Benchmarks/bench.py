#!/usr/bin/env python3
"""Benchmark evindex against find, ncdu, gdu and plocate on a large generated tree.

    python3 Tests/Benchmarks/bench.py --evindex .build/release/evindex [--quick] [--also-small]
        [--baseline OTHER_EVINDEX]

--baseline times a first index by another evindex build in the same rounds (the
cost of a change to what a run writes, such as issue 17's name index).

ncdu, gdu and plocate are installed with apt-get if missing; a tool that cannot
be installed is left out of the table (and ncdu's absence skips the ratios).

The tree is built once with Fixtures/mktree.py and cached under .bench/, so
only the first invocation for a given --entries pays for it. The rescan after
`mktree.py --mutate` needs a second tree of the same shape, indexed once and
then mutated once; it is cached as well.

Each case runs --runs times, the cases taking turns; the table reports wall time (median/min/max), the
ratio to ncdu's median, peak RSS, the database size for evindex cases and
replay's own events/s. The targets from the issues are checked at the end; they
are reported only, the exit status does not depend on them.
"""
import argparse
import random
import hashlib
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
SMALL_ENTRIES = 100_000
MUTATE_OPS = 10_000

# evindex takes the names of an unchanged directory from the index only if the
# directory's ctime is more than 2 s before the previous run began; a newer one
# is "racy" and read again. A base db indexed within that window of its tree
# being written would make every rescan against it re-read the newest
# directories, which is not the steady state we mean to measure.
RACY_WINDOW_S = 2.0
SETTLE_MARGIN_S = 1.0

RUN_CASE = "evindex run"
RESCAN_CASE = "evindex rescan (no change)"
MUTATED_CASE = f"evindex rescan (--mutate {MUTATE_OPS})"
REPLAY_CASE = "evindex replay (from scratch)"
DIFF_CASE = "evindex diff (before/after --mutate)"
GITIGNORE_CASE = "evindex run --gitignore"
# One .gitignore of 5,000 patterns (literal names, suffixes, prefixes, anchored paths,
# wildcards) over 20,000 files: the run with rules beside the run without and git itself.
PATTERNS_PLAIN_CASE = "evindex run (5,000-pattern tree)"
PATTERNS_CASE = "evindex run --gitignore (5,000 patterns)"
PATTERNS_GIT_CASE = "git ls-files -o --exclude-standard (5,000 patterns)"
PATTERNS_RATIO = 2.0
SINCE_CASE = f"evindex du --since 1 (after --mutate {MUTATE_OPS})"
SINCE_JSON_CASE = "evindex du --since 1 --json (every directory)"
AT_CASE = "evindex du --at 1 (the run before)"
BASELINE_CASE = "baseline evindex run (--baseline)"
# Issue 17: a selective and a broad name query, as plocate -b -i and find -iname ask them.
SELECTIVE = "photo_123"
BROAD = ".rs"
FIND_SELECTIVE_CASE = f"evindex find {SELECTIVE}"
FIND_BROAD_CASE = f"evindex find {BROAD}"
PLOCATE_SELECTIVE_CASE = f"plocate -b -i {SELECTIVE}"
PLOCATE_BROAD_CASE = f"plocate -b -i {BROAD}"
# Output read from a pipe, lines counted: issue 17's rates.
STREAM_CASES = {
    "evindex ls -R |": ["ls", "-R"],
    "evindex ls -R --json |": ["ls", "-R", "--json"],
    "evindex du --json (every dir) |": ["du", "--json", "--depth", "100000"],
    "evindex log --json |": ["log", "--json"],  # the whole log: no PATH
    "evindex find (every entry) |": ["find"],
}

# Targets: issue 2 (first index), issue 3 (rescan of an unchanged tree), issue 4 (replay).
RUN_WALL_RATIO = 1.5
RUN_RSS_MB = 300
RESCAN_WALL_RATIO = 1.0
RESCAN_GROWTH_B = 1_000_000
REPLAY_EVENTS_PER_S = 1_000_000
# Issue 6: diff of two runs of the whole tree.
DIFF_WALL_S = 2.0
GITIGNORE_RATIO = 1.1
DIFF_RSS_MB = 500
# Issue 7: near the kernel's floor, a compact log, linear growth.
FAST_RUN_RATIO = 0.75
FAST_RUN_RSS_MB = 200
FAST_RESCAN_RATIO = 0.6
DB_BYTES_PER_ENTRY = 80
# Issue 16: sizes as du counts them, growth since a run, the past in one step.
SIZES_BYTES_PER_ENTRY = 75
SINCE_WALL_S = 0.3
AT_WALL_S = 1.5
SCALING_RATIO = 1.2
FIND_VS_PLOCATE = 1.0
NAME_INDEX_RUN_RATIO = 1.1
LINES_PER_S = 1_000_000


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
    # Runs untimed after the repetition with the child's stdout (None unless
    # capture is set); returns metrics for the table (keys: "data_mdb",
    # "allocated", "grew", "events_per_s") and removes scratch state.
    finish: Callable[[str | None], dict[str, float]] = lambda _stdout: {}
    capture: bool = False
    # Exit statuses that mean success (`diff` exits 1 when the runs differ).
    ok_exit: tuple[int, ...] = (0,)
    # Read stdout from a pipe while it runs and count its lines (metric "lines").
    count_lines: bool = False


@dataclass
class Case:
    name: str
    # Runs untimed before every repetition, so each one starts from the same state.
    prepare: Callable[[], Prepared]
    runs: list[Measurement] = field(default_factory=list)
    # One finish() result per repetition.
    metrics: list[dict[str, float]] = field(default_factory=list)

    def median_wall(self) -> float:
        return statistics.median(m.wall_s for m in self.runs)

    def peak_rss_mb(self) -> float:
        return max(rss_mb(m.rss_kib) for m in self.runs)

    def metric(self, key: str, combine: Callable[[list[float]], float]) -> float | None:
        values = [m[key] for m in self.metrics if key in m]
        return combine(values) if values else None


@dataclass
class MutatedTree:
    tree: Path
    base_db: Path  # indexed before the mutation
    summary: dict  # what mktree --mutate printed


@dataclass
class Table:
    """Every case run against one tree size."""
    entries: int
    tree: Path
    mutated: MutatedTree
    cases: list[Case]

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


def measure(argv: list[str], capture: bool = False, ok_exit: tuple[int, ...] = (0,),
            count_lines: bool = False) -> tuple[Measurement, str | None]:
    """Run argv to completion; raise if it fails. Returns its stdout if capture, else discards it.

    With count_lines, stdout is a pipe read to its end before the wait, and the
    number of lines it carried is returned (as a string) instead."""
    # Both streams go to files rather than pipes: nothing reads a pipe while we
    # block in wait4, so a chatty child could fill it and deadlock.
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        stdout_to = subprocess.PIPE if count_lines else out if capture else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdout=stdout_to, stderr=err)
        lines = 0
        if count_lines:
            while chunk := proc.stdout.read1(1 << 20):
                lines += chunk.count(b"\n")
            proc.stdout.close()
        # wait4 gives this child's own rusage. RUSAGE_CHILDREN cannot: its
        # ru_maxrss is a max over every child ever reaped, so deltas are meaningless.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        # We reaped the child ourselves; tell Popen so it does not try again.
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok_exit:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace"))
            raise BenchError(f"exit status {proc.returncode}: {shlex.join(argv)}")
        stdout = None
        if count_lines:
            stdout = str(lines)
        elif capture:
            out.seek(0)
            stdout = out.read().decode(errors="replace")
    return Measurement(wall, usage.ru_maxrss), stdout


def settle(written_at: float, what: str) -> None:
    """Sleep until a tree last written at `written_at` (epoch s) is out of evindex's racy window."""
    wait = written_at + RACY_WINDOW_S + SETTLE_MARGIN_S - time.time()
    if wait > 0:
        print(f"{what}: waiting {wait:.1f} s so that rescans trust the tree's directories", flush=True)
        time.sleep(wait)


def ensure_pattern_tree(cache: Path) -> Path:
    """20,000 empty files in 400 directories and a top .gitignore of 5,000 patterns
    (seeded, built once): 35 % literal names, 15 % `*.ext` suffixes, 20 % `name*`
    prefixes, 15 % anchored `/dir/name.*` paths, 15 % `name?N[0-9].ext` wildcards."""
    root = cache / "patterns-5000"
    if (root / ".git" / "HEAD").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    r = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "omega", "core", "util", "test", "data", "cache",
             "build", "tmp", "log", "img", "doc", "src", "lib", "bin", "obj", "out"]
    exts = ["c", "h", "o", "log", "tmp", "txt", "md", "py", "js", "json", "bak", "swp", "png", "jpg", "so", "a"]
    dirs = ["/".join(r.choice(words) + str(r.randint(0, 50)) for _ in range(r.randint(1, 3))) for _ in range(400)]
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for _ in range(20_000):
        (root / r.choice(dirs) / f"{r.choice(words)}{r.randint(0, 3000)}.{r.choice(exts)}").touch()
    patterns = []
    for _ in range(5_000):
        k = r.random()
        if k < 0.35:
            patterns.append(f"{r.choice(words)}{r.randint(0, 3000)}.{r.choice(exts)}")
        elif k < 0.5:
            patterns.append(f"*.{r.choice(exts)}{r.randint(0, 99)}")
        elif k < 0.7:
            patterns.append(f"{r.choice(words)}{r.randint(0, 3000)}*")
        elif k < 0.85:
            patterns.append(f"/{r.choice(dirs)}/{r.choice(words)}{r.randint(0, 3000)}.*")
        else:
            patterns.append(f"{r.choice(words)}?{r.randint(0, 300)}[0-9].{r.choice(exts)}")
    (root / ".gitignore").write_text("\n".join(patterns) + "\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


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


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def ensure_mutated_tree(cache: Path, entries: int, mktree: Path, evindex: str) -> MutatedTree:
    """Return a tree like ensure_tree's, mutated once by mktree, and a db of it from before the mutation.

    mktree --mutate edits in place, so the cached tree of the other cases is
    never touched; this one is made, indexed and mutated once and then kept.
    """
    stem = f"tree-{entries}-mutated"
    tree, base_db = cache / stem, cache / f"db-{entries}-premutate"
    summary_file, marker = cache / f"{stem}.json", cache / f"{stem}.ready"
    # The marker is written last and names what the cache was made with. No
    # marker (an interrupted prepare), a missing part or another recipe means
    # starting over: a half-mutated tree, or one indexed after a partial
    # mutation, cannot be told apart from a good one.
    recipe = {"entries": entries, "seed": SEED, "mutate": MUTATE_OPS}
    binary = file_sha256(evindex)
    try:
        made = json.loads(marker.read_text())
    except (OSError, ValueError):
        made = None
    complete = tree.is_dir() and base_db.is_dir() and summary_file.is_file()
    if complete and isinstance(made, dict) and {k: made.get(k) for k in recipe} == recipe:
        print(f"mutated tree: reusing {tree} and {base_db.name}")
        if made.get("evindex_sha256") != binary:
            # Not rebuilt automatically: it takes long and most rebuilds of
            # evindex do not change what a run writes. But if one did, the
            # rescan would start from a db this evindex would not have written.
            print(f"mutated tree: note: {base_db.name} was indexed by another evindex binary; "
                  f"if what `evindex run` records has changed, delete {marker.name} to rebuild it")
    else:
        marker.unlink(missing_ok=True)
        summary_file.unlink(missing_ok=True)
        for path in (tree, base_db):
            if path.exists():
                shutil.rmtree(path)
        start = time.perf_counter()
        print(f"mutated tree: building {tree} ({entries} entries, seed {SEED}) ...", flush=True)
        subprocess.run([sys.executable, str(mktree), str(tree), "--entries", str(entries), "--seed", str(SEED)],
                       stdout=subprocess.DEVNULL, check=True)
        settle(time.time(), "mutated tree")
        print(f"mutated tree: indexing it into {base_db} ...", flush=True)
        base_db.mkdir()
        measure([evindex, "run", str(tree), "--db", str(base_db)])
        print(f"mutated tree: mktree --mutate {MUTATE_OPS} ...", flush=True)
        out = subprocess.run(
            [sys.executable, str(mktree), str(tree), "--mutate", str(MUTATE_OPS), "--seed", str(SEED)],
            stdout=subprocess.PIPE, text=True, check=True).stdout
        json.loads(out)  # fail here, before the marker, if it is not a summary
        summary_file.write_text(out)
        marker.write_text(json.dumps(recipe | {"evindex_sha256": binary}) + "\n")
        print(f"mutated tree: ready in {time.perf_counter() - start:.1f} s")
    return MutatedTree(tree, base_db, json.loads(summary_file.read_text()))


def ensure_tool(command: str, package: str) -> str | None:
    """The path of `command`, installing Debian's `package` if it is missing; None if that fails."""
    if path := shutil.which(command):
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    # Try without `apt-get update` first: it is slow and usually not needed.
    for steps in ([install], [["apt-get", "update"], install]):
        try:
            if all(subprocess.run(step, env=env).returncode == 0 for step in steps):
                break
        except FileNotFoundError:
            break
    if path := shutil.which(command):
        return path
    print(f"{command}: not found and could not be installed; skipping it")
    return None


@dataclass
class Tools:
    """The other indexers the table compares with; None where one could not be installed."""
    ncdu: str | None
    gdu: str | None
    updatedb: str | None

    @staticmethod
    def find() -> "Tools":
        return Tools(ensure_tool("ncdu", "ncdu"), ensure_tool("gdu", "gdu"), ensure_tool("updatedb.plocate", "plocate"))


def data_mdb_size(db: str | Path) -> int:
    # A run that exits 0 without writing a database is a broken benchmark,
    # not a fast one.
    try:
        return os.stat(os.path.join(db, "data.mdb")).st_size
    except FileNotFoundError:
        raise BenchError(f"evindex exited 0 but left no data.mdb in {db}") from None


def db_metrics(db: str | Path) -> dict[str, float]:
    # data.mdb's st_size is the logical size; st_blocks shows what is really
    # allocated, which differs if LMDB ever leaves the file sparse.
    allocated = sum(os.lstat(os.path.join(d, f)).st_blocks * 512
                    for d, _, files in os.walk(db) for f in files)
    return {"data_mdb": data_mdb_size(db), "allocated": allocated}


def name_index_bytes(db: str | Path) -> float | None:
    """The bytes of the name index's pages (mdb_stat, from lmdb-utils), None without it."""
    if not shutil.which("mdb_stat"):
        return None
    out = subprocess.run(["mdb_stat", "-s", "names", str(db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    pages = sum(int(line.split(":")[1]) for line in out.splitlines()
                if line.strip().split(":")[0] in ("Branch pages", "Leaf pages", "Overflow pages"))
    return pages * 4096.0


def make_cases(evindex: str, tools: Tools, tree: Path, mutated: MutatedTree, scratch: Path,
               baseline: str | None = None) -> list[Case]:
    def index_fresh(*flags: str, binary: str = evindex) -> Prepared:
        db = tempfile.mkdtemp(prefix="db-", dir=scratch)

        def finish(_stdout: str | None) -> dict[str, float]:
            metrics = db_metrics(db)
            if binary == evindex and (names := name_index_bytes(db)) is not None:
                metrics["name_index"] = names
            shutil.rmtree(db)
            return metrics
        return Prepared([binary, "run", str(tree), "--db", db, *flags], finish)

    base_db = scratch / "base-db"

    def ensure_base_db() -> Path:
        # One full index per invocation, shared by the no-change rescan and
        # replay; every repetition works on its own copy so none sees another's writes.
        if not base_db.exists():
            # ensure_tree renames the tree into place last, so its root's ctime
            # is at or after every write to it (this matters only just after a build).
            settle(os.stat(tree).st_ctime, "base db")
            base_db.mkdir()
            print("base db: indexing the tree ...", flush=True)
            measure([evindex, "run", str(tree), "--db", str(base_db)])
        return base_db

    def copy_db(db: Path, name: str) -> Path:
        copy = scratch / name
        shutil.copytree(db, copy)
        return copy

    def rescan(tree: Path, db: Path) -> Prepared:
        before = data_mdb_size(db)

        def finish(_stdout: str | None) -> dict[str, float]:
            metrics = db_metrics(db)
            metrics["grew"] = metrics["data_mdb"] - before
            shutil.rmtree(db)
            return metrics
        return Prepared([evindex, "run", str(tree), "--db", str(db)], finish)

    def replay() -> Prepared:
        db = copy_db(ensure_base_db(), "replay-db")

        def finish(stdout: str | None) -> dict[str, float]:
            shutil.rmtree(db)
            try:
                result = json.loads(stdout or "")
                events, per_s = int(result["events"]), float(result["events_per_second"])
            except (ValueError, KeyError, TypeError) as e:
                raise BenchError(f"evindex replay printed no usable JSON ({e!r}): {(stdout or '')[:300]!r}") from None
            # A fast replay that rebuilt different views is not a result;
            # say so loudly, but let the timing stand (--verify is the test for it).
            for view in ("entries", "dirs"):
                live, replayed = result.get(f"live_{view}_digest"), result.get(f"replay_{view}_digest")
                if live != replayed:
                    print(f"{REPLAY_CASE}: WARNING: {view} digest differs: live {live}, replayed {replayed}")
            return {"events": events, "events_per_s": per_s}
        return Prepared([evindex, "replay", "--db", str(db), "--json"], finish, capture=True)

    diff_db = scratch / "diff-db"

    def ensure_diff_db() -> Path:
        # Two runs of the whole tree: the index from before mktree --mutate and a
        # rescan after it, made once per invocation. diff, du --since and du --at read,
        # never write, so every repetition uses the same db.
        if not diff_db.exists():
            shutil.copytree(mutated.base_db, diff_db)
            print("diff db: rescanning the mutated tree ...", flush=True)
            measure([evindex, "run", str(mutated.tree), "--db", str(diff_db)])
        return diff_db

    def diff() -> Prepared:
        # Run 1 is folded into scratch views; run 2 is the latest, read from the live views.
        ensure_diff_db()

        def finish(stdout: str | None) -> dict[str, float]:
            try:
                summary = json.loads((stdout or "").strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise BenchError(f"evindex diff printed no usable JSON: {(stdout or '')[-300:]!r}") from None
            if summary.get("type") != "summary" or summary.get("equivalent"):
                print(f"{DIFF_CASE}: WARNING: the runs diff as equivalent: {summary}")
            return {"differences": float(summary.get("only_in_a", 0) + summary.get("only_in_b", 0) + summary.get("changed", 0))}
        # --json prints every difference: the cost of the whole comparison is timed,
        # not a --limit'ed human page. Its output goes to a file (measure's capture).
        return Prepared([evindex, "diff", "1", "2", "--db", str(diff_db), "--json"], finish, capture=True, ok_exit=(1,))

    def gitignore_run() -> Prepared:
        # The cache directory is made a repository of its own, so the tree is a work
        # tree (its .gitignore files apply, its projects' .git directories are git's own
        # data) instead of an ignored corner of the evindex checkout (`.bench/`).
        if not (tree.parent / ".git" / "HEAD").exists():
            subprocess.run(["git", "init", "-q", str(tree.parent)], check=True)
        return index_fresh("--gitignore")

    def lines(stdout: str | None) -> dict[str, float]:
        return {"lines": float(stdout or 0)}

    def streamed(args: list[str]) -> Prepared:
        path = [] if args[0] == "log" else [str(tree)]
        return Prepared([evindex, *args, *path, "--db", str(ensure_base_db())], lines, count_lines=True)

    plocate_db = scratch / "plocate-query.db"

    def plocate(pattern: str) -> Prepared:
        if not plocate_db.exists():
            subprocess.run([tools.updatedb, "-U", str(tree), "-o", str(plocate_db)], check=True)
        return Prepared(["plocate", "-d", str(plocate_db), "-b", "-i", pattern], lines, count_lines=True)

    cases = [
        Case(RUN_CASE, index_fresh),
        Case(GITIGNORE_CASE, gitignore_run),
        Case(RESCAN_CASE, lambda: rescan(tree, copy_db(ensure_base_db(), "rescan-db"))),
        Case(MUTATED_CASE, lambda: rescan(mutated.tree, copy_db(mutated.base_db, "mutated-db"))),
        Case(REPLAY_CASE, replay),
        Case(DIFF_CASE, diff),
        # Growth since run 1, from the directory-size history: the chart (what a person
        # asks) and every directory's deltas as JSON.
        Case(SINCE_CASE, lambda: Prepared(
            [evindex, "du", str(mutated.tree), "--since", "1", "--db", str(ensure_diff_db())], capture=True)),
        Case(SINCE_JSON_CASE, lambda: Prepared(
            [evindex, "du", str(mutated.tree), "--since", "1", "--depth", "100000", "--json", "--db", str(ensure_diff_db())],
            capture=True)),
        # The index as run 1 left it: the log folded through run 1 into scratch views.
        Case(AT_CASE, lambda: Prepared(
            [evindex, "du", str(mutated.tree), "--at", "1", "--db", str(ensure_diff_db())], capture=True)),
        Case("find", lambda: Prepared(["find", str(tree), "-printf", "%s %i %T@\\n"])),
        Case(FIND_SELECTIVE_CASE, lambda: streamed(["find", SELECTIVE])),
        Case(FIND_BROAD_CASE, lambda: streamed(["find", BROAD])),
        Case(f"find -iname *{SELECTIVE}*", lambda: Prepared(["find", str(tree), "-iname", f"*{SELECTIVE}*"], lines, count_lines=True)),
        Case(f"find -iname *{BROAD}*", lambda: Prepared(["find", str(tree), "-iname", f"*{BROAD}*"], lines, count_lines=True)),
    ]
    cases += [Case(name, lambda args=args: streamed(args)) for name, args in STREAM_CASES.items()]
    patterns = ensure_pattern_tree(scratch.parent)

    def index_patterns(*flags: str) -> Prepared:
        db = scratch / "patterns-db"
        shutil.rmtree(db, ignore_errors=True)
        return Prepared([evindex, "run", str(patterns), "--db", str(db), *flags])
    cases += [
        Case(PATTERNS_PLAIN_CASE, lambda: index_patterns()),
        Case(PATTERNS_CASE, lambda: index_patterns("--gitignore")),
        Case(PATTERNS_GIT_CASE, lambda: Prepared(
            ["env", "GIT_CONFIG_NOSYSTEM=1", "git", "-C", str(patterns), "ls-files", "--others", "--exclude-standard"],
            capture=True)),
    ]
    if baseline:
        cases.insert(1, Case(BASELINE_CASE, lambda: index_fresh(binary=baseline)))
    if tools.updatedb and shutil.which("plocate"):
        cases.append(Case(PLOCATE_SELECTIVE_CASE, lambda: plocate(SELECTIVE)))
        cases.append(Case(PLOCATE_BROAD_CASE, lambda: plocate(BROAD)))
    if tools.ncdu:
        cases.append(Case("ncdu", lambda: Prepared([tools.ncdu, "-0", "-x", "-o", "/dev/null", str(tree)])))
    if tools.gdu:
        # -n: no interactive mode, -p: no progress; it prints the top level's sizes.
        cases.append(Case("gdu", lambda: Prepared([tools.gdu, "-n", "-p", str(tree)])))
    if tools.updatedb:
        def updatedb() -> Prepared:
            out = scratch / "plocate.db"

            def finish(_stdout: str | None) -> dict[str, float]:
                out.unlink(missing_ok=True)
                return {}
            return Prepared([tools.updatedb, "-U", str(tree), "-o", str(out)], finish)
        cases.append(Case("updatedb.plocate", updatedb))
    return cases


def run_once(case: Case, i: int, runs: int) -> None:
    prepared = case.prepare()
    m, stdout = measure(prepared.argv, prepared.capture, prepared.ok_exit, prepared.count_lines)
    case.metrics.append(prepared.finish(stdout))
    case.runs.append(m)
    print(f"{case.name}: run {i + 1}/{runs} {m.wall_s:.3f} s, {rss_mb(m.rss_kib):.1f} MB", flush=True)


def run_table(args: argparse.Namespace, evindex: str, tools: Tools, size: int) -> Table:
    print(f"\n== {size} entries ==")
    tree, entries = ensure_tree(args.cache, size, args.mktree)
    mutated = ensure_mutated_tree(args.cache, size, args.mktree, evindex)

    # Both trees may come cold from disk (built by an earlier invocation).
    for t in (tree, mutated.tree):
        start = time.perf_counter()
        subprocess.run(["find", str(t)], stdout=subprocess.DEVNULL, check=True)
        print(f"warm-up: find {t.name} took {time.perf_counter() - start:.1f} s")

    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=args.cache))
    try:
        # The kernel carries a parent's RSS high-water mark across vfork+exec
        # into the child's ru_maxrss, so every figure includes at least this
        # process's own RSS; show it so small numbers are read correctly.
        floor, _ = measure(["true"])
        print(f"RSS floor inherited from bench.py: {rss_mb(floor.rss_kib):.1f} MB")
        cases = make_cases(evindex, tools, tree, mutated, scratch, args.baseline)
        # Round-robin, not case after case: this VM has slow spells lasting minutes, and
        # the ratios to ncdu are fair only if every tool is timed in the same spells.
        for i in range(args.runs):
            for case in cases:
                run_once(case, i, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Table(entries, tree, mutated, cases)


def rss_mb(kib: int) -> float:
    return kib * 1024 / 1e6  # ru_maxrss is in KiB on Linux


def print_table(table: Table) -> None:
    cases, entries = table.cases, table.entries
    ncdu = next((c for c in cases if c.name == "ncdu"), None)
    header = ["tool", "median s", "min s", "max s", "vs ncdu", "peak RSS MB",
              "db B/entry", "db MB on disk", "data.mdb grew B", "events/s", "lines", "lines/s"]
    rows = []
    for c in cases:
        walls = [m.wall_s for m in c.runs]
        # Repetitions start from the same state, so sizes are the same in
        # each; growth takes the worst, events/s the median like wall time.
        data_mdb = c.metric("data_mdb", max)
        allocated = c.metric("allocated", max)
        grew = c.metric("grew", max)
        per_s = c.metric("events_per_s", statistics.median)
        line_count = c.metric("lines", max)
        rows.append([
            c.name,
            f"{c.median_wall():.3f}", f"{min(walls):.3f}", f"{max(walls):.3f}",
            f"{c.median_wall() / ncdu.median_wall():.2f}×" if ncdu else "-",
            f"{c.peak_rss_mb():.1f}",
            f"{data_mdb / entries:.1f}" if data_mdb is not None else "-",
            f"{allocated / 1e6:.1f}" if allocated is not None else "-",
            f"{grew:+.0f}" if grew is not None else "-",
            f"{per_s:,.0f}" if per_s is not None else "-",
            f"{line_count:,.0f}" if line_count is not None else "-",
            f"{line_count / c.median_wall():,.0f}" if line_count is not None else "-",
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        # Left-align the name, right-align the numbers.
        print("  ".join(r[0].ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(r)))
    print(f"{MUTATED_CASE}: mktree did {json.dumps(table.mutated.summary)}")
    replay = table.case(REPLAY_CASE)
    events = replay.metric("events", max)
    print(f"{REPLAY_CASE}: events/s is replay's own figure; "
          f"{events:,.0f} events / median wall = {events / replay.median_wall():,.0f}/s")
    names = table.case(RUN_CASE).metric("name_index", max)
    if names is not None:
        print(f"name index (mdb_stat -s names): {names / 1e6:.1f} MB, {names / entries:.1f} B/entry of the db's "
              f"{table.case(RUN_CASE).metric('data_mdb', max) / entries:.1f}")
    for a, b in ((FIND_SELECTIVE_CASE, PLOCATE_SELECTIVE_CASE), (FIND_BROAD_CASE, PLOCATE_BROAD_CASE)):
        ours = table.case(a).metric("lines", max)
        theirs = next((c.metric("lines", max) for c in cases if c.name == b), None)
        if theirs is not None and ours != theirs:
            print(f"WARNING: {a} printed {ours:.0f} paths, {b} {theirs:.0f}")


def print_verdict(table: Table) -> None:
    ncdu = next((c for c in table.cases if c.name == "ncdu"), None)
    run, rescan, replay = table.case(RUN_CASE), table.case(RESCAN_CASE), table.case(REPLAY_CASE)
    diff = table.case(DIFF_CASE)
    gitignore = table.case(GITIGNORE_CASE)

    def verdict(ok: bool, shown: str) -> str:
        return f"{'PASS' if ok else 'FAIL'} ({shown})"

    def vs_ncdu(case: Case, limit: float) -> str:
        if not ncdu:
            return "SKIP (no ncdu)"
        ratio = case.median_wall() / ncdu.median_wall()
        return verdict(ratio <= limit, f"{ratio:.2f}x")

    grew = rescan.metric("grew", max)
    per_entry = run.metric("data_mdb", max) / table.entries
    per_s = replay.metric("events_per_s", statistics.median)
    checks = [
        ("issue 2", f"evindex run wall <= {RUN_WALL_RATIO}x ncdu", vs_ncdu(run, RUN_WALL_RATIO)),
        ("issue 2", f"evindex run peak RSS <= {RUN_RSS_MB} MB",
         verdict(run.peak_rss_mb() <= RUN_RSS_MB, f"{run.peak_rss_mb():.0f} MB")),
        ("issue 3", f"no-change rescan wall <= {RESCAN_WALL_RATIO}x ncdu", vs_ncdu(rescan, RESCAN_WALL_RATIO)),
        ("issue 3", f"no-change rescan data.mdb growth < {RESCAN_GROWTH_B / 1e6:g} MB",
         verdict(grew < RESCAN_GROWTH_B, f"{grew:+.0f} B")),
        ("issue 4", f"replay >= {REPLAY_EVENTS_PER_S:,} events/s",
         verdict(per_s >= REPLAY_EVENTS_PER_S, f"{per_s:,.0f}/s")),
        ("issue 5", f"run --gitignore wall <= {GITIGNORE_RATIO}x run without rules",
         verdict(gitignore.median_wall() <= GITIGNORE_RATIO * run.median_wall(),
                 f"{gitignore.median_wall() / run.median_wall():.2f}x")),
        ("issue 6", f"diff of two runs wall <= {DIFF_WALL_S:g} s",
         verdict(diff.median_wall() <= DIFF_WALL_S, f"{diff.median_wall():.3f} s")),
        ("issue 6", f"diff of two runs peak RSS <= {DIFF_RSS_MB} MB",
         verdict(diff.peak_rss_mb() <= DIFF_RSS_MB, f"{diff.peak_rss_mb():.0f} MB")),
        ("issue 7", f"evindex run wall <= {FAST_RUN_RATIO}x ncdu", vs_ncdu(run, FAST_RUN_RATIO)),
        ("issue 7", f"evindex run peak RSS <= {FAST_RUN_RSS_MB} MB",
         verdict(run.peak_rss_mb() <= FAST_RUN_RSS_MB, f"{run.peak_rss_mb():.0f} MB")),
        ("issue 7", f"no-change rescan wall <= {FAST_RESCAN_RATIO}x ncdu", vs_ncdu(rescan, FAST_RESCAN_RATIO)),
        ("issue 7", f"database after one full run <= {DB_BYTES_PER_ENTRY} B/entry",
         verdict(per_entry <= DB_BYTES_PER_ENTRY, f"{per_entry:.1f} B/entry")),
        ("issue 16", f"database after one full run <= {SIZES_BYTES_PER_ENTRY} B/entry",
         verdict(per_entry <= SIZES_BYTES_PER_ENTRY, f"{per_entry:.1f} B/entry")),
        ("issue 16", f"du --since after --mutate {MUTATE_OPS} wall <= {SINCE_WALL_S:g} s",
         verdict(table.case(SINCE_CASE).median_wall() <= SINCE_WALL_S, f"{table.case(SINCE_CASE).median_wall():.3f} s")),
        ("issue 16", f"du --at the run before wall <= {AT_WALL_S:g} s",
         verdict(table.case(AT_CASE).median_wall() <= AT_WALL_S, f"{table.case(AT_CASE).median_wall():.3f} s")),
    ]
    names = {c.name: c for c in table.cases}
    for ours, theirs in ((FIND_SELECTIVE_CASE, PLOCATE_SELECTIVE_CASE), (FIND_BROAD_CASE, PLOCATE_BROAD_CASE)):
        if theirs in names:
            ratio = names[ours].median_wall() / names[theirs].median_wall()
            checks.append(("issue 17", f"{ours} wall <= {FIND_VS_PLOCATE:g}x {theirs}",
                           verdict(ratio <= FIND_VS_PLOCATE, f"{ratio:.2f}x")))
        else:
            checks.append(("issue 17", f"{ours} wall <= {FIND_VS_PLOCATE:g}x plocate", "SKIP (no plocate)"))
    if BASELINE_CASE in names:
        ratio = run.median_wall() / names[BASELINE_CASE].median_wall()
        checks.append(("issue 17", f"evindex run <= {NAME_INDEX_RUN_RATIO:g}x the --baseline's run",
                       verdict(ratio <= NAME_INDEX_RUN_RATIO, f"{ratio:.2f}x")))
    ratio = names[PATTERNS_CASE].median_wall() / names[PATTERNS_PLAIN_CASE].median_wall()
    checks.append(("issue 21", f"5,000 ignore patterns: run --gitignore <= {PATTERNS_RATIO:g}x the run without rules",
                   verdict(ratio <= PATTERNS_RATIO, f"{ratio:.2f}x")))
    for name in STREAM_CASES:
        c = names[name]
        rate = c.metric("lines", max) / c.median_wall()
        checks.append(("issue 17", f"{name} >= {LINES_PER_S:,} lines/s",
                       verdict(rate >= LINES_PER_S, f"{rate:,.0f}/s")))
    print(f"targets ({table.entries} entries):")
    width = max(len(what) for _, what, _ in checks)
    for issue, what, result in checks:
        print(f"  {issue}  {what.ljust(width)}  {result}")


def print_scaling(small: Table, large: Table) -> None:
    """How the first index's cost per entry grows with the tree: 1.00x is linear."""
    cost = [t.case(RUN_CASE).median_wall() / t.entries * 1e6 for t in (small, large)]
    ratio = cost[1] / cost[0]
    print(f"\n{RUN_CASE} per entry: {cost[0]:.2f} µs at {small.entries}, {cost[1]:.2f} µs at {large.entries}")
    print(f"  issue 7  per-entry cost at {large.entries} / at {small.entries} <= {SCALING_RATIO}  "
          f"{'PASS' if ratio <= SCALING_RATIO else 'FAIL'} ({ratio:.2f}x)")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evindex", required=True, help="evindex binary to benchmark")
    ap.add_argument("--entries", type=int, default=1_000_000, help="tree size (default %(default)s)")
    ap.add_argument("--runs", type=int, default=5, help="repetitions per case (default %(default)s)")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench", help="where trees and scratch dbs live")
    ap.add_argument("--mktree", type=Path, default=REPO / "Fixtures" / "mktree.py", help="tree generator")
    ap.add_argument("--quick", action="store_true", help="smoke test: 100000 entries, 1 run")
    ap.add_argument("--baseline", help="another evindex binary whose first index is timed beside this one's")
    ap.add_argument("--also-small", action="store_true",
                    help=f"run the whole table for {SMALL_ENTRIES} entries too, and compare the per-entry cost "
                         "(make bench does)")
    args = ap.parse_args()
    if args.quick:
        args.entries, args.runs = 100_000, 1
    # evindex records a root by its absolute path; a cached db must keep
    # naming the same root whatever directory bench.py is started from.
    args.cache = args.cache.resolve()
    return args


def main() -> int:
    args = parse_args()
    # Check the binary before spending minutes on a tree.
    evindex = shutil.which(args.evindex)
    if not evindex:
        print(f"bench: {args.evindex} is not an executable", file=sys.stderr)
        return 2
    evindex = os.path.abspath(evindex)
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
    args.cache.mkdir(parents=True, exist_ok=True)
    tools = Tools.find()

    # The small table first: it fails fast if something is broken.
    sizes = [args.entries]
    if args.also_small and args.entries != SMALL_ENTRIES:
        sizes.insert(0, SMALL_ENTRIES)
    try:
        tables = [run_table(args, evindex, tools, size) for size in sizes]
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1

    for table in tables:
        print(f"\n{table.entries} entries in {table.tree}, {args.runs} run(s) per case")
        print_table(table)
        print_verdict(table)
    if len(tables) > 1:
        print_scaling(tables[0], tables[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
