#!/usr/bin/env python3
"""Random git work trees full of ignore files, and git itself as the oracle.

  gitignore_cases.py make DEST --seed S
      Builds DEST/home (a HOME with git's global excludes file, set in .gitconfig or at
      the XDG default) and DEST/tree (`git init`-ed, no commits) holding nested
      .gitignore files with random patterns: negations, anchored and unanchored ones,
      `**` in every position, dir-only patterns, escapes, trailing spaces, classes, CRLF
      lines, re-includes inside excluded folders; plus .git/info/exclude, and sometimes a
      nested repository with its own rules.

  gitignore_cases.py check DEST LS_JSON LOG_JSON
      Compares what evindex indexed and rejected with git:
      - regular files in `evindex ls -R --json` == `git ls-files --others
        --exclude-standard` (each nested repository asked in its own work tree);
      - every PathRejected whose rule is a gitignore pattern == `git check-ignore -v`
        (source file, line and pattern).
      Prints a JSON summary; exit status 1 on any mismatch.
"""
import base64, json, os, random, subprocess, sys

NAMES = ["a", "b", "foo", "bar", "build", "dist", "src", "lib", "doc", "node_modules", "deep",
         "x.log", "y.tmp", "keep.txt", "t.o", "main.c", "readme.md", ".env", "#hash", "!bang",
         "sp ace", "trail ", "A1", "b2.log", "cache", "out.bin", "z9.tmp"]
DIRS = ["build", "dist", "src", "lib", "doc", "node_modules", "deep", "cache", "out", "a", "b", "sub"]
EXTS = ["log", "tmp", "o", "c", "md", "txt", "bin"]


def pattern(r):
    n = r.choice(NAMES).rstrip(" ")
    d = r.choice(DIRS)
    e = r.choice(EXTS)
    forms = [
        n, n + "/", "/" + n, "*." + e, "!" + n, "!*." + e, "!" + d + "/" + n, d + "/",
        "/" + d + "/", d + "/*." + e, d + "/**/" + n, "**/" + n, "**/" + d + "/", d + "/**",
        "**/" + d + "/**/*." + e, "[ab]*.txt", "[!a]*.log", "?." + e, "\\#hash", "\\!bang",
        "trail\\ ", "sp ace   ", "# a comment", "", "[[:digit:]]*", "[[:upper:]]1", "*" + e,
        d + "/" + n, "/" + d + "/" + n, "!" + d + "/", "!/" + d, "a**b", "*/" + n,
        "!**/keep.txt", d + "/*/", "\\" + n[:1] + n[1:],
        d + "/a**/" + n, "/" + d + "/b**", d + "/**/", "*/*." + e,
    ]
    # "**" alone ignores everything: rare, or most trees would be empty.
    return "**" if r.random() < 0.01 else r.choice(forms)


def make(dest, seed):
    r = random.Random(seed)
    home = os.path.join(dest, "home")
    tree = os.path.join(dest, "tree")
    os.makedirs(home)
    os.makedirs(tree)
    git(tree, "init", "-q", ".")
    global_patterns = "\n".join(pattern(r) for _ in range(r.randint(0, 4))) + "\n"
    if r.random() < 0.5:
        with open(os.path.join(home, "global-ignore"), "w") as f:
            f.write(global_patterns)
        with open(os.path.join(home, ".gitconfig"), "w") as f:
            f.write("[user]\n\tname = t\n[core]\n\texcludesFile = ~/global-ignore\n")
    else:
        os.makedirs(os.path.join(home, ".config", "git"))
        with open(os.path.join(home, ".config", "git", "ignore"), "w") as f:
            f.write(global_patterns)
    with open(os.path.join(tree, ".git", "info", "exclude"), "a") as f:
        f.write("\n".join(pattern(r) for _ in range(r.randint(0, 4))) + "\n")
    if r.random() < 0.3:
        # The repository's own excludes file: relative to the top, with a comment after it;
        # it replaces the user's.
        with open(os.path.join(tree, "repo-excludes"), "w") as f:
            f.write("\n".join(pattern(r) for _ in range(r.randint(1, 4))) + "\n")
        git(tree, "config", "core.excludesFile", "repo-excludes")
        with open(os.path.join(tree, ".git", "config"), "a") as f:
            f.write("[core]\n\texcludesFile = repo-excludes ; the repository's own\n")
    nested = r.random() < 0.4
    fill(r, tree, 0, nested)


