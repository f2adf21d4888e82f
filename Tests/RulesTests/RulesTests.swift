import Foundation
import Indexing
import TestSupport
import Testing
import Traversal

@testable import Rules

/// Indexer rules end to end: git itself is the oracle for `--gitignore`; `find` (with the
/// same globs, prunes and depth) for the other kinds; hand-built trees where neither fits.
@Suite(.serialized)
struct RulesTests {
    static let cases = Support.fixtures.appendingPathComponent("gitignore_cases.py").path

    /// `gitignore_cases.py check`: the index of `dest/tree` in `db` (its `ls -R` and its
    /// log) against what git says of the work tree; scratch files go to `tmp`.
    static func checkAgainstGit(_ dest: String, db: String, tmp: String) throws -> Support.Result {
        let ls = try Support.evindex(["ls", dest + "/tree", "-R", "--json", "--db", db])
        let log = try Support.evindex(["log", "--json", "--db", db])
        try ls.stdout.write(to: URL(fileURLWithPath: tmp + "/ls.json"))
        try log.stdout.write(to: URL(fileURLWithPath: tmp + "/log.json"))
        return try Support.run(["/usr/bin/env", "python3", cases, "check", dest, tmp + "/ls.json", tmp + "/log.json"])
    }

    /// What the index holds below `root`, as paths relative to it (directories end in "/").
    static func indexed(_ root: String, _ db: String) throws -> Set<String> {
        let ls = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
        #expect(ls.status == 0, "\(ls.stderr)")
        return Set(
            try Support.objects(ls.stdout).map { o in
                let p = String(decoding: Support.pathBytes(o), as: UTF8.self)
                return String(p.dropFirst(root.count + 1)) + ((o["kind"] as! String) == "dir" ? "/" : "")
            })
    }

    /// `find ROOT -mindepth 1 ARGS -print`, relative paths, directories ending in "/".
    static func find(_ root: String, _ args: [String]) throws -> Set<String> {
        // The expression's -print (or the end of it) prints relative path and type.
        let format = ["-printf", "%P\\0%y\\0"]
        let expression = args.contains("-print") ? args.flatMap { $0 == "-print" ? format : [$0] } : args + format
        let r = try Support.run(["/usr/bin/find", root, "-mindepth", "1"] + expression)
        #expect(r.status == 0, "find: \(r.stderr)")
        let fields = r.stdout.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        var out = Set<String>()
        var i = 0
        while i + 1 < fields.count {
            out.insert(fields[i] + (fields[i + 1] == "d" ? "/" : ""))
            i += 2
        }
        return out
    }

    /// The PathRejected events of a database: path relative to `root` → rule.
    static func rejections(_ root: String, _ db: String, run: Int? = nil) throws -> [String: String] {
        let log = try Support.evindex(["log", "--json", "--db", db] + (run.map { ["--run", String($0)] } ?? []))
        #expect(log.status == 0, "\(log.stderr)")
        var out: [String: String] = [:]
        for o in try Support.objects(log.stdout) where o["type"] as? String == "PathRejected" {
            let p = String(decoding: Support.pathBytes(o), as: UTF8.self)
            out[String(p.dropFirst(root.count + 1))] = o["rule"] as? String
        }
        return out
    }

