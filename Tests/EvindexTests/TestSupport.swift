import Foundation
import Testing
import Traversal

/// Helpers shared by the suites: temporary directories, the mktree generator, the built
/// `evindex` binary and the `find` oracle.
enum Support {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let fixtures = repositoryRoot.appendingPathComponent("Fixtures")

    /// The `evindex` executable built next to the test bundle.
    static var evindex: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent(), repositoryRoot.appendingPathComponent(".build/debug")] {
            let candidate = dir.appendingPathComponent("evindex").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repositoryRoot.appendingPathComponent(".build/debug/evindex").path
    }

    /// A fresh directory removed when `body` returns.
    static func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
        var template = Array("/tmp/evindex-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        let path = String(cString: made)
        defer { _ = try? run(["/bin/rm", "-rf", path]) }
        return try body(path)
    }

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs a command to completion, capturing its output.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes while the child runs, so a large output cannot block it.
        let errData = LockedData()
        let errThread = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        return Result(status: process.terminationStatus, stdout: outData, stderr: String(decoding: errData.value, as: UTF8.self))
    }

    /// Runs `evindex` with the arguments.
    @discardableResult
    static func evindex(_ arguments: [String]) throws -> Result {
        try run([evindex] + arguments)
    }

    /// Builds a tree with mktree.py; returns the summary it printed.
    @discardableResult
    static func makeTree(_ dest: String, entries: Int, seed: Int) throws -> [String: Any] {
        let r = try run(["/usr/bin/env", "python3", fixtures.appendingPathComponent("mktree.py").path, dest,
                         "--entries", String(entries), "--seed", String(seed)])
        #expect(r.status == 0, "mktree failed: \(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
    }

    /// Parses NDJSON output.
    static func objects(_ data: Data) throws -> [[String: Any]] {
        try data.split(separator: UInt8(ascii: "\n")).map { line in
            try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
        }
    }

    /// The exact bytes of a path in evindex JSON: `path_b64` when present, else `path`.
    static func pathBytes(_ object: [String: Any], key: String = "path") -> [UInt8] {
        if let b64 = object[key + "_b64"] as? String, let data = Data(base64Encoded: b64) { return Array(data) }
        return Array((object[key] as! String).utf8)
    }
}

final class LockedData: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ d: Data) { lock.lock(); data = d; done = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// What `find` sees below a root: the independent oracle for `ls` and `du`.
struct FindEntry: Hashable {
    var path: [UInt8]
    var kind: String
    var size: UInt64
    var inode: UInt64
    var mtimeNs: Int64
}

enum FindOracle {
    /// Every entry below `root` (not the root itself), as `find -printf` reports it.
    static func entries(_ root: String) throws -> [FindEntry] {
        let r = try Support.run(["/usr/bin/find", root, "-mindepth", "1", "-printf", "%p\\0%y\\0%s\\0%i\\0%T@\\0"])
        #expect(r.status == 0, "find failed: \(r.stderr)")
        let fields = r.stdout.split(separator: 0, omittingEmptySubsequences: false)
        var result: [FindEntry] = []
        var i = 0
        while i + 5 <= fields.count {
            let kind: String
            switch String(decoding: fields[i + 1], as: UTF8.self) {
            case "f": kind = "file"
            case "d": kind = "dir"
            case "l": kind = "symlink"
            default: kind = "other"
            }
            result.append(FindEntry(path: Array(fields[i]), kind: kind,
                                    size: UInt64(String(decoding: fields[i + 2], as: UTF8.self))!,
                                    inode: UInt64(String(decoding: fields[i + 3], as: UTF8.self))!,
                                    mtimeNs: nanoseconds(String(decoding: fields[i + 4], as: UTF8.self))))
            i += 5
        }
        return result
    }

    /// "1600000000.1234567890" → nanoseconds, exactly (no floating point).
    static func nanoseconds(_ text: String) -> Int64 {
        let parts = text.split(separator: ".")
        let seconds = Int64(parts[0])!
        var fraction = parts.count > 1 ? String(parts[1]) : ""
        fraction = String((fraction + "000000000").prefix(9))
        return seconds * 1_000_000_000 + Int64(fraction)!
    }

