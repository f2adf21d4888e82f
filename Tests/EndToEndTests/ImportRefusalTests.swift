import Events
import Foundation
import JSONFormat
import TestSupport
import Testing

/// `import` refuses what would make an index lie (issue 21, section 3): an export cut
/// short at a line boundary was imported as a complete run; names like `a/b` or `..`,
/// relative roots and parents the export never gave were imported. Each is refused in
/// one line naming the line, exit 2, nothing written.
@Suite(.serialized)
struct ImportRefusalTests {
    /// A run with a base (a rescan after changes): its export, as lines.
    static func makeExport(_ tmp: String) throws -> [String] {
        let root = tmp + "/tree", db = tmp + "/source"
        try Support.makeTree(root, entries: 120, seed: 13)
        #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        _ = try Checks.mutate(root, 12, seed: 1)
        #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        let export = try Support.evindex(["export", "2", "--db", db])
        #expect(export.status == 0, "\(export.stderr)")
        let lines = export.text.split(separator: "\n").map(String.init)
        #expect(lines.last?.hasPrefix("{\"evindex_export_end\":1,") == true, "\(lines.last ?? "")")
        return lines
    }

    /// The lines with the trailer written again for them, as `export` would have.
    static func sealed(_ lines: [String]) -> String {
        let body = lines.filter { !$0.hasPrefix("{\"evindex_export_end\"") }
        let text = body.map { $0 + "\n" }.joined()
        let base = body.filter { $0.hasPrefix("{\"base\":true") }.count
        return text + ExportFormat.trailer(baseEntries: base, events: body.count - 1 - base, checksum: CRC32C.checksum(Array(text.utf8))) + "\n"
    }

    /// Imports `text` into a database that already holds a run; expects the refusal.
    static func expectRefused(_ tmp: String, _ text: String, saying words: String, _ what: String) throws {
        let file = tmp + "/export.ndjson", db = tmp + "/target"
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        if !FileManager.default.fileExists(atPath: db) {
            try FileManager.default.createDirectory(atPath: tmp + "/other", withIntermediateDirectories: true)
            try Checks.write(tmp + "/other/f", bytes: 1)
            #expect(try Support.evindex(["run", tmp + "/other", "--db", db]).status == 0)
        }
        let before = try Support.evindex(["log", "--json", "--db", db]).stdout
        let r = try Support.evindex(["import", file, "--db", db])
        #expect(r.status == 2, "\(what): exit \(r.status)")
        #expect(r.stderr.hasPrefix("evindex: ") && r.stderr.contains(words) && r.stderr.split(separator: "\n").count == 1, "\(what): \(r.stderr)")
        #expect(try Support.evindex(["log", "--json", "--db", db]).stdout == before, "\(what): nothing written")
    }