    static func expectSame(
        _ got: Set<String>, _ want: Set<String>, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let same = got == want
        #expect(
            same,
            "\(what): indexed but not expected \(got.subtracting(want).sorted().prefix(5)), expected but not indexed \(want.subtracting(got).sorted().prefix(5))",
            sourceLocation: sourceLocation)
    }

    // MARK: - git

    /// 60 generated work trees (nested .gitignore files, negations, anchored and unanchored
    /// patterns, `**`, dir-only patterns, re-includes inside excluded folders, escapes,
    /// trailing spaces, CRLF, info/exclude, the global excludes file, nested repositories):
    /// the regular files indexed are exactly `git ls-files --others --exclude-standard`,
    /// and every gitignore PathRejected names what `git check-ignore -v` names.
    @Test func gitignoreAgreesWithGitOnGeneratedWorkTrees() throws {
        var files = 0, checked = 0
        for seed in 1...60 {
            try Support.withTemporaryDirectory { tmp in
                let dest = tmp + "/case"
                let made = try Support.run(["/usr/bin/env", "python3", Self.cases, "make", dest, "--seed", String(seed)])
                try #require(made.status == 0, "generator: \(made.stderr)")
                var env = ProcessInfo.processInfo.environment
                env["HOME"] = dest + "/home"
                env["XDG_CONFIG_HOME"] = nil
                env["GIT_CONFIG_GLOBAL"] = nil
                let db = tmp + "/db"
                let run = try Support.run([Support.evindex, "run", dest + "/tree", "--gitignore", "--db", db], environment: env)
                try #require(run.status == 0, "run: \(run.stderr)")
                let check = try Self.checkAgainstGit(dest, db: db, tmp: tmp)
                #expect(check.status == 0, "seed \(seed): \(check.text) \(check.stderr)")
                if let summary = try? JSONSerialization.jsonObject(with: check.stdout) as? [String: Any] {
                    files += summary["files_expected"] as? Int ?? 0
                    checked += summary["rejections_checked"] as? Int ?? 0
                }
            }
        }
        // Not vacuous: hundreds of files listed by git and of rejections checked by git.
        #expect(files > 800, "only \(files) files compared")
        #expect(checked > 300, "only \(checked) rejections compared")
    }

    /// `git` in `dir`, as the tests' user, failing the test on an error.
    @discardableResult
    static func git(_ dir: String, _ args: [String]) throws -> String {
        let r = try Support.run(["/usr/bin/env", "git", "-C", dir, "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@t"] + args)
        #expect(r.status == 0, "git \(args): \(r.stderr)")
        return r.text
    }

    /// A root below the top of its work tree: the .gitignore files above it apply, with
    /// their paths anchored at their own directories; a root inside a directory git
    /// ignores has every entry rejected by that pattern; outside any work tree (an empty
    /// `.git` is no repository) no .gitignore applies.
    @Test func gitignoreAboveTheRootAndOutsideWorkTrees() throws {
        try Support.withTemporaryDirectory { tmp in
            let top = tmp + "/repo"
            for d in ["/repo/sub/inner", "/repo/build/deep", "/plain/.git"] {
                try FileManager.default.createDirectory(atPath: tmp + d, withIntermediateDirectories: true)
            }
            try Self.git(top, ["init", "-q"])
            try "*.log\n/sub/inner/b.txt\nbuild/\n".write(toFile: top + "/.gitignore", atomically: true, encoding: .utf8)
            for f in ["/repo/build/g", "/repo/build/deep/f"] { _ = FileManager.default.createFile(atPath: tmp + f, contents: Data()) }
            try "*.log\n".write(toFile: tmp + "/plain/.gitignore", atomically: true, encoding: .utf8)
            for f in ["/repo/sub/inner/a.log", "/repo/sub/inner/b.txt", "/repo/sub/inner/c.txt", "/plain/x.log"] {
                _ = FileManager.default.createFile(atPath: tmp + f, contents: Data())
            }
            let db = tmp + "/db"
            #expect(try Support.evindex(["run", top + "/sub", "--gitignore", "--db", db]).status == 0)
            Self.expectSame(try Self.indexed(top + "/sub", db), ["inner/", "inner/c.txt"], "root inside a work tree")
            let rules = try Self.rejections(top + "/sub", db)
            #expect(rules["inner/a.log"] == "gitignore \(top)/.gitignore:1:*.log")
            #expect(rules["inner/b.txt"] == "gitignore \(top)/.gitignore:2:/sub/inner/b.txt")
            #expect(try Support.evindex(["run", tmp + "/plain", "--gitignore", "--db", db]).status == 0)
            Self.expectSame(try Self.indexed(tmp + "/plain", db), [".git/", ".gitignore", "x.log"], "no work tree")

            // The root inside an ignored directory: git lists nothing of it, and says why.
            #expect(try Support.evindex(["run", top + "/build", "--gitignore", "--db", db]).status == 0)
            Self.expectSame(try Self.indexed(top + "/build", db), [], "root inside an ignored directory")
            #expect(try Self.git(top, ["ls-files", "--others", "--exclude-standard", "build"]).isEmpty)
            #expect(
                try Self.rejections(top + "/build", db, run: 3) == [
                    "deep": "gitignore \(top)/.gitignore:3:build/", "g": "gitignore \(top)/.gitignore:3:build/",
                ])
            #expect(try Self.git(top, ["check-ignore", "-v", "build/g"]).hasPrefix(".gitignore:3:build/"))
        }
    }

    /// A linked worktree (`.git` is a `gitdir:` file) uses its main repository's
    /// info/exclude, as `git ls-files` there does.
    @Test func linkedWorktreeUsesTheMainRepositorysExcludes() throws {
        try Support.withTemporaryDirectory { tmp in
            let main = tmp + "/main", linked = tmp + "/linked"
            try FileManager.default.createDirectory(atPath: main, withIntermediateDirectories: true)
            try Self.git(main, ["init", "-q"])
            try Self.git(main, ["commit", "-q", "--allow-empty", "-m", "start"])
            try Self.git(main, ["worktree", "add", "-q", linked])
            try "*.tmp\n".write(toFile: main + "/.git/info/exclude", atomically: true, encoding: .utf8)
            for f in ["x.tmp", "y.txt"] { _ = FileManager.default.createFile(atPath: linked + "/" + f, contents: Data()) }
            let db = tmp + "/db"
            #expect(try Support.evindex(["run", linked, "--gitignore", "--db", db]).status == 0)
            let files = try Self.indexed(linked, db).filter { !$0.hasSuffix("/") }
            let git = Set(try Self.git(linked, ["ls-files", "--others", "--exclude-standard"]).split(separator: "\n").map(String.init))
            #expect(Set(files) == git, "evindex \(files.sorted()), git \(git.sorted())")
            #expect(try Self.rejections(linked, db)["x.tmp"] == "gitignore \(main)/.git/info/exclude:1:*.tmp")
        }
    }

    /// A FIFO where git keeps a file (`.git/info/exclude`) is skipped, not waited on.
    @Test func fifoInRepositoryMetadataDoesNotHang() throws {
        try Support.withTemporaryDirectory { tmp in
            let repo = tmp + "/repo"
            try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
            try Self.git(repo, ["init", "-q"])
            try FileManager.default.removeItem(atPath: repo + "/.git/info/exclude")
            #expect(mkfifo(repo + "/.git/info/exclude", 0o644) == 0)
            _ = FileManager.default.createFile(atPath: repo + "/a.txt", contents: Data())
            let r = try Support.run(["/usr/bin/timeout", "30", Support.evindex, "run", repo, "--gitignore", "--db", tmp + "/db"])
            #expect(r.status == 0, "exit \(r.status): \(r.stderr)")
            Self.expectSame(try Self.indexed(repo, tmp + "/db"), ["a.txt"], "repository with a FIFO exclude file")
        }
    }

    // MARK: - The other rule kinds, against find

    /// Each glob scope, hidden, max-depth and accept on a mktree tree, each against `find`
    /// with the equivalent test; rejected directories are not entered (nothing below them
    /// is rejected or indexed).
    @Test func ruleKindsAgreeWithFind() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 4000, seed: 21)
            var n = 0
            func check(_ flags: [String], _ findArgs: [String], _ what: String) throws {
                n += 1
                let db = tmp + "/db\(n)"
                let r = try Support.evindex(["run", root, "--db", db] + flags)
                try #require(r.status == 0, "\(what): \(r.stderr)")
                let got = try Self.indexed(root, db)
                Self.expectSame(got, try Self.find(root, findArgs), what)
                #expect(!got.isEmpty, "\(what): nothing indexed")
            }
            let prune = { (test: [String]) in ["("] + test + [")", "-prune", "-o"] }
            try check(["--reject", "*.log"], prune(["-name", "*.log"]) + ["-print"], "reject by name")
            try check(
                ["--reject", "node_modules", "--reject", "*.tmp"], prune(["-name", "node_modules", "-o", "-name", "*.tmp"]) + ["-print"],
                "two reject globs")
            try check(["--no-hidden"], prune(["-name", ".*"]) + ["-print"], "no hidden")
            try check(["--max-depth", "2"], ["-maxdepth", "2"], "max depth 2")
            try check(["--max-depth", "1"], ["-maxdepth", "1"], "max depth 1")  // the root's entries are at depth 1
            try check(
                ["--accept", "*.jpg", "--accept", "*.png"], ["(", "-type", "d", "-o", "-name", "*.jpg", "-o", "-name", "*.png", ")"],
                "accept globs limit files, not directories")
            try check(
                ["--preset", "only-images"],
                ["(", "-type", "d", "-o", "-name", "*.jpg", "-o", "-name", "*.png", "-o", "-name", "*.gif", ")"],
                "preset only-images")
            try check(["--preset", "no-hidden"], prune(["-name", ".*"]) + ["-print"], "preset no-hidden")
            try check(["--preset", "no-git"], prune(["-name", ".git", "-o", "-name", ".gitignore"]) + ["-print"], "preset no-git")
            // Reject wins over accept; a path glob is matched below the root.
            try check(
                ["--accept", "*.jpg", "--reject", "Media"],
                prune(["-path", root + "/Media"]) + ["(", "-type", "d", "-o", "-name", "*.jpg", ")", "-print"],
                "reject wins over accept")
            try check(["--reject", "awkward/*.txt"], prune(["-path", root + "/awkward/*.txt"]) + ["-print"], "relative path glob")
            try check(["--reject", root + "/wide"], prune(["-path", root + "/wide"]) + ["-print"], "absolute path glob")
            try check(
                ["--reject-if-child", ".git"], prune(["-type", "d", "-exec", "test", "-d", "{}/.git", ";"]) + ["-print"],
                "reject-if-child")
        }
    }

    /// Rejected entries are PathRejected events naming their rule, once each: nothing is
    /// recorded below a rejected directory.
    @Test func rejectionsNameTheirRuleAndStopTheDescent() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            for d in ["a/node_modules/x", "a/src", ".cache"] {
                try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
            }
            for f in ["a/node_modules/x/m.js", "a/src/m.js", "a/src/debug.log", ".cache/c", "top.log"] {
                _ = FileManager.default.createFile(atPath: root + "/" + f, contents: Data())
            }
            #expect(try Support.evindex(["run", root, "--reject", "node_modules", "--reject", "*.log", "--no-hidden", "--db", db]).status == 0)
            #expect(
                try Self.rejections(root, db) == [
                    "a/node_modules": "reject node_modules", "a/src/debug.log": "reject *.log", "top.log": "reject *.log", ".cache": "hidden",
                ])
            Self.expectSame(try Self.indexed(root, db), ["a/", "a/src/", "a/src/m.js"], "indexed")
            let why = try Support.evindex(["why", root + "/a/node_modules/x/m.js", "--json", "--db", db])
            #expect(why.status == 1)
            let answer = try Support.objects(why.stdout)[0]
            #expect(answer["rule"] as? String == "reject node_modules")
            #expect(answer["event"] as? String == "PathRejected")
            #expect(String(decoding: Support.pathBytes(answer, key: "at"), as: UTF8.self) == root + "/a/node_modules")
            #expect(try Support.evindex(["why", root + "/a/src/m.js", "--db", db]).status == 0)
            // Bad input: a path under no indexed root, a run that does not exist.
            let outside = try Support.evindex(["why", tmp + "/elsewhere/x", "--db", db])
            #expect(outside.status == 2 && outside.stderr.hasPrefix("evindex: \(tmp)/elsewhere/x is not under any indexed root"), "\(outside.stderr)")
            for command in [["show", "99"], ["export", "99"], ["log", "--run", "99"], ["diff", "1", "99"]] {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 2 && r.stderr == "evindex: no run 99 in \(db)\n", "\(command): \(r.stderr)")
            }
        }
    }

    /// require-child: files only inside a directory with the child directories (or below
    /// one); other directories are walked through, so repositories at any depth are found.
    @Test func requireChildAndOnlyGitRepositories() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            for d in ["notes", "code/app/.git", "code/app/src", "code/group/lib/.git", "code/group/lib/x", "code/tool/.svn"] {
                try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
            }
            for f in [
                "readme", "notes/n.txt", "code/app/main.c", "code/app/src/a.c", "code/app/.git/HEAD", "code/group/g.txt",
                "code/group/lib/x/l.c", "code/tool/t.c",
            ] {
                _ = FileManager.default.createFile(atPath: root + "/" + f, contents: Data())
            }
            let dirs: Set<String> = [
                "notes/", "code/", "code/app/", "code/app/.git/", "code/app/src/", "code/group/", "code/group/lib/",
                "code/group/lib/.git/", "code/group/lib/x/", "code/tool/", "code/tool/.svn/",
            ]
            let db = tmp + "/db"
            #expect(try Support.evindex(["run", root, "--preset", "only-git-repos", "--db", db]).status == 0)
            Self.expectSame(
                try Self.indexed(root, db),
                dirs.union(["code/app/main.c", "code/app/src/a.c", "code/app/.git/HEAD", "code/group/lib/x/l.c"]),
                "only git repositories")
            let rules = try Self.rejections(root, db)
            #expect(Set(rules.keys) == ["readme", "notes/n.txt", "code/group/g.txt", "code/tool/t.c"])
            // Both children required.
            let db2 = tmp + "/db2"
            #expect(try Support.evindex(["run", root, "--require-child", ".git", "--require-child", "src", "--db", db2]).status == 0)
            Self.expectSame(
                try Self.indexed(root, db2), dirs.union(["code/app/main.c", "code/app/src/a.c", "code/app/.git/HEAD"]),
                "two required children")
            // reject-if-child: the repositories go, with everything in them.
            let db3 = tmp + "/db3"
            #expect(try Support.evindex(["run", root, "--reject-if-child", ".git", "--db", db3]).status == 0)
            Self.expectSame(
                try Self.indexed(root, db3),
                ["readme", "notes/", "notes/n.txt", "code/", "code/group/", "code/group/g.txt", "code/tool/", "code/tool/.svn/", "code/tool/t.c"],
                "reject-if-child .git")
        }
    }

    /// The no-system preset: OS-protected names anywhere, system paths by absolute path.
    @Test func noSystemPreset() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            for d in ["lost+found/x", ".Trash-0/files", "keep/System Volume Information", "keep/proc"] {
                try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
            }
            #expect(try Support.evindex(["run", root, "--preset", "no-system", "--db", db]).status == 0)
            // "proc" below the root is not /proc.
            Self.expectSame(try Self.indexed(root, db), ["keep/", "keep/proc/"], "no-system")
        }
    }

    // MARK: - Bad input

    /// A malformed glob, rules file, preset or depth: one line naming the file (or flag),
    /// the line and the problem; exit 2; nothing written.
    @Test func malformedRulesStopTheRunBeforeItStarts() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let rules = tmp + "/bad.rules"
            let cases: [([String], String, String)] = [
                (["--reject", "[a-"], "tree", "evindex: --reject [a-: bad glob \"[a-\": unclosed [ at byte 1"),
                (["--accept", "x[[:nope:]]"], "tree", "evindex: --accept x[[:nope:]]: bad glob \"x[[:nope:]]\": unknown character class [:nope:]"),
                (["--rules", rules], "# ok\nreject *.o\n\nrejekt *.tmp\n", "evindex: \(rules):4: unknown rule \"rejekt\""),
                (["--rules", rules], "accept\n", "evindex: \(rules):1: accept needs an argument"),
                (["--rules", rules], "reject *.o\nmax-depth -3\n", "evindex: \(rules):2: max-depth takes a whole number of 1 or more, not \"-3\""),
                (["--rules", rules], "hidden maybe\n", "evindex: \(rules):1: hidden takes on or off, not \"maybe\""),
                (["--rules", rules], "reject a\\\n", "evindex: \(rules):1: bad glob \"a\\\": ends with an unescaped backslash"),
                (["--rules", rules], "require-child a/b\n", "evindex: \(rules):1: \"a/b\" is not a directory name"),
                (["--rules", tmp + "/missing.rules"], "", "evindex: \(tmp)/missing.rules: cannot read the rules file"),
                (["--preset", "only-videos"], "", "evindex: no preset \"only-videos\""),
            ]
            for (flags, contents, message) in cases {
                if flags.first == "--rules" && flags[1] == rules { try contents.write(toFile: rules, atomically: true, encoding: .utf8) }
                let r = try Support.evindex(["run", root, "--db", db] + flags)
                #expect(r.status == 2, "\(flags): exit \(r.status)")
                #expect(r.stderr.hasPrefix(message), "\(flags): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(flags): \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: db), "\(flags): the database was created")
            }
        }
    }

    // MARK: - Parsers: fuzzing and git's line rules

    /// Random and mutated rules files and ignore files never trap; every error names a line
    /// that exists; wildmatch terminates on hostile patterns.
    /// Git's index and config readers take seeded mutations of real files (index
    /// versions 2 and 4 written by git, a config with includes, subsections and
    /// continuations): each ends, never traps; a v4 varint of ten 0xFF bytes is refused.
    @Test func gitIndexAndConfigReadersSurviveFuzzing() throws {
        try Support.withTemporaryDirectory { tmp in
            let repo = tmp + "/repo"
            try FileManager.default.createDirectory(atPath: repo + "/d/e", withIntermediateDirectories: true)
            for f in ["a", "d/b", "d/e/c", "d/e/cc"] { _ = FileManager.default.createFile(atPath: repo + "/" + f, contents: Data()) }
            try Self.git(repo, ["init", "-q"])
            try Self.git(repo, ["add", "."])
            var indexes: [[UInt8]] = []
            for version in ["2", "4"] {
                try Self.git(repo, ["update-index", "--index-version", version])
                indexes.append(Array(try Data(contentsOf: URL(fileURLWithPath: repo + "/.git/index"))))
            }
            for index in indexes { #expect(TrackedPaths(index: index)?.contains(Array("d/e/cc".utf8), isDirectory: false) == true) }
            // A v4 entry whose prefix length is ten 0xFF bytes (an overflow in a naive reader).
            var overflow = indexes[1]
            overflow.replaceSubrange((12 + 62)..<(12 + 62 + 10), with: [UInt8](repeating: 0xFF, count: 10))
            #expect(TrackedPaths(index: overflow) == nil)
            let config = Array("[core]\n\texcludesFile = \"~/a b\" ; c\n[include]\n\tpath = x\n[core \"s\"]\n\tk = v\\\n w\n".utf8)
            var random = SplitMix64(seed: 11)
            func below(_ n: Int) -> Int { Int(random.next() % UInt64(max(n, 1))) }
            for trial in 0..<6_000 {
                var bytes = trial % 3 == 2 ? config : indexes[trial % 2]
                for _ in 0...below(6) {
                    switch below(3) {
                    case 0 where !bytes.isEmpty: bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                    case 1 where !bytes.isEmpty: bytes.removeSubrange(below(bytes.count)...)
                    default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: below(bytes.count + 1))
                    }
                }
                if trial % 3 == 2 {
                    var parsed = GitConfig()
                    parsed.read(bytes, source: Array("/c".utf8), gitDir: Array("/r/.git".utf8), environment: ["HOME": "/h"]) { _ in nil }
                } else {
                    _ = TrackedPaths(index: bytes)
                }
            }
        }
    }

    @Test func parsersSurviveFuzzing() throws {
        var rng = SystemRandomNumberGenerator()
        let seeds: [[UInt8]] = [
            Array(
                "reject *.o\naccept *.jpg\nrequire-child .git\nreject-if-child node_modules\ngitignore on\nhidden off\nmax-depth 3\npreset no-git\n"
                    .utf8),
            Array("*.log\n!keep.log\n/build/\n**/x/**\n\\#a\n\\!b\ntrail\\ \n[[:alpha:]]*\n[!a-c]?\n".utf8),
        ]
        var errors = 0
        for i in 0..<20_000 {
            var bytes = seeds[i % 2]
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                case 2 where !bytes.isEmpty: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
                default:
                    bytes.insert(
                        contentsOf: Array("[*\\!/:]\n".utf8).shuffled(using: &rng).prefix(3), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            var rules = RuleSet()
            do throws(RuleError) {
                try rules.add(rulesText: bytes, source: "fuzz")
            } catch {
                errors += 1
                let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
                #expect(error.line != nil && error.line! >= 1 && error.line! <= lines, "\(error)")
            }
            let file = IgnoreFile(source: [], base: [], contents: bytes)
            for p in file.patterns {
                _ = Wildmatch.matches(p.glob, Array("a/b/c.log".utf8), pathname: true)
                _ = Wildmatch.matches(p.glob, Array("x".utf8), pathname: false)
            }
        }
        #expect(errors > 1000, "mutations should break many rules files")
        // Exponential backtracking is bounded: a hostile pattern ends.
        let hostile = Array(String(repeating: "*a", count: 30).utf8) + Array("b".utf8)
        #expect(!Wildmatch.matches(hostile, Array(String(repeating: "a", count: 60).utf8), pathname: false))
    }

    /// Later sources win for single-valued rules (RULES.md): a flag after a rules file.
    @Test func laterDepthAndSwitchesWin() throws {
        var rules = RuleSet()
        try rules.add(rulesText: Array("max-depth 1\nhidden off\ngitignore on\n".utf8), source: "file")
        try rules.add(keyword: "max-depth", argument: "3")
        try rules.add(keyword: "hidden", argument: "on")
        #expect(rules.maxDepth == 3 && rules.hidden && rules.gitignore)
        #expect(rules.canonicalText == "gitignore on\nmax-depth 3")
    }

    /// Git's line rules, case by case (the generated work trees check them against git).
    @Test func ignoreLinesParseAsGitDoes() throws {
        let file = IgnoreFile(source: [], base: [], contents: Array("\u{FEFF}a\r\n# c\n\\#h\n\\!b\n!n\nt\\ \nsp   \n/r/\nd/\n\n".utf8))
        let parsed = file.patterns.map { (String(decoding: $0.glob, as: UTF8.self), $0.negated, $0.directoryOnly, $0.basenameOnly, $0.line) }
        #expect(parsed.map(\.0) == ["a", "\\#h", "\\!b", "n", "t\\ ", "sp", "r", "d"])
        #expect(parsed.map(\.1) == [false, false, false, true, false, false, false, false])
        #expect(parsed.map(\.2) == [false, false, false, false, false, false, true, true])
        #expect(parsed.map(\.3) == [true, true, true, true, true, true, false, true])
        #expect(parsed.map(\.4) == [1, 3, 4, 5, 6, 7, 8, 9])
    }
}
