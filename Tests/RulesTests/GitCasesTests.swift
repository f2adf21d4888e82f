import Foundation
import TestSupport
import Testing

/// Git's last ignore cases (issue 21, section 4), each against git itself: the regular
/// files a `--gitignore` run indexes are exactly `git ls-files --cached --others
/// --exclude-standard` (tracked, and untracked but not ignored), with the system config
/// left out (`GIT_CONFIG_NOSYSTEM=1`) and a home of the test's own.
@Suite(.serialized)
struct GitCasesTests {
    /// An environment with `home` as HOME and nothing else of git's.
    static func environment(home: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = home
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        for name in ["XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_DIR", "GIT_WORK_TREE"] { env[name] = nil }
        return env
    }

    @discardableResult
    static func git(_ dir: String, _ args: [String], _ env: [String: String]) throws -> String {
        let r = try Support.run(
            ["/usr/bin/env", "git", "-C", dir, "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@t"] + args, environment: env)
        #expect(r.status == 0, "git \(args): \(r.stderr)")
        return r.text
    }

    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// The files of `root` a `--gitignore` run indexes and the files git lists there,
    /// both relative to `root`.
    static func compare(_ root: String, _ env: [String: String], db: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try Support.run([Support.evindex, "run", root, "--gitignore", "--db", db], environment: env)
        #expect(run.status == 0, "run: \(run.stderr)", sourceLocation: sourceLocation)
        let indexed = try RulesTests.indexed(root, db).filter { !$0.hasSuffix("/") && !$0.hasPrefix(".git/") }
        let listed = Set(try git(root, ["ls-files", "--cached", "--others", "--exclude-standard"], env).split(separator: "\n").map(String.init))
        RulesTests.expectSame(indexed, listed, "\(root) against git", sourceLocation: sourceLocation)
        #expect(!listed.isEmpty, sourceLocation: sourceLocation)
    }

    /// `P/.gitignore` ignores `nested/`, and `P/nested` is a repository of its own: a run
    /// of `P/nested` follows its own rules, as git there does (it rejected everything by
    /// `P/.gitignore:1` before).
    @Test func aRootThatIsItsOwnRepositoryInsideAnIgnoringOne() throws {
        try Support.withTemporaryDirectory { tmp in
            let env = Self.environment(home: tmp + "/home")
            let outer = tmp + "/P", nested = outer + "/nested"
            try Self.write(outer + "/.gitignore", "nested/\n*.tmp\n")
            try Self.write(nested + "/.gitignore", "*.log\n")
            for f in ["a.txt", "b.log", "c.tmp", "sub/d.txt"] { try Self.write(nested + "/" + f, "x") }
            try Self.git(outer, ["init", "-q"], env)
            try Self.git(nested, ["init", "-q"], env)
            try Self.compare(nested, env, db: tmp + "/db")
            // From the outer repository the nested one is ignored, as git says too.
            try Self.compare(outer, env, db: tmp + "/db2")
        }
    }

    /// Files in the index are never ignored, nor the directories holding them; what is
    /// untracked in an ignored directory stays ignored. Index versions 2, 3 (an
    /// intent-to-add entry sets the extended flags) and 4 (prefix-compressed paths).
    @Test(arguments: [2, 3, 4])
    func trackedFilesAreKept(_ version: Int) throws {
        try Support.withTemporaryDirectory { tmp in
            let env = Self.environment(home: tmp + "/home")
            let repo = tmp + "/repo"
            try Self.write(repo + "/.gitignore", "build/\n*.log\nvendor/**/gen\n")
            for f in ["build/keep.txt", "build/other.txt", "build/deep/kept.o", "build/deep/not.o", "debug.log", "x.log", "src/a.c", "vendor/x/gen"] {
                try Self.write(repo + "/" + f, f)
            }
            try Self.git(repo, ["init", "-q"], env)
            try Self.git(repo, ["add", ".gitignore", "src/a.c"], env)
            try Self.git(repo, ["add", "-f", "build/keep.txt", "build/deep/kept.o", "debug.log", "vendor/x/gen"], env)
            try Self.git(repo, ["commit", "-q", "-m", "start"], env)
            if version == 3 {
                try Self.write(repo + "/build/intent.txt", "i")
                try Self.git(repo, ["add", "-f", "-N", "build/intent.txt"], env)
            }
            try Self.git(repo, ["update-index", "--index-version", String(version)], env)
            let header = try Data(contentsOf: URL(fileURLWithPath: repo + "/.git/index")).prefix(8)
            #expect(Array(header) == Array("DIRC".utf8) + [0, 0, 0, UInt8(version)], "index version \(version)")
            try Self.compare(repo, env, db: tmp + "/db")
            let rules = try RulesTests.rejections(repo, tmp + "/db")
            #expect(rules["build/other.txt"] == "gitignore \(repo)/.gitignore:1:build/", "\(rules)")
            #expect(rules["x.log"] == "gitignore \(repo)/.gitignore:2:*.log")
        }
    }