    /// For every directory (root included): (size of regular files below, files, dirs).
    static func totals(root: [UInt8], entries: [FindEntry]) -> [[UInt8]: (Int64, Int64, Int64)] {
        var totals: [[UInt8]: (Int64, Int64, Int64)] = [root: (0, 0, 0)]
        for e in entries where e.kind == "dir" { totals[e.path] = (0, 0, 0) }
        for e in entries {
            var dir = e.path
            while dir.count > root.count {
                dir = Array(dir[..<dir.lastIndex(of: UInt8(ascii: "/"))!])
                guard var t = totals[dir] else { break }
                if e.kind == "file" { t.0 += Int64(e.size); t.1 += 1 }
                if e.kind == "dir" { t.2 += 1 }
                totals[dir] = t
            }
        }
        return totals
    }
}

/// An entry's identity on disk: a rename keeps it, a new file given a freed inode does not.
struct Identity: Hashable {
    var inode: UInt64
    var birth: String
}

struct IdentifiedEntry {
    var path: [UInt8]
    var kind: String
    var size: UInt64
    var mtime: String
    var identity: Identity
}

/// Net changes between two `find` listings of one tree.
struct NetChanges: CustomStringConvertible {
    var created = 0, removed = 0, movedFiles = 0, movedDirs = 0, modifiedFiles = 0
    var description: String {
        "created \(created), removed \(removed), moved files \(movedFiles), moved dirs \(movedDirs), modified files \(modifiedFiles)"
    }
}

extension FindOracle {
    /// Every entry below `root` with its identity: inode and birth time to the
    /// nanosecond, from coreutils `stat` (statx; this `find` cannot print birth times).
    static func identities(_ root: String) throws -> [IdentifiedEntry] {
        let script = "find \"$1\" -mindepth 1 -print0 | xargs -0 stat --printf '%n\\0%F\\0%s\\0%i\\0%.9Y\\0%w\\0'"
        let r = try Support.run(["/bin/sh", "-c", script, "sh", root])
        #expect(r.status == 0, "\(r.stderr)")
        let f = r.stdout.split(separator: 0, omittingEmptySubsequences: false).map { Array($0) }
        var result: [IdentifiedEntry] = []
        var i = 0
        while i + 6 <= f.count {
            let type = String(decoding: f[i + 1], as: UTF8.self)
            let kind = type == "directory" ? "dir" : type.hasPrefix("regular") ? "file" : type
            result.append(IdentifiedEntry(path: f[i], kind: kind,
                                          size: UInt64(String(decoding: f[i + 2], as: UTF8.self))!,
                                          mtime: String(decoding: f[i + 4], as: UTF8.self),
                                          identity: Identity(inode: UInt64(String(decoding: f[i + 3], as: UTF8.self))!,
                                                             birth: String(decoding: f[i + 5], as: UTF8.self))))
            i += 6
        }
        return result
    }

    /// Created, removed, moved (its parent or name changed, not merely an ancestor) and
    /// modified (same place, new size or mtime) entries.
    static func changes(before: [IdentifiedEntry], after: [IdentifiedEntry]) -> NetChanges {
        func parentAndName(_ entries: [IdentifiedEntry]) -> [Identity: (Identity?, [UInt8])] {
            var byPath: [[UInt8]: Identity] = [:]
            for e in entries { byPath[e.path] = e.identity }
            var result: [Identity: (Identity?, [UInt8])] = [:]
            for e in entries {
                let cut = e.path.lastIndex(of: UInt8(ascii: "/"))!
                result[e.identity] = (byPath[Array(e.path[..<cut])], Array(e.path[(cut + 1)...]))
            }
            return result
        }
        let old = parentAndName(before), new = parentAndName(after)
        let oldByIdentity = Dictionary(before.map { ($0.identity, $0) }, uniquingKeysWith: { a, _ in a })
        var net = NetChanges()
        for e in after {
            guard let o = oldByIdentity[e.identity] else { net.created += 1; continue }
            let (op, on) = old[e.identity]!, (np, nn) = new[e.identity]!
            if op != np || on != nn {
                if e.kind == "dir" { net.movedDirs += 1 } else { net.movedFiles += 1 }
            } else if e.kind == "file" && (o.size != e.size || o.mtime != e.mtime) {
                net.modifiedFiles += 1
            }
        }
        let afterIdentities = Set(after.map(\.identity))
        net.removed = before.filter { !afterIdentities.contains($0.identity) }.count
        return net
    }
}

/// A test double of the filesystem capability that passes every call to the real one: a
/// double implements only the calls it changes.
protocol PassThroughFileSystem: FileSystem {
    var real: PosixFileSystem { get }
}

extension PassThroughFileSystem {
    func openRoot(_ path: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle { try real.openRoot(path) }
    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        try real.openDirectory(parent, name)
    }
    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        try real.readDirectory(directory, body)
    }
    func stat(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> EntryStat { try real.stat(directory, name) }
    func stat(_ directory: DirectoryHandle) throws(Errno) -> EntryStat { try real.stat(directory) }
    func close(_ directory: DirectoryHandle) { real.close(directory) }
    func readFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8] { try real.readFile(directory, name) }
    func stat(atPath path: UnsafePointer<CChar>) throws(Errno) -> EntryStat { try real.stat(atPath: path) }
    func readFile(atPath path: UnsafePointer<CChar>) throws(Errno) -> [UInt8] { try real.readFile(atPath: path) }
}