def fill(r, d, depth, nested):
    if r.random() < 0.8:
        lines = [pattern(r) for _ in range(r.randint(1, 8))]
        sep = "\r\n" if r.random() < 0.2 else "\n"
        with open(os.path.join(d, ".gitignore"), "w", newline="") as f:
            f.write(sep.join(lines) + (sep if r.random() < 0.8 else ""))
    for _ in range(r.randint(2, 9)):
        name = r.choice(NAMES) if r.random() < 0.7 else r.choice(NAMES).rstrip(" ") + "." + r.choice(EXTS)
        p = os.path.join(d, name)
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write("x" * r.randint(0, 50))
    if depth < 4:
        for _ in range(r.randint(0, 4 - depth)):
            sub = os.path.join(d, r.choice(DIRS))
            if os.path.exists(sub):
                continue
            os.mkdir(sub)
            if nested and depth == 1 and r.random() < 0.5:
                git(sub, "init", "-q", ".")
                nested = False
            elif r.random() < 0.05:
                # An empty .git directory is no repository: the parent's rules go on.
                os.mkdir(os.path.join(sub, ".git"))
            fill(r, sub, depth + 1, nested)


def env(dest):
    e = dict(os.environ)
    e["HOME"] = os.path.join(dest, "home")
    e.pop("XDG_CONFIG_HOME", None)
    e.pop("GIT_CONFIG_GLOBAL", None)
    e["GIT_CONFIG_NOSYSTEM"] = "1"
    return e


def git(cwd, *args, dest=None, input=None):
    return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=cwd, check=True, capture_output=True,
                          env=env(dest) if dest else None, input=input).stdout


def path_of(obj, key="path"):
    if key + "_b64" in obj:
        return base64.b64decode(obj[key + "_b64"])
    return obj[key].encode()


def expected_files(dest, work_tree):
    """Regular files git reports as untracked and not ignored, nested repositories asked in turn."""
    out = set()
    for rel in git(work_tree, "ls-files", "--others", "--exclude-standard", "-z", dest=dest).split(b"\0"):
        if not rel:
            continue
        full = os.path.join(os.fsencode(work_tree), rel)
        if rel.endswith(b"/"):
            out |= expected_files(dest, os.fsdecode(full.rstrip(b"/")))
        elif os.path.isfile(full) and not os.path.islink(full):
            out.add(full)
    return out


def is_repository(d):
    g = os.path.join(d, b".git")
    return os.path.isfile(g) or os.path.exists(os.path.join(g, b"HEAD"))


def work_tree_of(path):
    d = os.path.dirname(path)
    while not is_repository(d):
        d = os.path.dirname(d)
    return d


def check(dest, ls_json, log_json):
    tree = os.path.realpath(os.path.join(dest, "tree"))
    indexed = set()
    with open(ls_json, "rb") as f:
        for line in f:
            o = json.loads(line)
            if o["kind"] == "file":
                indexed.add(path_of(o))
    expected = expected_files(dest, tree)
    rejections = []
    with open(log_json, "rb") as f:
        for line in f:
            o = json.loads(line)
            if o["type"] == "PathRejected" and o["rule"].startswith("gitignore /"):
                rejections.append((path_of(o), o["rule"][len("gitignore "):]))
    mismatches = []
    for p in sorted(indexed - expected):
        mismatches.append({"indexed_but_git_does_not_list": os.fsdecode(p)})
    for p in sorted(expected - indexed):
        mismatches.append({"git_lists_but_not_indexed": os.fsdecode(p)})
    by_tree = {}
    for p, rule in rejections:
        by_tree.setdefault(work_tree_of(p), []).append((p, rule))
    checked = 0
    for wt, items in by_tree.items():
        rels = b"\0".join(os.path.relpath(p, wt) for p, _ in items) + b"\0"
        out = subprocess.run(["git", "-c", "safe.directory=*", "check-ignore", "-v", "-z", "--no-index", "--stdin"],
                             cwd=wt, input=rels, capture_output=True, env=env(dest)).stdout.split(b"\0")
        answers = {}
        for i in range(0, len(out) - 3, 4):
            source, line, pat, path = out[i:i + 4]
            src = source if source.startswith(b"/") else os.path.join(wt, source)
            answers[os.path.join(wt, path)] = (os.path.normpath(src), int(line), pat)
        for p, rule in items:
            checked += 1
            # rule: SOURCE:LINE:PATTERN (SOURCE absolute)
            src, rest = rule.encode().split(b":", 1)
            line, pat = rest.split(b":", 1)
            got = answers.get(p)
            mine = (os.path.normpath(src), int(line), pat)
            if got != mine:
                mismatches.append({"path": os.fsdecode(p), "evindex": [os.fsdecode(x) if isinstance(x, bytes) else x for x in mine],
                                   "git": None if got is None else [os.fsdecode(x) if isinstance(x, bytes) else x for x in got]})
    summary = {"files_expected": len(expected), "files_indexed": len(indexed), "rejections_checked": checked,
               "mismatches": mismatches[:50], "mismatch_count": len(mismatches)}
    print(json.dumps(summary))
    return 1 if mismatches else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1)
    elif sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