    /// A submodule (a gitlink entry, mode 160000) under an ignored directory is kept, as
    /// git keeps it; what else is untracked there stays ignored.
    @Test func aSubmoduleInAnIgnoredDirectoryIsKept() throws {
        try Support.withTemporaryDirectory { tmp in
            let env = Self.environment(home: tmp + "/home"), repo = tmp + "/repo"
            try Self.write(repo + "/.gitignore", "vendor/\n")
            for f in ["vendor/lib/x.c", "vendor/other.txt", "top.txt"] { try Self.write(repo + "/" + f, "x") }
            try Self.git(repo, ["init", "-q"], env)
            try Self.git(repo, ["update-index", "--add", "--cacheinfo", "160000,1234567890123456789012345678901234567890,vendor/lib"], env)
            let db = tmp + "/db"
            #expect(try Support.run([Support.evindex, "run", repo, "--gitignore", "--db", db], environment: env).status == 0)
            let indexed = try RulesTests.indexed(repo, db)
            #expect(indexed.contains("vendor/lib/") && !indexed.contains("vendor/other.txt") && indexed.contains("top.txt"), "\(indexed.sorted())")
            #expect(try Self.git(repo, ["ls-files", "--cached", "vendor"], env) == "vendor/lib\n")
        }
    }

    /// Git follows symlinks to its own files: `info/exclude` and the excludes file a
    /// config names may be symlinks, and `.git` may be a symlink to the repository.
    @Test func gitFilesReachedThroughSymlinks() throws {
        try Support.withTemporaryDirectory { tmp in
            let home = tmp + "/home", env = Self.environment(home: home)
            let store = tmp + "/store", repo = tmp + "/repo"
            try Self.write(store + "/exclude", "*.ex\n")
            try Self.write(store + "/global", "*.gl\n")
            try Self.write(home + "/.gitconfig", "[core]\n\texcludesFile = ~/global-link\n")
            try FileManager.default.createSymbolicLink(atPath: home + "/global-link", withDestinationPath: store + "/global")
            for f in ["a.ex", "b.gl", "c.txt"] { try Self.write(repo + "/" + f, "x") }
            // The repository lives elsewhere; `.git` is a symlink to it.
            try FileManager.default.createDirectory(atPath: tmp + "/elsewhere", withIntermediateDirectories: true)
            try Self.git(tmp + "/elsewhere", ["init", "-q"], env)
            try FileManager.default.moveItem(atPath: tmp + "/elsewhere/.git", toPath: store + "/repo.git")
            try FileManager.default.createSymbolicLink(atPath: repo + "/.git", withDestinationPath: store + "/repo.git")
            try FileManager.default.removeItem(atPath: store + "/repo.git/info/exclude")
            try FileManager.default.createSymbolicLink(atPath: store + "/repo.git/info/exclude", withDestinationPath: store + "/exclude")
            try Self.compare(repo, env, db: tmp + "/db")
            let rules = try RulesTests.rejections(repo, tmp + "/db")
            #expect(rules["a.ex"]?.hasPrefix("gitignore ") == true && rules["b.gl"]?.hasPrefix("gitignore ") == true, "\(rules)")
        }
    }

