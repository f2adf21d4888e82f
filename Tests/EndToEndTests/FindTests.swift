import Foundation
import Search
import TestSupport
import Testing

/// `evindex find` against GNU `find` (names, kinds, sizes, times, depth, full paths) and a
/// Python walk (regular expressions, smart case and canonical equivalence on non-ASCII
/// names), on an indexed mktree
/// tree whose awkward names include bytes that are not UTF-8. Paths are compared as the
/// exact bytes `-0` prints.
@Suite(.serialized)
struct FindTests {
    static func nulSeparated(_ data: Data) -> Set<[UInt8]> {
        Set(data.split(separator: 0).map { Array($0) })
    }

    /// What GNU find prints below `root` (not `root` itself) for `tests`.
    static func gnuFind(_ root: String, _ tests: [String]) throws -> Set<[UInt8]> {
        let r = try Support.run(["/usr/bin/find", root, "-mindepth", "1"] + tests + ["-print0"])
        #expect(r.status == 0, "find \(tests): \(r.stderr)")
        return nulSeparated(r.stdout)
    }

    /// `evindex find ARGS -0`, its exit status and the paths it printed.
    static func evindexFind(_ args: [String], db: String) throws -> (Int32, Set<[UInt8]>) {
        let r = try Support.evindex(["find"] + args + ["-0", "--db", db])
        return (r.status, nulSeparated(r.stdout))
    }

    static func show(_ paths: Set<[UInt8]>) -> String {
        paths.prefix(3).map { String(decoding: $0, as: UTF8.self) }.joined(separator: ", ")
    }

    // Rows: evindex find's arguments (before the path), and find's tests that mean the same.
    static let agreements: [(evindex: [String], find: [String])] = [
        ([], []),
        (["-t", "f"], ["-type", "f"]),
        (["-t", "d"], ["-type", "d"]),
        (["-t", "l"], ["-type", "l"]),
        (["-t", "f", "-t", "l"], ["(", "-type", "f", "-o", "-type", "l", ")"]),
        // Smart case: lower-case ignores case, an upper-case letter makes it exact.
        (["data"], ["-iname", "*data*"]),
        (["Data"], ["-name", "*Data*"]),
        (["-s", "data"], ["-name", "*data*"]),
        (["-i", "DATA"], ["-iname", "*data*"]),
        (["-g", "*.log"], ["-iname", "*.log"]),
        (["-g", "-s", "[a-c]*_1*.??"], ["-name", "[a-c]*_1*.??"]),
        (["-e", "txt", "-e", "MD"], ["(", "-iname", "*.txt", "-o", "-iname", "*.md", ")"]),
        (["-e", "py", "index"], ["-iname", "*index*.py"]),
        (["-g", "*_1??.*", "-t", "f", "-S", "+1k"], ["-iname", "*_1??.*", "-type", "f", "-size", "+999c"]),
        // mktree's awkward names: one with a newline, one not UTF-8 (compared as bytes).
        (["break"], ["-iname", "*break*"]),
        (["latin1"], ["-iname", "*latin1*"]),
        // Sizes: regular files only; + at least, - at most; k = 1000, ki = 1024.
        (["-S", "+100k"], ["-type", "f", "-size", "+99999c"]),
        (["-S", "-4ki"], ["-type", "f", "-size", "-4097c"]),
        (["-S", "+1ki", "-S", "-2m"], ["-type", "f", "-size", "+1023c", "-size", "-2000001c"]),
        (["-S", "0"], ["-type", "f", "-size", "0c"]),
        (["--max-depth", "1"], ["-maxdepth", "1"]),
        (["--max-depth", "3", "-t", "d"], ["-maxdepth", "3", "-type", "d"]),
        // Times: mktree's files were modified between 2020-09 and 2023-10, its directories now.
        (["--changed-before", "2021-06-01"], ["!", "-newermt", "2021-06-01 00:00:00 UTC"]),
        (["--changed-within", "2021-06-01T00:00:00Z", "-t", "f"], ["-type", "f", "-newermt", "2021-05-31 23:59:59 UTC"]),
        (["--changed-within", "1d"], ["-newermt", "1 day ago"]),
        (["-p", "src/"], ["-ipath", "*src/*"]),
        (["-p", "-g", "*/node_modules/*"], ["-ipath", "*/node_modules/*"]),
        // Owners set below: every third entry is nobody's, every fifth in group daemon.
        (["--owner", "nobody"], ["-user", "nobody"]),
        (["--owner", ":daemon"], ["-group", "daemon"]),
        (["--owner", "nobody:daemon", "-t", "f"], ["-user", "nobody", "-group", "daemon", "-type", "f"]),
        (["--owner", "0:"], ["-uid", "0"]),
        (["-o", "65534:1"], ["-uid", "65534", "-gid", "1"]),
    ]

