import Foundation
import TestSupport
import Testing

/// The built `evindex` binary against independent oracles (`find`), on mktree trees.
@Suite(.serialized)
struct EndToEndTests {
    /// `ls -R --json` lists exactly what `find` lists; `du --json` equals sums over `find`'s
    /// output; a second run of the unchanged tree leaves both views as they were.
    @Test func indexMatchesFindAndDuOnA50kTree() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 50_000, seed: 11)
            let first = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(first.status == 0, "run failed: \(first.stderr)")

            let found = try FindOracle.entries(root)
            #expect(found.count >= 50_000)
            let listing = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
            #expect(listing.status == 0, "\(listing.stderr)")
            let listed = try Support.objects(listing.stdout).map { o in
                FindEntry(
                    path: Support.pathBytes(o), kind: o["kind"] as! String,
                    size: (o["size"] as! NSNumber).uint64Value, inode: (o["inode"] as! NSNumber).uint64Value,
                    mtimeNs: (o["mtime_ns"] as! NSNumber).int64Value)
            }
            #expect(listed.count == found.count)
            let missing = Set(found).subtracting(listed), extra = Set(listed).subtracting(found)
            #expect(missing.isEmpty, "not in the index: \(missing.prefix(3).map { String(decoding: $0.path, as: UTF8.self) })")
            #expect(extra.isEmpty, "not found by find: \(extra.prefix(3).map { String(decoding: $0.path, as: UTF8.self) })")

            // The awkward names of mktree are there, byte for byte, and links are not followed.
            let paths = Set(listed.map { String(decoding: $0.path, as: UTF8.self) })
            #expect(paths.contains(root + "/awkward/line\nbreak.txt"))
            #expect(listed.contains { $0.path == Array((root + "/awkward/latin1-").utf8) + [0xE9, 0x74, 0xE9] + Array(".txt".utf8) })
            #expect(listed.contains { String(decoding: $0.path, as: UTF8.self) == root + "/awkward/loop-link" && $0.kind == "symlink" })
            #expect(!paths.contains(root + "/awkward/loop-link/loop-link"))
            #expect(listed.contains { String(decoding: $0.path, as: UTF8.self) == root + "/awkward/dangling-link" && $0.kind == "symlink" })

            // du: every directory's totals equal the sums over find's entries.
            let oracle = FindOracle.totals(root: Array(root.utf8), entries: found)
            let du = try Support.evindex(["du", root, "--depth", "1000", "--json", "--db", db])
            #expect(du.status == 0, "\(du.stderr)")
            let rows = try Support.objects(du.stdout)
            #expect(rows.count == oracle.count)
            var mismatches = 0
            for row in rows {
                let path = Support.pathBytes(row)
                let got = (
                    (row["size"] as! NSNumber).int64Value, (row["files"] as! NSNumber).int64Value,
                    (row["dirs"] as! NSNumber).int64Value
                )
                guard let want = oracle[path], want == got else {
                    mismatches += 1
                    if mismatches < 4 {
                        Issue.record("du of \(String(decoding: path, as: UTF8.self)): \(got) vs \(String(describing: oracle[path]))")
                    }
                    continue
                }
            }
            #expect(mismatches == 0)

            // A second run of the same tree changes neither view and records no entry events.
            let second = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(second.status == 0, "\(second.stderr)")
            let summary = try Support.objects(second.stdout)[0]
            #expect(summary["created"] as? Int == 0)
            #expect(summary["updated"] as? Int == 0)
            #expect(summary["removed"] as? Int == 0)
            #expect(try Support.evindex(["ls", root, "-R", "--json", "--db", db]).stdout == listing.stdout)
            #expect(try Support.evindex(["du", root, "--depth", "1000", "--json", "--db", db]).stdout == du.stdout)
            let events = try Support.objects(try Support.evindex(["log", "--run", "2", "--json", "--db", db]).stdout)
            #expect(events.map { $0["type"] as! String } == ["JobStarted", "JobCompleted"])
        }
    }

    /// A rescan after changes on disk records them, and the views follow.
    @Test func rescanRecordsCreatedUpdatedAndRemovedEntries() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/sub/deeper", withIntermediateDirectories: true)
            try Data(count: 100).write(to: URL(fileURLWithPath: root + "/a.txt"))
            try Data(count: 200).write(to: URL(fileURLWithPath: root + "/sub/b.txt"))
            try Data(count: 300).write(to: URL(fileURLWithPath: root + "/sub/deeper/c.txt"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            try Data(count: 150).write(to: URL(fileURLWithPath: root + "/a.txt"))
            try FileManager.default.removeItem(atPath: root + "/sub/deeper")
            try Data(count: 7).write(to: URL(fileURLWithPath: root + "/new.txt"))
            let r = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let s = try Support.objects(r.stdout)[0]
            #expect(s["created"] as? Int == 1)
            #expect(s["removed"] as? Int == 1)

            let found = try FindOracle.entries(root)
            let listed = try Support.objects(try Support.evindex(["ls", root, "-R", "--json", "--db", db]).stdout)
            #expect(Set(listed.map { Support.pathBytes($0) }) == Set(found.map(\.path)))
            let du = try Support.objects(try Support.evindex(["du", root, "--depth", "9", "--json", "--db", db]).stdout)
            let oracle = FindOracle.totals(root: Array(root.utf8), entries: found)
            for row in du {
                let want = oracle[Support.pathBytes(row)]!
                #expect((row["size"] as! NSNumber).int64Value == want.0)
                #expect((row["files"] as! NSNumber).int64Value == want.1)
                #expect((row["dirs"] as! NSNumber).int64Value == want.2)
            }
        }
    }

    /// Bad input: one line on stderr, a non-zero exit, nothing written.
    @Test(arguments: ["missing root", "root is a file", "db not writable"])
    func badInputIsRefusedWithOneLine(_ situation: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            _ = FileManager.default.createFile(atPath: tmp + "/file", contents: Data("x".utf8))
            let arguments: [String]
            switch situation {
            case "missing root": arguments = ["run", tmp + "/no-such-dir", "--db", db]
            case "root is a file": arguments = ["run", tmp + "/file", "--db", db]
            default: arguments = ["run", tmp, "--db", tmp + "/file/db"]
            }
            let r = try Support.evindex(arguments)
            #expect(r.status == 2)
            #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)")
            #expect(r.stderr.hasPrefix("evindex: "))
            #expect(r.stdout.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: db))
        }
    }

    /// `--progress json` streams NDJSON progress objects on stderr; without a terminal the
    /// default prints no progress (and no control codes) at all.
    @Test func progressIsJSONOnRequestAndSilentWithoutATerminal() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 60_000, seed: 3)
            let r = try Support.evindex(["run", root, "--db", tmp + "/a", "--progress", "json"])
            #expect(r.status == 0)
            let objects = try Support.objects(Data(r.stderr.utf8))
            #expect(!objects.isEmpty)
            let entries = objects.map { ($0["entries"] as! NSNumber).intValue }
            #expect(entries == entries.sorted())
            #expect(entries.last! <= 60_000)
            #expect(objects.allSatisfy { ["starting", "walking", "saving", "finishing", "done"].contains($0["phase"] as! String) })
            let quiet = try Support.evindex(["run", root, "--db", tmp + "/b"])
            #expect(quiet.status == 0)
            #expect(quiet.stderr.isEmpty)
        }
    }

    /// The terminal `du` is a chart of the biggest directories by disk usage (or apparent
    /// size): the path first, then at most --top rows, exact with --bytes, each figure the
    /// one GNU du prints for that directory.
    @Test func duChartsTheBiggestDirectories() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            for (dir, size) in [("a", 500_000), ("b", 300_000), ("c", 100_000), ("c/d", 50_000)] {
                try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
                try Data(count: size).write(to: URL(fileURLWithPath: root + "/" + dir + "/f"))
            }
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            for apparent in [false, true] {
                func du(_ dir: String) throws -> Int64 {
                    let r = try Support.run(["/usr/bin/du", "-sx", "-B1"] + (apparent ? ["--apparent-size"] : []) + [dir])
                    return Int64(r.text.split(separator: "\t")[0])!
                }
                let chart = try Support.evindex(
                    ["du", root, "--depth", "2", "--top", "2", "--bytes", "--db", db] + (apparent ? ["--apparent-size"] : []))
                #expect(chart.status == 0)
                let lines = chart.text.split(separator: "\n").map(String.init)
                #expect(lines.count == 4, "\(lines)")
                guard lines.count == 4 else { continue }
                let whole = try du(root), a = try du(root + "/a"), b = try du(root + "/b")
                let percent = Int((Double(a) / Double(whole) * 100).rounded())
                #expect(lines[0].hasPrefix("\(whole) ") && lines[0].hasSuffix(root), "\(lines[0])")
                #expect(lines[1].contains("\(a) ") && lines[1].hasSuffix("/a") && lines[1].contains("\(percent)%"), "\(lines[1])")
                #expect(lines[2].contains("\(b) ") && lines[2].hasSuffix("/b"), "\(lines[2])")
                #expect(lines[3].contains("2 smaller directories not shown"))
            }
            let rows = try Support.objects(try Support.evindex(["du", root, "--depth", "2", "--json", "--db", db]).stdout)
            #expect(rows.count == 5)
        }
    }

    /// Read-only commands on a database that does not exist say so and create nothing.
    @Test func queriesOfAMissingDatabaseCreateNothing() throws {
        try Support.withTemporaryDirectory { tmp in
            for command in [["ls", tmp], ["du", tmp], ["log"], ["runs"]] {
                let r = try Support.evindex(command + ["--db", tmp + "/none"])
                #expect(r.status == 2)
                #expect(r.stderr.contains("no evindex database"))
            }
            #expect(!FileManager.default.fileExists(atPath: tmp + "/none"))
        }
    }

    /// `ls`'s human lines, built as bytes: each one's size column and UTC time equal what
    /// `stat` and GNU `date` print for the file, before 1970 and after 2038 too (after 2262,
    /// where nanoseconds no longer fit 64 bits, the latest time the index holds, not a
    /// wrapped one in the past).
    @Test func lsLinesAgreeWithStatAndDate() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let mtimes: [Int64] = [0, -1, -86_401, 951_782_400, 1_600_000_000, 2_147_483_648, 4_102_444_800, 10_000_000_000]
            for (i, t) in mtimes.enumerated() {
                let file = root + "/f\(i)"
                #expect(FileManager.default.createFile(atPath: file, contents: Data(count: i * 1000)))
                #expect(try Support.run(["/usr/bin/touch", "-d", "@\(t)", file]).status == 0)
            }
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let lines = try Support.evindex(["ls", root, "--db", db]).text.split(separator: "\n")
            #expect(lines.count == mtimes.count)
            for i in mtimes.indices {
                // The time the filesystem kept (ext4 keeps 34 bits of seconds), as date prints it.
                // Beyond 2262 nanoseconds overflow 64 bits: the index holds the latest time it can.
                let kept = try Support.run(["/usr/bin/stat", "-c", "%Y", root + "/f\(i)"]).text.trimmingCharacters(in: .newlines)
                let t = Int64(kept)! > Int64.max / 1_000_000_000 ? String(Int64.max / 1_000_000_000) : kept
                let date = try Support.run(["/usr/bin/date", "-u", "-d", "@\(t)", "+%Y-%m-%d %H:%M:%S"]).text
                    .trimmingCharacters(in: .newlines)
                let size = String(i * 1000)
                let want = "- " + String(repeating: " ", count: 14 - size.count) + size + "  " + date + "  " + root + "/f\(i)"
                #expect(lines.contains { $0 == want }, "no line \(want) in \(lines)")
            }
        }
    }
}