    /// `core.excludesFile` naming a directory: git refuses the work tree ("cannot use …
    /// as an exclude file"); the run goes on with the other rules and records one
    /// `NonCriticalError` (read-excludes-file, EISDIR) on the work tree's top, whose
    /// listing stays complete (nothing is marked stale).
    @Test func anExcludesFileThatIsADirectoryIsANonCriticalError() throws {
        try Support.withTemporaryDirectory { tmp in
            let home = tmp + "/home", env = Self.environment(home: home), repo = tmp + "/repo"
            try FileManager.default.createDirectory(atPath: home + "/exdir", withIntermediateDirectories: true)
            try Self.write(home + "/.gitconfig", "[core]\n\texcludesFile = ~/exdir\n")
            try Self.write(repo + "/.gitignore", "*.tmp\n")
            for f in ["a.txt", "b.tmp"] { try Self.write(repo + "/" + f, "x") }
            try Self.git(repo, ["init", "-q"], env)
            let git = try Support.run(["/usr/bin/env", "git", "-C", repo, "ls-files", "--others", "--exclude-standard"], environment: env)
            #expect(git.status != 0 && git.stderr.contains("as an exclude file"), "git: \(git.status) \(git.stderr)")
            let db = tmp + "/db"
            let run = try Support.run([Support.evindex, "run", repo, "--gitignore", "--db", db, "--json"], environment: env)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(try Support.objects(run.stdout).first?["errors"] as? Int == 1)
            let errors = try Support.objects(try Support.evindex(["log", "--json", "--type", "NonCriticalError", "--db", db]).stdout)
            #expect(errors.count == 1)
            #expect(errors.first?["operation"] as? String == "read-excludes-file" && errors.first?["error"] as? String == "EISDIR")
            #expect(errors.first?["path"] as? String == repo, "\(errors)")
            RulesTests.expectSame(try RulesTests.indexed(repo, db), [".gitignore", "a.txt"], "the other rules still apply")
            #expect(!(try Support.evindex(["ls", repo, "-R", "--json", "--db", db]).text.contains("stale")))
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    /// A pattern and a `.gitignore` path that are not UTF-8: `PathRejected` carries the
    /// rule's exact bytes (`rule_b64`), in `log`, `why` and through `export` and `import`
    /// (it held `\xE9` text before).
    @Test func aRuleThatIsNotUTF8KeepsItsBytes() throws {
        try Support.withTemporaryDirectory { tmp in
            let env = Self.environment(home: tmp + "/home")
            let repo = tmp + "/repo"
            try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
            try Self.git(repo, ["init", "-q"], env)
            let latin: [UInt8] = Array("caf".utf8) + [0xE9]
            let dir = Array(repo.utf8) + [UInt8(ascii: "/")] + latin
            let pattern = Array("*.".utf8) + [0xE9]
            func create(_ path: [UInt8], _ contents: [UInt8]?) {
                var terminated = path
                terminated.append(0)
                terminated.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) { c in
                        if let contents {
                            let fd = open(c.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                            _ = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                            close(fd)
                        } else {
                            mkdir(c.baseAddress!, 0o755)
                        }
                    }
                }
            }
            create(dir, nil)
            create(dir + Array("/.gitignore".utf8), pattern + [10])
            create(dir + Array("/x.".utf8) + [0xE9], [])
            create(dir + Array("/kept.txt".utf8), [])
            let db = tmp + "/db"
            #expect(try Support.run([Support.evindex, "run", repo, "--gitignore", "--db", db], environment: env).status == 0)
            let expected = Array("gitignore ".utf8) + dir + Array("/.gitignore:1:".utf8) + pattern
            let rejected = try Support.objects(try Support.evindex(["log", "--json", "--type", "PathRejected", "--db", db]).stdout)
                .filter { Support.pathBytes($0).last == 0xE9 }
            #expect(rejected.count == 1 && rejected.first.map { Support.pathBytes($0, key: "rule") } == expected, "\(rejected)")
            let export = try Support.evindex(["export", "1", "--db", db])
            try export.stdout.write(to: URL(fileURLWithPath: tmp + "/run.ndjson"))
            #expect(try Support.evindex(["import", tmp + "/run.ndjson", "--db", tmp + "/other"]).status == 0)
            let imported = try Support.objects(try Support.evindex(["log", "--json", "--type", "PathRejected", "--db", tmp + "/other"]).stdout)
                .filter { Support.pathBytes($0).last == 0xE9 }
            #expect(imported.first.map { Support.pathBytes($0, key: "rule") } == expected, "\(imported)")
        }
    }

    /// The global config as git's parser reads it: includes, conditional includes,
    /// subsections that are not `[core]`, continued lines, an empty excludes file,
    /// `core.ignoreCase` (with classes and ranges); a NUL ends a pattern.
    @Test(arguments: [
        "include", "includeIf", "includeIfOther", "subsection", "continuation", "empty", "quoted", "ignoreCase", "nul",
    ])
    func configAsGitReadsIt(_ name: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let home = tmp + "/home", env = Self.environment(home: home)
            let repo = home + "/work/repo"
            try Self.write(home + "/ex1", "*.one\n")
            try Self.write(home + "/.config/git/ignore", "*.xdg\n")
            let configs: [String: String] = [
                "include": "[include]\n\tpath = inc.cfg\n",
                "includeIf": "[includeIf \"gitdir:~/work/\"]\n\tpath = inc.cfg\n",
                "includeIfOther": "[includeIf \"gitdir:~/elsewhere/\"]\n\tpath = inc.cfg\n",
                "subsection": "[core \"x\"]\n\texcludesFile = ~/ex1\n[core.y]\n\texcludesFile = ~/ex1\n",
                "continuation": "[core]\n\texcludesFile = ~/e\\\nx1 ; a comment\n",
                "empty": "[core]\n\texcludesFile = ~/ex1\n\texcludesFile =\n",
                "quoted": "[CORE]\n\tExcludesFile = \"~/ex1\" # comment\n",
                "ignoreCase": "[core]\n\tignoreCase = true\n",
                "nul": "",
            ]
            try Self.write(home + "/.gitconfig", configs[name]!)
            try Self.write(home + "/inc.cfg", "[core]\n\texcludesFile = ~/ex1\n")
            let files = [
                "a.one", "b.xdg", "c.txt", "Big.LOG", "small.log", "Apple.txt", "apple.txt", "Delta.txt", "ax", "Ax", "BUILD/f", "build2/f",
                "foo", "foobar", "Upper", "lower",
            ]
            for f in files { try Self.write(repo + "/" + f, "x") }
            // The NUL line only where it is the case: elsewhere "foo" is not ignored.
            for f in ["Foobar.md", "fOO2", "src/a.c", "Src/b.c", "src/keep.h"] { try Self.write(repo + "/" + f, "x") }
            try Self.write(
                repo + "/.gitignore", "*.log\n[A-C]*.txt\n[a]x\nbuild/\n[[:upper:]]pper\nFoo*\n/Src/*.c\n" + (name == "nul" ? "foo\u{0}bar\n" : ""))
            try Self.git(repo, ["init", "-q"], env)
            try Self.compare(repo, env, db: tmp + "/db")
        }
    }
}