    @Test func findAgreesWithGNUFind() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 6_000, seed: 17)
            // mktree makes no empty file and no name with a capital D.
            for name in ["Data-Sheet.csv", "code/empty.txt"] {
                #expect(FileManager.default.createFile(atPath: root + "/" + name, contents: Data()))
            }
            // Owners and groups to filter on (the tests run as root, as CI does).
            let chown = try Support.run([
                "/usr/bin/env", "python3", "-c",
                "import os,sys\nfor i,(d,ns,fs) in enumerate(sorted((d,sorted(ns),sorted(fs)) for d,ns,fs in os.walk(sys.argv[1]))):\n"
                    + " for j,n in enumerate(ns+fs):\n  k=i*7+j\n  os.lchown(os.path.join(d,n), 65534 if k%3==0 else -1, 1 if k%5==0 else -1)\n",
                root,
            ])
            #expect(chown.status == 0, "\(chown.stderr)")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Self.expectAgreement(root, db, "after the first run")
            // Every row again: after a rescan of a mutated tree (the name index rewritten
            // where listings changed), after a run killed and resumed, and on the views a
            // replay from scratch builds (`--replayed`).
            _ = try Checks.mutate(root, 500, seed: 23)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Self.expectAgreement(root, db, "after a rescan of a mutated tree")
            _ = try Checks.mutate(root, 500, seed: 29)
            let killed = tmp + "/killed"
            _ = try Support.interruptedRun(root, killed, after: 0.1, signal: SIGKILL)
            #expect(try Support.evindex(["run", root, "--db", killed]).status == 0)
            try Self.expectAgreement(root, killed, "after a run killed and resumed")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            #expect(try Support.evindex(["replay", "--from-scratch", "--db", db]).status == 0)
            try Self.expectAgreement(root, db, "on the views a replay from scratch built", flags: ["--replayed"])
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)

            // The rows must not all be trivially equal: most select a proper, non-empty part.
            let all = try Self.gnuFind(root, [])
            let improper = try Self.agreements.dropFirst().filter { row in
                let n = try Self.gnuFind(root, row.find).count
                return n == 0 || n == all.count
            }
            #expect(improper.isEmpty, "rows that select nothing or everything: \(improper.map(\.evindex))")

            // A PATH below the root limits the search; no PATH searches every root.
            let sub = root + "/code"
            let below = try Self.evindexFind(["-t", "f", sub], db: db).1 == Self.gnuFind(sub, ["-type", "f"])
            #expect(below)
            let everything = try Self.evindexFind([], db: db).1 == all
            #expect(everything)
            // Several PATHs: each searched, in the order given.
            let docs = root + "/Documents"
            let two = try Self.evindexFind(["data", sub, docs], db: db).1
            #expect(two == (try Self.gnuFind(sub, ["-iname", "*data*"])).union(try Self.gnuFind(docs, ["-iname", "*data*"])))
        }
    }

    /// Every row of `agreements` gives what GNU find selects on the tree as it is now.
    static func expectAgreement(
        _ root: String, _ db: String, _ when: String, flags: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        for row in agreements {
            let want = try gnuFind(root, row.find)
            let (status, got) = try evindexFind(row.evindex + flags + [root], db: db)
            #expect(status == (want.isEmpty ? 1 : 0), "\(when): evindex find \(row.evindex): exit \(status)", sourceLocation: sourceLocation)
            let same = got == want
            #expect(
                same,
                "\(when): evindex find \(row.evindex) vs find \(row.find): missing \(show(want.subtracting(got))), extra \(show(got.subtracting(want)))",
                sourceLocation: sourceLocation
            )
        }
    }

    /// Regular expressions and smart case on non-ASCII names, against Python's `re` and
    /// `str.lower` over os.walk (names compared in NFC: "café" finds mktree's composed and
    /// decomposed names); names that are not UTF-8 are matched as decoded with U+FFFD, and
    /// printed as their exact bytes.
    @Test func regexAndUnicodeCaseAgreeWithPython() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 3_000, seed: 5)
            let extra = ["Ünïcode-Notes.TXT", "ünïcode-notes.txt", "CAFÉ.md"]
            for name in extra { #expect(FileManager.default.createFile(atPath: root + "/" + name, contents: Data())) }
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let script = """
                import os, re, sys, unicodedata
                root, mode, pattern = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
                nfc = lambda t: unicodedata.normalize('NFC', t)
                out = []
                for dp, dn, fn in os.walk(root):
                    for n in dn + fn:
                        s = n.decode('utf-8', 'replace')
                        if mode == 'regex-i': ok = re.search(pattern, s, re.I) is not None
                        elif mode == 'regex': ok = re.search(pattern, s) is not None
                        else: ok = nfc(pattern.lower()) in nfc(s.lower())
                        if ok: out.append(os.path.join(dp, n))
                sys.stdout.buffer.write(b''.join(p + b'\\0' for p in out))
                """
            let cases: [(evindex: [String], mode: String, pattern: String)] = [
                (["--regex", "^[a-z]+_[0-9]{3}\\."], "regex-i", "^[a-z]+_[0-9]{3}\\."),
                (["--regex", "^[A-Z]"], "regex", "^[A-Z]"),
                (["--regex", "-i", "\\.(jpg|png)$"], "regex-i", "\\.(jpg|png)$"),
                (["ünïcode"], "substring-i", "ünïcode"),
                (["café"], "substring-i", "café"),
            ]
            for c in cases {
                let python = try Support.run(["/usr/bin/env", "python3", "-c", script, root, c.mode, c.pattern])
                #expect(python.status == 0, "\(python.stderr)")
                let want = Self.nulSeparated(python.stdout)
                let (_, got) = try Self.evindexFind(c.evindex + [root], db: db)
                #expect(!want.isEmpty, "\(c.evindex) matches nothing in Python")
                let same = got == want
                #expect(same, "evindex find \(c.evindex): missing \(Self.show(want.subtracting(got))), extra \(Self.show(got.subtracting(want)))")
            }
        }
    }

    /// The output forms: lines escaped as `ls` escapes them, `--json` objects equal to
    /// `ls --json`'s for the same paths, `--count`, `--limit`; exit 1 when nothing matched,
    /// 2 with one line for bad input.
    @Test func outputFormsAndExitStatus() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 2_000, seed: 3)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            let lines = try Support.evindex(["find", "-t", "f", root, "--db", db])
            #expect(lines.status == 0)
            let printed = lines.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            let files = try Self.gnuFind(root, ["-type", "f"])
            #expect(printed.count == files.count)
            // A name with a newline is one escaped line, as `ls` prints it.
            let ls = try Support.evindex(["ls", root + "/awkward", "--db", db]).text
            #expect(printed.contains { $0.hasSuffix("line\\nbreak.txt") } && ls.contains("line\\nbreak.txt"))

            let count = try Support.evindex(["find", "-t", "f", "-c", root, "--db", db])
            #expect(count.status == 0 && count.text == "\(files.count)\n")
            let limited = try Support.evindex(["find", "--limit", "7", root, "--db", db])
            #expect(limited.text.split(separator: "\n").count == 7)

            // --json: the same objects `ls -R --json` prints, for the entries that matched
            // (a name with a newline escaped in `path`, one not UTF-8 in `path_b64`).
            let listed = try Support.objects(try Support.evindex(["ls", "-R", root, "--json", "--db", db]).stdout)
            let byPath = Dictionary(listed.map { (Support.pathBytes($0), $0) }, uniquingKeysWith: { a, _ in a })
            for query in [["-e", "json"], ["break"], ["latin1"]] {
                let found = try Support.objects(try Support.evindex(["find"] + query + [root, "--json", "--db", db]).stdout)
                #expect(!found.isEmpty, "\(query)")
                for o in found {
                    let same = byPath[Support.pathBytes(o)].map { NSDictionary(dictionary: $0).isEqual(to: o) } ?? false
                    #expect(same, "\(o)")
                }
            }

            // Nothing matched: exit 1, nothing printed.
            let none = try Support.evindex(["find", "no-such-name-anywhere", root, "--db", db])
            #expect(none.status == 1 && none.stdout.isEmpty && none.stderr.isEmpty)
            // Bad input: exit 2, one line naming the problem.
            for (args, says) in [
                (["-S", "+10q"], "invalid size"), (["--changed-within", "soon"], "invalid time"),
                (["--regex", "("], "invalid regular expression"), (["-t", "x"], "invalid --type"),
                (["-g", "--regex", "a"], "cannot be combined"), (["x", tmp + "/elsewhere"], "not in the index"),
                (["--owner", "no-such-user-here"], "no user no-such-user-here"), (["--owner", ":no-such-group"], "no group"),
                (["--owner", ":"], "invalid owner"), (["--at", "seq:0"], "no sequence 0"),
            ] {
                let r = try Support.evindex(["find"] + args + ["--db", db])
                #expect(r.status == 2 && r.stderr.contains(says), "\(args): \(r.status) \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            }
        }
    }

    /// The one date parser (`find`'s times, `log --since/--until`) against GNU date, and
    /// what it refuses.
    @Test func datesAgreeWithGNUDate() throws {
        for text in [
            "2026-11-30", "2026-11-30T05:00:00Z", "2026-11-30T05:00", "2026-11-30 05:00:00.250+00:00",
            "1969-12-31T23:59:59Z", "2000-02-29T12:34:56.7Z", "1900-03-01", "2262-04-11T23:47:16Z",
        ] {
            let gnu = try Support.run(["/usr/bin/date", "-u", "-d", text.replacingOccurrences(of: "T", with: " "), "+%s%3N"])
            #expect(gnu.status == 0, "\(text): \(gnu.stderr)")
            #expect(TimeFilter.parseDate(text) == Int64(gnu.text.trimmingCharacters(in: .newlines)), "\(text)")
        }
        for text in ["2026-13-01", "2026-11-30T25:00", "soon", "2026-11", "2026-11-30T05:00:00.x", ""] {
            #expect(TimeFilter.parseDate(text) == nil, "\(text)")
        }
    }
}
