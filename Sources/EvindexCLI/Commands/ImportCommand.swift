import ArgumentParser
import Events
import EventStore
import History
import Indexing
import Projections
import Traversal
#if canImport(Glibc)
import Glibc
#endif

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append a run written by `evindex export` to a database, as a new run.",
        discussion: """
            The run gets the next run id, new sequence numbers and new directory ids; its
            events keep their times. When the export carries a base (the index below the
            root before the run), it is written first as a run of its own, so the imported
            run's index equals the exported one's. The root must not be indexed in this
            database (nor a directory above or below it). The database is created if
            missing. An imported run that was unfinished is marked abandoned: it is never
            resumed here.

            Examples:
              evindex import run3.ndjson --db /tmp/theirs
              evindex diff --logs ~/.local/share/evindex /tmp/theirs 3 2
            """
    )

    @Argument(help: ArgumentHelp("The export file, or - for standard input.", valueName: "file"))
    var file: String

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let exported = try readExport()
        try EventLog.prepareDirectory(database.directory)
        let lock = try WriterLock(directory: database.directory, holder: "pid \(getpid()), importing")
        defer { _ = lock }
        let log = try EventLog(directory: database.directory, create: true)
        try SchemaUpgrade.upgradeIfNeeded(log)
        var version = "0.1.0"
        for r in exported.events { if case let .jobStarted(_, _, _, v) = r.event { version = v; break } }
        let result: RunImport.Result
        do {
            result = try RunImport.append(exported, log: log, version: version)
        } catch let error as HistoryError {
            if let (root, indexed) = error.overlap {
                throw CommandFailure(message: "\(displayPath(root)) overlaps the indexed root \(displayPath(indexed)) in \(database.directory); import into a database that does not index it")
            }
            throw CommandFailure(message: error.message)
        }
        var out = Output()
        if json {
            var o = JSONObject()
            o.add("run", result.run)
            o.add("source_run", exported.run.id)
            if let b = result.baseRun { o.add("base_run", b) }
            o.add("base_entries", result.baseEntries)
            o.add("events", exported.events.count)
            o.add("first_seq", result.firstSequence)
            o.add("last_seq", result.lastSequence)
            out.line(o.json)
        } else {
            let base = result.baseRun.map { "; its base (\(result.baseEntries) entries) as run \($0)" } ?? ""
            out.line("imported run \(exported.run.id) of \(displayPath(exported.run.root)) as run \(result.run): \(exported.events.count) events, \(result.firstSequence)-\(result.lastSequence)\(base)")
        }
        out.flush()
    }

    /// Reads and checks the whole export before anything is written.
    func readExport() throws -> ExportedRun {
        let bytes = try readAll()
        var run: RunRecord?
        var base: [ExportedRun.BaseEntry] = []
        var events: [EventRecord] = []
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 10) ?? bytes.count
            lineNumber += 1
            let line = Array(bytes[start..<end])
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
            do {
                let value = try JSONReader.parse(line)
                if run == nil {
                    guard value["evindex_export"] == .number("1") else {
                        throw ImportFormatError("not an evindex export (line 1 has no \"evindex_export\":1)")
                    }
                    run = try runRecord(value)
                } else if value["base"] == .bool(true) {
                    if value["rule"] != nil {
                        base.append(.rejected(parent: try uint(value, "parent"), name: try path(value, "name"), rule: try string(value, "rule")))
                    } else {
                        base.append(ExportedRun.BaseEntry(parent: try uint(value, "parent"), name: try path(value, "name"),
                                                          metadata: try metadata(value, "")))
                    }
                } else {
                    events.append(try eventRecord(value))
                }
            } catch let error as JSONSyntaxError {
                throw CommandFailure(message: "\(displayFile): line \(lineNumber): \(error)")
            } catch let error as ImportFormatError {
                throw CommandFailure(message: "\(displayFile): line \(lineNumber): \(error.message)")
            }
        }
        guard let run else { throw CommandFailure(message: "\(displayFile) is empty: not an evindex export") }
        return ExportedRun(run: run, base: base, events: events)
    }

    var displayFile: String { file == "-" ? "standard input" : file }

    func readAll() throws -> [UInt8] {
        let fd: Int32 = file == "-" ? 0 : (rawArgument(file) + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY | O_CLOEXEC) }
        }
        if fd < 0 { throw CommandFailure(message: "cannot read \(file): \(String(cString: strerror(errno)))") }
        defer { if fd != 0 { close(fd) } }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            do throws(Errno) {
                n = try retryingOnInterrupt { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) } }
            } catch {
                throw CommandFailure(message: "cannot read \(file): \(error)")
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<n])
        }
    }
}

struct ImportFormatError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

// MARK: - Fields of an export

private func field(_ v: JSONValue, _ key: String) throws -> JSONValue {
    guard let f = v[key] else { throw ImportFormatError("missing field \"\(key)\"") }
    return f
}

private func uint(_ v: JSONValue, _ key: String) throws -> UInt64 {
    guard case let .number(n) = try field(v, key), let value = UInt64(n) else { throw ImportFormatError("\"\(key)\" is not an unsigned integer") }
    return value
}

private func int(_ v: JSONValue, _ key: String) throws -> Int64 {
    guard case let .number(n) = try field(v, key), let value = Int64(n) else { throw ImportFormatError("\"\(key)\" is not an integer") }
    return value
}

