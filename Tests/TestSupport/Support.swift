import Foundation
import Testing
import Traversal

/// Helpers shared by the suites: temporary directories, the mktree generator, the built
/// `evindex` binary and the `find` oracle.
public enum Support {
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let fixtures = repositoryRoot.appendingPathComponent("Fixtures")

    /// The `evindex` executable built next to the test bundle.
    public static var evindex: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent(), repositoryRoot.appendingPathComponent(".build/debug")] {
            let candidate = dir.appendingPathComponent("evindex").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repositoryRoot.appendingPathComponent(".build/debug/evindex").path
    }

    /// A fresh directory removed when `body` returns.
    public static func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
        var template = Array("/tmp/evindex-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        let path = String(cString: made)
        defer { _ = try? run(["/bin/rm", "-rf", path]) }
        return try body(path)
    }

    public struct Result {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
        public var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs a command to completion, capturing its output.
    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Result {
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
    public static func evindex(_ arguments: [String]) throws -> Result {
        try run([evindex] + arguments)
    }

    /// Starts `evindex run ROOT --db DB`, sends `signal` after `delay` seconds, returns
    /// the exit status (the run may have ended first).
    public static func interruptedRun(_ root: String, _ db: String, after delay: Double, signal: Int32) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: evindex)
        process.arguments = ["run", root, "--db", db]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Builds a tree with mktree.py; returns the summary it printed.
    @discardableResult
    public static func makeTree(_ dest: String, entries: Int, seed: Int) throws -> [String: Any] {
        let r = try run([
            "/usr/bin/env", "python3", fixtures.appendingPathComponent("mktree.py").path, dest,
            "--entries", String(entries), "--seed", String(seed),
        ])
        #expect(r.status == 0, "mktree failed: \(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
    }

    /// Parses NDJSON output.
    public static func objects(_ data: Data) throws -> [[String: Any]] {
        try data.split(separator: UInt8(ascii: "\n")).map { line in
            try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
        }
    }

    /// The exact bytes of a path in evindex JSON: `path_b64` when present, else `path`.
    public static func pathBytes(_ object: [String: Any], key: String = "path") -> [UInt8] {
        if let b64 = object[key + "_b64"] as? String, let data = Data(base64Encoded: b64) { return Array(data) }
        return Array((object[key] as! String).utf8)
    }
}

public final class LockedData: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    public func set(_ d: Data) { lock.lock(); data = d; done = true; lock.unlock() }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
    public var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}
