import Foundation
import TestSupport
import Testing

/// Sizes as du counts them: every directory's disk and apparent bytes against GNU du run
/// on that directory alone, on trees with hard links, sparse files and awkward names, after
/// rescans that move links around, and after a kill -9 and resume.
@Suite(.serialized)
struct SizesTests {
    /// Adds what du counts in its own way to a generated tree: hard links in one directory,
    /// across directories and across depths (one under a name that is not UTF-8 and holds a
    /// newline), a hard-linked symlink, sparse files with some data, and files of sizes on
    /// either side of block boundaries.
    static let addLinks = #"""
        import os, sys
        root = os.fsencode(sys.argv[1]) + b'/links'
        def p(*parts): return os.path.join(root, *parts)
        def write(path, n, seed):
            with open(path, 'wb') as f: f.write(bytes((i * seed + 1) & 255 for i in range(n)))
        for d in [(b'deep', b'a', b'b', b'c'), (b'other',), (b'caf\xe9 \n dir',)]: os.makedirs(p(*d), exist_ok=True)
        for n in [0, 1, 511, 512, 4095, 4096, 4097, 8191, 8192, 8193, 65537]: write(p(b'size-%d' % n), n, 7)
        shared = p(b'deep', b'a', b'b', b'c', b'shared')
        write(shared, 10000, 3)
        for name in [(b'deep', b'a', b'b', b'c', b'shared-again'), (b'other', b'shared'), (b'deep', b'a', b'shared-up'),
                     (b'caf\xe9 \n dir', b'\xff\n')]:
            os.link(shared, p(*name))
        write(p(b'other', b'pair'), 5000, 5)
        os.link(p(b'other', b'pair'), p(b'pair'))
        with open(p(b'sparse'), 'wb') as f:
            f.truncate(50 << 20); f.seek(20 << 20); f.write(b'x' * 12288)
        os.symlink(b'other/pair', p(b'sym'))
        os.link(p(b'sym'), p(b'deep', b'sym-again'), follow_symlinks=False)
        """#

    /// Moves the links around: one name removed, one added in a directory that holds none,
    /// the shared file grown, a directory holding names moved next to another name of the
    /// same inode, a directory holding one removed, a sparse file given data.
    static let moveLinks = #"""
        import os, shutil, sys
        root = os.fsencode(sys.argv[1]) + b'/links'
        def p(*parts): return os.path.join(root, *parts)
        os.unlink(p(b'deep', b'a', b'shared-up'))
        os.link(p(b'other', b'pair'), p(b'deep', b'a', b'b', b'pair-3'))
        with open(p(b'other', b'shared'), 'ab') as f: f.write(b'y' * 30000)
        os.rename(p(b'deep', b'a', b'b'), p(b'other', b'b'))
        shutil.rmtree(p(b'caf\xe9 \n dir'))
        with open(p(b'sparse'), 'r+b') as f: f.seek(40 << 20); f.write(b'z' * 5000)
        os.link(p(b'size-4097'), p(b'size-4097-again'))
        """#

    static func python(_ script: String, _ root: String) throws {
        let r = try Support.run(["/usr/bin/env", "python3", "-c", script, root])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Sizes are unsigned 64-bit end to end: a sparse file of 2^63-1 bytes beside a small
    /// one made a directory's signed total negative (`du --json` printed a negative
    /// `size`, human `du` died of SIGILL). tmpfs takes files that large; as root only.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func sizesPastTwoToTheSixtyThirdStayPositive() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/t", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let mounted = try Support.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", root])
            try #require(mounted.status == 0, "\(mounted.stderr)")
            defer { _ = try? Support.run(["/bin/umount", root]) }
            for name in ["huge", "small"] { #expect(FileManager.default.createFile(atPath: root + "/" + name, contents: nil)) }
            #expect(truncate(root + "/huge", off_t.max) == 0 && truncate(root + "/small", 1000) == 0)
            func negative(_ text: String) -> Bool { text.range(of: #"(^| )-[0-9]"#, options: .regularExpression) != nil }
            let run = try Support.evindex(["run", root, "--db", db])
            #expect(run.status == 0 && !negative(run.text) && run.text.contains("8.0E"), "\(run.text)")
            let du = try Support.objects(try Support.evindex(["du", root, "--json", "--db", db]).stdout)[0]
            let apparent = try Support.run(["/usr/bin/du", "-sx", "-B1", "--apparent-size", root]).text.split(separator: "\t")[0]
            #expect(String(describing: du["size"]!) == String(UInt64(Int64.max) + 1000), "\(du)")
            #expect(String(describing: du["apparent_bytes"]!) == apparent, "\(du) against du's \(apparent)")
            for arguments in [["du", root, "--apparent-size"], ["du", root, "--apparent-size", "--bytes"], ["show", "1"], ["runs"]] {
                let r = try Support.evindex(arguments + ["--db", db])
                #expect(r.status == 0 && !negative(r.text), "\(arguments): \(r.status) \(r.text)")
            }
            #expect(try Support.evindex(["du", root, "--apparent-size", "--bytes", "--db", db]).text.hasPrefix(apparent + " "))
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    @Test func everyDirectoryMatchesDuThroughRescans() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 1500, seed: 16)
            try Self.python(Self.addLinks, root)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectSizesMatchDu(root, db)

            try Self.python(Self.moveLinks, root)
            _ = try Checks.mutate(root, 40, seed: 16)
            let rescan = try Support.evindex(["run", root, "--db", db])
            #expect(rescan.status == 0, "\(rescan.stderr)")
            try Checks.expectSizesMatchDu(root, db)
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
            let verify = try Support.evindex(["verify", "--db", db])
            #expect(verify.status == 0, "\(verify.stderr)")
        }
    }

    /// A first index killed part-way and resumed counts exactly what du counts.
    @Test func sizesSurviveKillAndResume() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 30_000, seed: 17)
            try Self.python(Self.addLinks, root)
            for (i, delay) in [0.05, 0.2, 0.5].enumerated() {
                let db = tmp + "/db\(i)"
                _ = try Support.interruptedRun(root, db, after: delay, signal: SIGKILL)
                let resumed = try Support.evindex(["run", root, "--db", db])
                #expect(resumed.status == 0, "\(resumed.stderr)")
                try Checks.expectSizesMatchDu(root, db)
                try Checks.expectReplayMatches(db)
            }
        }
    }

    /// `du --since 1`: each directory's deltas are du's figures now minus du's figures at
    /// the end of run 1, for the same directory (its inode: a directory moved since is the
    /// same directory, and its growth is what happened inside it), 0 for one unchanged, all
    /// of it for one new since. Checked after a rescan that moves links and directories,
    /// and after a third run killed and resumed (the history is folded as the views are).
    @Test func growthSinceARunIsDuNowMinusDuThen() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 8000, seed: 18)
            try Self.python(Self.addLinks, root)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            var then: [UInt64: (disk: Int64, apparent: Int64)] = [:]
            for (_, f) in try Checks.duFigures(root) { then[f.inode] = (f.disk, f.apparent) }

            func expectGrowth(_ label: String) throws {
                let now = try Checks.duFigures(root)
                let r = try Support.evindex(["du", root, "--since", "1", "--depth", "100000", "--json", "--db", db])
                #expect(r.status == 0, "\(r.stderr)")
                let rows = try Support.objects(r.stdout)
                #expect(rows.count == now.count, "\(label): \(rows.count) rows, \(now.count) directories")
                var wrong: [String] = []
                var grew = 0
                for row in rows {
                    let path = Support.pathBytes(row)
                    guard let n = now[path] else {
                        wrong.append("\(String(decoding: path, as: UTF8.self)) is not a directory now")
                        continue
                    }
                    let before = then[n.inode] ?? (0, 0)
                    let disk = (row["disk_delta"] as! NSNumber).int64Value, apparent = (row["apparent_delta"] as! NSNumber).int64Value
                    if disk != n.disk - before.disk || apparent != n.apparent - before.apparent {
                        wrong.append(
                            "\(String(decoding: path, as: UTF8.self)): du \(n.disk - before.disk)/\(n.apparent - before.apparent), evindex \(disk)/\(apparent)"
                        )
                    }
                    if disk != 0 { grew += 1 }
                }
                #expect(wrong.isEmpty, "\(label): \(wrong.count) directories' growth differs from du's: \(wrong.prefix(4))")
                #expect(grew > 10, "\(label): only \(grew) directories changed: the test would not see a wrong history")
            }

            try Self.python(Self.moveLinks, root)
            _ = try Checks.mutate(root, 60, seed: 18)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try expectGrowth("after run 2")

            _ = try Checks.mutate(root, 60, seed: 19)
            _ = try Support.interruptedRun(root, db, after: 0.1, signal: SIGKILL)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try expectGrowth("after a killed and resumed run 3")
            try Checks.expectReplayMatches(db)
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)

            // What is refused, in one line: a run that does not exist, a date before any run ended.
            let missing = try Support.evindex(["du", root, "--since", "99", "--db", db])
            #expect(missing.status == 2 && missing.stderr.contains("no run 99"), "\(missing.stderr)")
            let early = try Support.evindex(["du", root, "--since", "2000-01-01", "--db", db])
            #expect(early.status == 2 && early.stderr.contains("no run had ended by 2000-01-01"), "\(early.stderr)")
            let bad = try Support.evindex(["du", root, "--since", "yesterday", "--db", db])
            #expect(bad.status == 2 && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        }
    }

    /// `--at`: ls, du and find of the index as it was just after a run (or a sequence, or
    /// a time) print exactly what `replay --to SEQ` then `--replayed` prints, and `du --at`
    /// of an earlier run prints the figures GNU du printed then.
    @Test func pastInOneStepEqualsAReplay() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 3000, seed: 20)
            try Self.python(Self.addLinks, root)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let duThen = try Checks.duFigures(root)
            try Self.python(Self.moveLinks, root)
            _ = try Checks.mutate(root, 80, seed: 20)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            // Run 3 begins over a second after run 2 ended: a time in between names run 2.
            Thread.sleep(forTimeInterval: 1.5)
            _ = try Checks.mutate(root, 80, seed: 21)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            let last = { (run: Int) -> Int in (runs[run - 1]["last_seq"] as! NSNumber).intValue }
            let queries = [["ls", root, "-R", "--json"], ["du", root, "--depth", "1000", "--json"], ["find", "-e", "txt", root, "--json"]]
            for (point, through) in [("1", last(1)), ("2", last(2)), ("seq:\(last(1) + 37)", last(1) + 37)] {
                #expect(try Support.evindex(["replay", "--to", String(through), "--db", db]).status == 0)
                for query in queries {
                    let past = try Support.evindex(query + ["--at", point, "--db", db])
                    let replayed = try Support.evindex(query + ["--replayed", "--db", db])
                    #expect(past.status == 0 && replayed.status == 0, "\(past.stderr) \(replayed.stderr)")
                    #expect(past.stdout == replayed.stdout && !past.stdout.isEmpty, "\(query[0]) --at \(point) differs from the replay to \(through)")
                }
            }
            // Run 1 as du saw it then.
            let rows = try Support.objects(try Support.evindex(["du", root, "--depth", "1000", "--json", "--at", "1", "--db", db]).stdout)
            #expect(rows.count == duThen.count)
            let wrong = rows.filter { row in
                guard let want = duThen[Support.pathBytes(row)] else { return true }
                return want.disk != (row["disk_bytes"] as! NSNumber).int64Value || want.apparent != (row["apparent_bytes"] as! NSNumber).int64Value
            }
            #expect(wrong.isEmpty, "\(wrong.count) directories differ from du at the end of run 1")
            // A time: just after the run that had ended by then.
            let ended = (runs[1]["ended_ms"] as! NSNumber).int64Value
            let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ended / 1000 + 1)))
            let byTime = try Support.evindex(["du", root, "--depth", "1000", "--json", "--at", date, "--db", db])
            let byRun = try Support.evindex(["du", root, "--depth", "1000", "--json", "--at", "2", "--db", db])
            #expect(byTime.status == 0 && byTime.stdout == byRun.stdout, "\(byTime.stderr)")
            let gone = try Support.evindex(["du", root + "/not-there-then", "--at", "1", "--db", db])
            #expect(gone.status == 2 && gone.stderr.contains("was not a directory in the index at that point"), "\(gone.stderr)")
            let bad = try Support.evindex(["ls", root, "--at", "seq:999999999", "--db", db])
            #expect(bad.status == 2 && bad.stderr.contains("no sequence 999999999"), "\(bad.stderr)")
        }
    }

    /// `export --ncdu`: gdu reads it and totals what GNU du totals, disk usage and apparent
    /// size. `ncdu -e -o` of a tree, imported with `import --ncdu`, lists what find lists
    /// (path, kind, size), and its directories' sizes are du's.
    @Test func ncduExportsGoBothWays() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db", exported = tmp + "/evindex.json"
            try Support.makeTree(root, entries: 1500, seed: 22)
            try Self.python(Self.addLinks, root)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let export = try Support.evindex(["export", "--ncdu", root, "--db", db])
            #expect(export.status == 0, "\(export.stderr)")
            try export.stdout.write(to: URL(fileURLWithPath: exported))
            for apparent in [false, true] {
                let flag = apparent ? ["--apparent-size"] : []
                let gdu = try Support.run(
                    ["/usr/bin/env", "gdu", "-n", "-p", "-s", "--no-prefix"] + (apparent ? ["--show-apparent-size"] : []) + ["-f", exported])
                let du = try Support.run(["/usr/bin/du", "-sx", "-B1"] + flag + [root])
                #expect(gdu.status == 0, "gdu: \(gdu.stderr)")
                let total = gdu.text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.map(String.init)
                #expect(total == du.text.split(separator: "\t").first.map(String.init), "gdu \(gdu.text) du \(du.text)")
            }

            // ncdu's own export of the tree, read in as a run of a new database.
            let ncduFile = tmp + "/ncdu.json", imported = tmp + "/imported"
            let ncdu = try Support.run(["/usr/bin/env", "ncdu", "-0", "-x", "-e", "-o", ncduFile, root])
            #expect(ncdu.status == 0, "ncdu: \(ncdu.stderr)")
            let result = try Support.evindex(["import", "--ncdu", ncduFile, "--db", imported])
            #expect(result.status == 0, "\(result.stderr)")
            let listed = try Support.objects(try Support.evindex(["ls", root, "-R", "--json", "--db", imported]).stdout).map { o in
                "\(Support.pathBytes(o)) \(o["kind"] as! String) \((o["size"] as! NSNumber).uint64Value)"
            }
            let found = try FindOracle.entries(root).map { e in
                // ncdu records no size for a FIFO, a socket or a device.
                "\(e.path) \(e.kind) \(e.kind == "other" ? 0 : e.size)"
            }
            #expect(
                Set(listed) == Set(found) && listed.count == found.count,
                "\(Set(found).subtracting(listed).prefix(3)) \(Set(listed).subtracting(found).prefix(3))")
            try Checks.expectSizesMatchDu(root, imported)
            #expect(try Support.evindex(["verify", "--db", imported]).status == 0)
            let bad = tmp + "/bad.json"
            try Data("[1,2,{},[{\"name\":\"relative\"}]]".utf8).write(to: URL(fileURLWithPath: bad))
            let refused = try Support.evindex(["import", "--ncdu", bad, "--db", tmp + "/never"])
            #expect(refused.status == 2 && refused.stderr.contains("absolute path"), "\(refused.stderr)")
        }
    }

    /// A paused run has stopped too (JobPaused, then the snapshot the pause writes):
    /// `du --since` of it finds nothing changed, and `du --at` of it prints what a replay
    /// to its last event prints.
    @Test func aPausedRunIsAStop() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 100_000, seed: 24)
            #expect(try Support.interruptedRun(root, db, after: 0.3, signal: SIGINT) == 130)
            let since = try Support.evindex(["du", root, "--since", "1", "--depth", "1000", "--json", "--db", db])
            #expect(since.status == 0, "\(since.stderr)")
            let rows = try Support.objects(since.stdout)
            #expect(!rows.isEmpty && rows.allSatisfy { ($0["disk_delta"] as! NSNumber).int64Value == 0 })
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            let last = (runs[0]["last_seq"] as! NSNumber).intValue
            #expect(try Support.evindex(["replay", "--to", String(last), "--db", db]).status == 0)
            let past = try Support.evindex(["du", root, "--depth", "1000", "--json", "--at", "1", "--db", db])
            let replayed = try Support.evindex(["du", root, "--depth", "1000", "--json", "--replayed", "--db", db])
            #expect(past.status == 0 && past.stdout == replayed.stdout && !past.stdout.isEmpty, "\(past.stderr)")
        }
    }
}