private func uint32(_ v: JSONValue, _ key: String) throws -> UInt32 {
    guard let value = UInt32(exactly: try uint(v, key)) else { throw ImportFormatError("\"\(key)\" does not fit in 32 bits") }
    return value
}

private func string(_ v: JSONValue, _ key: String) throws -> String {
    guard case let .string(s) = try field(v, key) else { throw ImportFormatError("\"\(key)\" is not a string") }
    return s
}

/// A path or name: the exact bytes of `key_b64` when present, else the UTF-8 of `key`.
private func path(_ v: JSONValue, _ key: String) throws -> [UInt8] {
    if case let .string(b64)? = v[key + "_b64"] {
        guard let bytes = decodeBase64(b64) else { throw ImportFormatError("\"\(key)_b64\" is not base64") }
        return bytes
    }
    return Array(try string(v, key).utf8)
}

private func metadata(_ v: JSONValue, _ prefix: String) throws -> EntryMetadata {
    let kindName = try string(v, prefix + "kind")
    guard let kind = EntryKind.allCases.first(where: { $0.name == kindName }) else {
        throw ImportFormatError("\"\(prefix)kind\" \(kindName) is not a kind")
    }
    return EntryMetadata(kind: kind, mode: try uint32(v, prefix + "mode"), inode: try uint(v, prefix + "inode"),
                         device: try uint(v, prefix + "dev"), size: try uint(v, prefix + "size"),
                         mtimeNs: try int(v, prefix + "mtime_ns"), ctimeNs: try int(v, prefix + "ctime_ns"),
                         btimeNs: try int(v, prefix + "btime_ns"),
                         dirID: kind == .directory ? try uint(v, prefix + "dir_id") : 0)
}

private func counts(_ v: JSONValue) throws -> RunCounts {
    var c = RunCounts()
    c.directories = try uint(v, "dirs"); c.files = try uint(v, "files"); c.symlinks = try uint(v, "symlinks")
    c.others = try uint(v, "others"); c.bytes = try uint(v, "bytes"); c.errors = try uint(v, "errors")
    c.created = try uint(v, "created"); c.updated = try uint(v, "updated"); c.removed = try uint(v, "removed")
    c.moved = try uint(v, "moved")
    return c
}

private func runRecord(_ v: JSONValue) throws -> RunRecord {
    let statusName = try string(v, "status")
    let statuses: [RunRecord.Status] = [.running, .completed, .failed, .paused, .abandoned]
    guard let status = statuses.first(where: { $0.name == statusName }) else { throw ImportFormatError("unknown status \(statusName)") }
    var r = RunRecord(id: try uint32(v, "run"), root: try path(v, "root"), rootDirID: try uint(v, "root_dir_id"), status: status,
                      firstSequence: try uint(v, "first_seq"), lastSequence: try uint(v, "last_seq"),
                      startedMs: try int(v, "started_ms"), endedMs: try int(v, "ended_ms"), counts: try counts(v),
                      message: v["message"] == nil ? "" : try string(v, "message"))
    r.isFirstIndex = v["first_index"] == .bool(true)
    return r
}

private func eventRecord(_ v: JSONValue) throws -> EventRecord {
    let typeName = try string(v, "type")
    guard let type = EventType(name: typeName) else { throw ImportFormatError("unknown event type \(typeName)") }
    let event: Event
    switch type {
    case .jobStarted:
        event = .jobStarted(root: try path(v, "root"), rootDirID: try uint(v, "root_dir_id"), options: try string(v, "options"),
                            version: try string(v, "version"))
    case .jobPaused: event = .jobPaused(reason: try string(v, "reason"))
    case .jobResumed: event = .jobResumed
    case .jobCompleted: event = .jobCompleted(try counts(v))
    case .jobFailed: event = .jobFailed(message: try string(v, "message"))
    case .snapshotTaken: event = .snapshotTaken(entries: try uint(v, "entries"))
    case .directoryListed: event = .directoryListed(dirID: try uint(v, "dir_id"), children: try uint(v, "children"))
    case .pathRejected: event = .pathRejected(parent: try uint(v, "parent"), name: try path(v, "name"), rule: try string(v, "rule"))
    case .entryCreated: event = .entryCreated(parent: try uint(v, "parent"), name: try path(v, "name"), try metadata(v, ""))
    case .entryUpdated:
        event = .entryUpdated(parent: try uint(v, "parent"), name: try path(v, "name"), old: try metadata(v, "old_"), new: try metadata(v, ""))
    case .entryRemoved: event = .entryRemoved(parent: try uint(v, "parent"), name: try path(v, "name"))
    case .entryMoved:
        event = .entryMoved(fromParent: try uint(v, "from_parent"), fromName: try path(v, "from_name"),
                            toParent: try uint(v, "parent"), toName: try path(v, "name"), try metadata(v, ""))
    case .nonCriticalError:
        let opName = try string(v, "operation")
        guard let op = FileOperation.allCases.first(where: { $0.name == opName }) else { throw ImportFormatError("unknown operation \(opName)") }
        guard let errno = Int32(exactly: try int(v, "errno")) else { throw ImportFormatError("\"errno\" does not fit in 32 bits") }
        event = .nonCriticalError(parent: try uint(v, "parent"), name: try path(v, "name"), errno: errno, operation: op)
    }
    return EventRecord(sequence: try uint(v, "seq"), run: try uint32(v, "run"), timeMs: try int(v, "time_ms"), event: event)
}