    @Test func aSoundExportIsImported() throws {
        try Support.withTemporaryDirectory { tmp in
            let lines = try Self.makeExport(tmp)
            let file = tmp + "/export.ndjson"
            try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: file))
            let r = try Support.evindex(["import", file, "--db", tmp + "/target"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Support.evindex(["verify", "--db", tmp + "/target"]).status == 0)
        }
    }

    @Test func anExportCutShortIsRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            let lines = try Self.makeExport(tmp)
            for keep in [1, 2, lines.count / 2, lines.count - 1] {
                let text = lines.prefix(keep).map { $0 + "\n" }.joined()
                try Self.expectRefused(tmp, text, saying: "line \(keep): the export ends here without its last line", "cut to \(keep) lines")
            }
            // A line dropped from the middle, the trailer kept: the counts and checksum disagree.
            var dropped = lines
            dropped.remove(at: lines.count / 2)
            try Self.expectRefused(
                tmp, dropped.map { $0 + "\n" }.joined(), saying: "line \(lines.count - 1): the export says it holds", "a line dropped")
            var altered = lines
            let sized = try #require(lines.indices.dropFirst().first { lines[$0].contains("\"size\":") })
            altered[sized] = altered[sized].replacingOccurrences(of: "\"size\":", with: "\"size\":1")
            try Self.expectRefused(tmp, altered.map { $0 + "\n" }.joined(), saying: "it was altered", "a size changed")
        }
    }

    /// What else can be wrong with the ends of a file: a line after the trailer, a
    /// trailer of another version, a header whose count disagrees, a count past 2^63.
    @Test func brokenEndsAreRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            let lines = try Self.makeExport(tmp)
            try Self.expectRefused(
                tmp, (lines + [lines[1]]).map { $0 + "\n" }.joined(), saying: "line \(lines.count + 1): a line after the export's last line",
                "a line after the trailer")
            var other = lines
            other[lines.count - 1] = other[lines.count - 1].replacingOccurrences(of: "\"evindex_export_end\":1", with: "\"evindex_export_end\":2")
            try Self.expectRefused(tmp, other.map { $0 + "\n" }.joined(), saying: "an export end of another version", "trailer version")
            var header = lines
            header[0] = header[0].replacingOccurrences(of: #""base_entries":[0-9]+"#, with: "\"base_entries\":1", options: .regularExpression)
            try Self.expectRefused(tmp, Self.sealed(header), saying: "line 1: the header says 1 base lines", "header count")
            var huge = lines
            huge[lines.count - 1] = huge[lines.count - 1].replacingOccurrences(
                of: #""events":[0-9]+"#, with: "\"events\":18446744073709551615", options: .regularExpression)
            try Self.expectRefused(tmp, huge.map { $0 + "\n" }.joined(), saying: "the export says it holds", "a count past 2^63")
        }
    }

    @Test(arguments: ["a/b", ".", "..", "", "nul\\u0000"])
    func anImpossibleNameIsRefused(_ name: String) throws {
        try Support.withTemporaryDirectory { tmp in
            var lines = try Self.makeExport(tmp)
            let i = try #require(lines.firstIndex { $0.contains("\"type\":\"EntryCreated\"") || $0.hasPrefix("{\"base\":true") })
            lines[i] = lines[i].replacingOccurrences(
                of: #""name":"[^"]*""#, with: NSRegularExpression.escapedTemplate(for: "\"name\":\"\(name)\""), options: .regularExpression)
            lines[i] = lines[i].replacingOccurrences(of: #","name_b64":"[^"]*""#, with: "", options: .regularExpression)
            try Self.expectRefused(tmp, Self.sealed(lines), saying: "line \(i + 1): ", "name \(name)")
        }
    }

    @Test(arguments: ["relative/root", "/a/../etc", "/with\\u0000nul"])
    func anImpossibleRootIsRefused(_ root: String) throws {
        try Support.withTemporaryDirectory { tmp in
            var lines = try Self.makeExport(tmp)
            lines[0] = lines[0].replacingOccurrences(
                of: #""root":"[^"]*""#, with: NSRegularExpression.escapedTemplate(for: "\"root\":\"\(root)\""), options: .regularExpression)
            try Self.expectRefused(tmp, Self.sealed(lines), saying: "line 1: the root", "root \(root)")
        }
    }

    @Test func aParentTheExportNeverGaveIsRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            var lines = try Self.makeExport(tmp)
            let i = try #require(lines.firstIndex { $0.contains("\"type\":\"EntryCreated\"") || $0.contains("\"type\":\"EntryRemoved\"") })
            lines[i] = lines[i].replacingOccurrences(of: #""parent":[0-9]+"#, with: "\"parent\":987654321", options: .regularExpression)
            try Self.expectRefused(tmp, Self.sealed(lines), saying: "line \(i + 1): parent 987654321 is no directory of the export", "a parent")
        }
    }

    /// The NDJSON reader takes 4,000 seeded mutations of a real export, half of them
    /// sealed again so they reach past the checksum: each is decoded or refused naming a
    /// line of the input, never a crash; what it accepts holds only possible names.
    @Test func theReaderSurvivesFuzzing() throws {
        try Support.withTemporaryDirectory { tmp in
            let lines = try Self.makeExport(tmp)
            var random = SplitMix64(seed: 5)
            func below(_ n: Int) -> Int { Int(random.next() % UInt64(max(n, 1))) }
            var refused = 0, decoded = 0
            for trial in 0..<4_000 {
                var mutated = lines
                for _ in 0...below(3) {
                    let i = below(mutated.count)
                    var bytes = Array(mutated[i].utf8)
                    switch below(5) {
                    case 0 where !bytes.isEmpty: bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                    case 1: bytes.insert(Array("\"/.\\0:,{}[]a".utf8)[below(12)], at: below(bytes.count + 1))
                    case 2 where !bytes.isEmpty: bytes.removeSubrange(below(bytes.count)...)
                    case 3: mutated.insert(mutated[below(mutated.count)], at: below(mutated.count))
                    default: mutated.remove(at: i)
                    }
                    if i < mutated.count { mutated[i] = String(decoding: bytes, as: UTF8.self) }
                }
                let text = trial % 2 == 0 ? Self.sealed(mutated) : mutated.map { $0 + "\n" }.joined()
                let input = Array(text.utf8)
                do throws(ExportFormatError) {
                    let run = try ExportFormat.decode(input)
                    decoded += 1
                    #expect(run.run.root.first == UInt8(ascii: "/"))
                    for entry in run.base { #expect(!entry.name.isEmpty && !entry.name.contains(UInt8(ascii: "/"))) }
                } catch {
                    refused += 1
                    let count = input.split(separator: 10, omittingEmptySubsequences: false).count
                    #expect(error.line.map { $0 >= 1 && $0 <= count } ?? true, "\(error)")
                }
            }
            print("export fuzz: \(refused) refused, \(decoded) decoded")
            #expect(refused > 2_000 && decoded > 20)
        }
    }
}
