import Foundation
import TestSupport
import Testing

/// A damaged `data.mdb` gives one clear line and exit 1, never a signal, and `verify`
/// names the damage LMDB itself would not see (issue 21, section 2).
@Suite(.serialized)
struct DamagedDatabaseTests {
    /// The layout facts the tests flip (LMDB 0.9, mdb.c): meta page `k` at `k * 4096`,
    /// its last page at byte 136 and transaction id at 144; a page's flags at 10, its
    /// `lower` bound at 12, node offsets from 16; a node's value size in its first 4 bytes.
    static let pageSize = 4096

    static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }

    /// The last page of the newer commit: the pages whose bytes matter.
    static func lastPage(_ b: [UInt8]) -> Int {
        let newer = u64(b, pageSize + 144) > u64(b, 144) ? pageSize : 0
        return Int(u64(b, newer + 136))
    }

    /// A small real database with history: a first index, two rescans after changes
    /// (so the free list holds pages), and a replay.
    static func makeDatabase(_ tmp: String) throws -> (root: String, db: String) {
        let root = tmp + "/tree", db = tmp + "/db"
        try Support.makeTree(root, entries: 300, seed: 11)
        #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        for seed in [1, 2] {
            _ = try Checks.mutate(root, 20, seed: seed)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        }
        #expect(try Support.evindex(["replay", "--db", db]).status == 0)
        return (root, db)
    }

    /// Runs `evindex` under a hard timeout: a hang or a signal shows as an exit status
    /// other than 0, 1 and 2.
    static func bounded(_ arguments: [String]) throws -> Support.Result {
        try Support.run(["/usr/bin/timeout", "-s", "KILL", "30", Support.evindex] + arguments)
    }

    static func write(_ bytes: [UInt8], to db: String) throws {
        try? FileManager.default.removeItem(atPath: db)
        try FileManager.default.createDirectory(atPath: db, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: db + "/data.mdb"))
    }

    /// Databases as the runs leave them, of several sizes and histories, pass the page
    /// check: it must never call a sound file damaged.
    @Test func soundDatabasesPassThePageCheck() throws {
        try Support.withTemporaryDirectory { tmp in
            let (root, db) = try Self.makeDatabase(tmp)
            let small = try Support.evindex(["verify", "--db", db])
            #expect(small.status == 0 && small.text.contains("every one sound"), "\(small.stderr)")

            let big = tmp + "/big", bigDB = tmp + "/bigdb"
            try Support.makeTree(big, entries: 20_000, seed: 12)
            #expect(try Support.evindex(["run", big, "--db", bigDB]).status == 0)
            _ = try Checks.mutate(big, 500, seed: 1)
            #expect(try Support.evindex(["run", big, "--db", bigDB, "--full-listing"]).status == 0)
            #expect(try Support.evindex(["run", root, "--db", bigDB]).status == 0)
            let v = try Support.evindex(["verify", "--db", bigDB])
            #expect(v.status == 0 && v.text.contains("every one sound"), "\(v.stderr)")
        }
    }

    /// A flip in a meta page's transaction id made LMDB read the older commit; every
    /// command answered from one commit back and `verify` passed.
    @Test(arguments: [(0, 148, 0x01), (0, 144, 0x01), (1, 144, 0x02), (1, 150, 0x80)])
    func aDamagedTransactionIdFailsVerify(_ meta: Int, _ byte: Int, _ mask: UInt8) throws {
        try Support.withTemporaryDirectory { tmp in
            let (_, db) = try Self.makeDatabase(tmp)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: db + "/data.mdb")))
            bytes[meta * Self.pageSize + byte] ^= mask
            let damaged = tmp + "/damaged"
            try Self.write(bytes, to: damaged)
            let r = try Self.bounded(["verify", "--db", damaged])
            #expect(r.status == 1, "\(r.status) \(r.text)")
            #expect(r.stderr.contains("is damaged: ") && r.stderr.contains("meta page"), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    /// A leaf node whose value size reaches past the file: LMDB hands the reader a value
    /// that runs off the map. `verify` names it before mapping; the readers that touch it
    /// end with one line and exit 1 instead of SIGBUS or SIGSEGV.
    @Test func aNodeSizePastTheFileIsOneLineNotASignal() throws {
        try Support.withTemporaryDirectory { tmp in
            let (root, db) = try Self.makeDatabase(tmp)
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: db + "/data.mdb")))
            let damaged = tmp + "/damaged"
            var guarded = 0, leaves = 0
            for page in 2...Self.lastPage(original) {
                let at = page * Self.pageSize
                guard Self.u16(original, at + 10) == 0x02 else { continue }
                let first = at + Self.u16(original, at + 16)
                guard Self.u16(original, first + 4) == 0 else { continue }  // a value on the page
                leaves += 1
                var bytes = original
                bytes[first + 3] = 0x7F  // size += ~2 GiB
                try Self.write(bytes, to: damaged)
                var readersFailed = false
                for command in [["ls", "-R", root], ["du", root], ["log"], ["find", "a"], ["runs"]] {
                    let r = try Self.bounded(command + ["--db", damaged])
                    #expect(r.status == 0 || r.status == 1, "page \(page) \(command): status \(r.status), \(r.stderr)")
                    if r.status != 0 {
                        readersFailed = true
                        #expect(r.stderr.hasPrefix("evindex: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
                        if r.stderr.contains("a page lies past the end of the file") { guarded += 1 }
                    }
                }
                if readersFailed {
                    let v = try Self.bounded(["verify", "--db", damaged])
                    #expect(v.status == 1 && v.stderr.contains("page \(page)"), "page \(page): \(v.status) \(v.stderr)")
                }
            }
            #expect(leaves > 5)
            #expect(guarded > 0, "some reader met a value past the map")
        }
    }

    /// Seeded flips of single bits and truncations of a small real database: every
    /// command ends by itself with 0, 1 or 2 and one line when it fails; when `verify`
    /// passes, the readers answer exactly as from the sound file.
    @Test func fuzzedDatabasesNeverCrash() throws {
        try Support.withTemporaryDirectory { tmp in
            let (root, db) = try Self.makeDatabase(tmp)
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: db + "/data.mdb")))
            let readers = [["ls", "-R", root], ["du", root, "--depth", "3"], ["log"], ["runs", "--json"]]
            var expected: [Data] = []
            for command in readers { expected.append(try Support.evindex(command + ["--db", db]).stdout) }
            let used = (Self.lastPage(original) + 1) * Self.pageSize
            var random = SplitMix64(seed: 21)
            var detected = 0, harmless = 0
            let damaged = tmp + "/damaged"
            for trial in 0..<240 {
                var bytes = original
                let what: String
                if trial % 6 == 5 {
                    let cut = Int(random.next() % UInt64(used))
                    bytes.removeSubrange(cut...)
                    what = "cut to \(cut) bytes"
                } else {
                    let at = Int(random.next() % UInt64(used)), bit = Int(random.next() % 8)
                    bytes[at] ^= 1 << bit
                    what = "bit \(bit) of byte \(at) flipped"
                }
                try Self.write(bytes, to: damaged)
                let verify = try Self.bounded(["verify", "--db", damaged])
                #expect(verify.status == 0 || verify.status == 1, "\(what): verify status \(verify.status) \(verify.stderr)")
                if verify.status == 0 { harmless += 1 } else { detected += 1 }
                for (command, answer) in zip(readers, expected) {
                    let r = try Self.bounded(command + ["--db", damaged])
                    #expect([0, 1, 2].contains(r.status), "\(what): \(command) status \(r.status) \(r.stderr)")
                    if r.status != 0 {
                        #expect(r.stderr.hasPrefix("evindex: ") && r.stderr.split(separator: "\n").count == 1, "\(what): \(r.stderr)")
                    } else if verify.status == 0 {
                        #expect(r.stdout == answer, "\(what): verify passed, yet \(command) answers differently")
                    }
                }
            }
            print("database fuzz: \(detected) damaged files detected by verify, \(harmless) harmless")
            #expect(detected > 40)
        }
    }
}
