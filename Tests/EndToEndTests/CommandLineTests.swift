import Foundation
import TestSupport
import Testing

/// What a script and a reader expect of the command line (issue 21, section 3): a typo
/// fails, counts read as English, `verify` speaks JSON, `log --follow --run` of a
/// finished run ends.
@Suite(.serialized)
struct CommandLineTests {
    @Test func helpForAnUnknownCommandFails() throws {
        let bogus = try Support.evindex(["help", "bogus"])
        #expect(bogus.status == 2 && bogus.text.isEmpty, "\(bogus.status) \(bogus.text)")
        #expect(bogus.stderr == "evindex: no command `bogus` (`evindex --help` lists them)\n", "\(bogus.stderr)")
        let known = try Support.evindex(["help", "ls"])
        #expect(known.status == 0 && known.text.contains("OVERVIEW: List what the index holds"), "\(known.text)")
    }

    /// One of a thing is singular: "1 entry", "1 file", "1 run", never "1 files".
    @Test func countsOfOneAreSingular() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Checks.write(root + "/only", bytes: 3)
            let run = try Support.evindex(["run", root, "--db", db])
            #expect(run.text.contains(": 1 entry (0 dirs, 1 file, 0 symlinks, 0 other)"), "\(run.text)")
            #expect(run.text.contains("1 created, 0 updated, 0 removed, 0 moved, 0 errors;"), "\(run.text)")
            let verify = try Support.evindex(["verify", "--db", db])
            #expect(verify.text.contains("; 1 run as the log says;"), "\(verify.text)")
            let show = try Support.evindex(["show", "1", "--db", db])
            #expect(show.text.contains("  1 entry (0 dirs, 1 file,"), "\(show.text)")
            for r in [run, verify, show] {
                #expect(r.text.range(of: #"\b1 (entries|files|dirs|runs|events|errors)\b"#, options: .regularExpression) == nil, "\(r.text)")
            }
        }
    }

    @Test func verifySpeaksJSON() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 100, seed: 2)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let sound = try Support.evindex(["verify", "--json", "--db", db])
            #expect(sound.status == 0, "\(sound.stderr)")
            let o = try Support.objects(sound.stdout)
            #expect(o.count == 1 && o[0]["sound"] as? Bool == true && o[0]["runs"] as? Int == 1, "\(o)")
            #expect((o[0]["pages"] as? Int ?? 0) > 2 && (o[0]["events"] as? Int ?? 0) > 100, "\(o)")

            // Meta page 0's transaction id made odd.
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: db + "/data.mdb")))
            bytes[144] ^= 1
            try Data(bytes).write(to: URL(fileURLWithPath: db + "/data.mdb"))
            let damaged = try Support.evindex(["verify", "--json", "--db", db])
            #expect(damaged.status == 1 && damaged.stderr.split(separator: "\n").count == 1, "\(damaged.stderr)")
            let d = try Support.objects(damaged.stdout)
            #expect(d.count == 1 && d[0]["sound"] as? Bool == false, "\(d)")
            #expect((d[0]["problem"] as? String ?? "").contains("meta page 0 is damaged"), "\(d)")
        }
    }

    /// `log --follow --run N` of a completed run printed its events, then never ended.
    @Test func followingACompletedRunEnds() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 50, seed: 2)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let r = try Support.run(["/usr/bin/timeout", "20", Support.evindex, "log", "--follow", "--run", "1", "--db", db])
            #expect(r.status == 0, "exit \(r.status): it did not end by itself")
            #expect(r.text.split(separator: "\n").last?.contains("JobCompleted") == true, "\(r.text.suffix(200))")
        }
    }
}
