import EventStore
import Events
import History
import Projections

/// Why an export could not be read: the line (nil for an empty input) and what is wrong.
public struct ExportFormatError: Error, Sendable {
    public var line: Int?
    public var message: String
}

/// The NDJSON of `evindex export` and `evindex import` (CLI.md, "evindex export"): a header
/// line (`"evindex_export":1`, the run's row), the base's lines (`"base":true`: the index
/// below the root before the run, entries and rejections), then the run's events as
/// `log --json` prints them, without resolved paths.
///
/// Rule: an export stands alone. Every field a database needs to append the run is in
/// it, names as their exact bytes (`name_b64` when not UTF-8), numbers exact (64 bits),
/// and nothing in it depends on the exporting database's current index.
public enum ExportFormat {
    /// The header line.
    public static func header(_ r: RunRecord, baseEntries: Int) -> String {
        var o = JSONObject()
        o.add("evindex_export", 1)
        runFields(&o, r)
        o.add("root_dir_id", r.rootDirID)
        o.add("first_index", r.isFirstIndex)
        o.add("base_entries", baseEntries)
        return o.json
    }

    /// One entry or rejection of the base.
    public static func base(_ entry: ExportedRun.BaseEntry) -> String {
        var o = JSONObject()
        o.add("base", true)
        o.add("parent", entry.parent)
        o.addPath("name", entry.name)
        if let rule = entry.rule { o.addPath("rule", rule) } else { metadataFields(&o, "", entry.metadata) }
        return o.json
    }

    /// The last line: how many base and event lines came before it, and the CRC-32C of
    /// every byte before it (its own line excluded), so a file cut short at a line
    /// boundary, or altered, is refused instead of imported as a shorter run.
    public static func trailer(baseEntries: Int, events: Int, checksum: UInt32) -> String {
        var o = JSONObject()
        o.add("evindex_export_end", 1)
        o.add("base_entries", baseEntries)
        o.add("events", events)
        o.add("crc32c", hex8(checksum))
        return o.json
    }

    static func hex8(_ v: UInt32) -> String { fixedWidthHex(v) }

    /// One event of the run.
    public static func event(_ record: EventRecord) -> String {
        var noPaths = PathResolver(enabled: false)
        // Without a snapshot nothing is resolved, so nothing can throw.
        return (try? eventJSON(record, nil, &noPaths)) ?? ""
    }

    /// Reads a whole export, checking every line before anything is written.
    public static func decode(_ bytes: [UInt8]) throws(ExportFormatError) -> ExportedRun {
        do {
            return try decodeLines(bytes)
        } catch let error as ExportFormatError {
            throw error
        } catch {
            throw ExportFormatError(line: nil, message: "\(error)")
        }
    }

    private static func decodeLines(_ bytes: [UInt8]) throws -> ExportedRun {
        var run: RunRecord?
        var declaredBase: UInt64 = 0
        var base: [ExportedRun.BaseEntry] = []
        var events: [EventRecord] = []
        var lines = ExportLines()
        var trailer: (line: Int, base: UInt64, events: UInt64, checksum: String)?
        var checksum: UInt32 = 0
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 10) ?? bytes.count
            lineNumber += 1
            let line = Array(bytes[start..<end])
            let next = min(end + 1, bytes.count)
            defer {
                if trailer == nil { checksum = bytes[start..<next].withUnsafeBytes { CRC32C.update(checksum, $0) } }
                start = next
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
            do {
                if let trailer { throw ImportFormatError("a line after the export's last line (line \(trailer.line))") }
                let value = try JSONReader.parse(line)
                if run == nil {
                    guard value["evindex_export"] == .number("1") else {
                        throw ImportFormatError("not an evindex export (line 1 has no \"evindex_export\":1)")
                    }
                    run = try runRecord(value)
                    try ExportCheck.root(run!.root)
                    declaredBase = try uint(value, "base_entries")
                } else if value["evindex_export_end"] != nil {
                    guard value["evindex_export_end"] == .number("1") else { throw ImportFormatError("an export end of another version") }
                    trailer = (lineNumber, try uint(value, "base_entries"), try uint(value, "events"), try string(value, "crc32c"))
                } else if value["base"] == .bool(true) {
                    let name = try path(value, "name")
                    try ExportCheck.name(name)
                    if value["rule"] != nil {
                        base.append(.rejected(parent: try uint(value, "parent"), name: name, rule: try path(value, "rule")))
                    } else {
                        base.append(ExportedRun.BaseEntry(parent: try uint(value, "parent"), name: name, metadata: try metadata(value, "")))
                    }
                    lines.base.append(lineNumber)
                } else {
                    let record = try eventRecord(value)
                    try ExportCheck.namesAndRoot(record.event)
                    events.append(record)
                    lines.events.append(lineNumber)
                }
            } catch let error as JSONSyntaxError {
                throw ExportFormatError(line: lineNumber, message: "\(error)")
            } catch let error as ImportFormatError {
                throw ExportFormatError(line: lineNumber, message: error.message)
            } catch {
                throw ExportFormatError(line: lineNumber, message: "\(error)")
            }
        }
        guard let run else { throw ExportFormatError(line: nil, message: "empty: not an evindex export") }
        guard let trailer else {
            throw ExportFormatError(
                line: lineNumber,
                message: "the export ends here without its last line (\"evindex_export_end\"): it was cut short (or written before exports had one)")
        }
        guard trailer.base == UInt64(base.count), trailer.events == UInt64(events.count) else {
            throw ExportFormatError(
                line: trailer.line,
                message:
                    "the export says it holds \(trailer.base) base lines and \(trailer.events) events, it holds \(base.count) and \(events.count)")
        }
        guard declaredBase == UInt64(base.count) else {
            throw ExportFormatError(line: 1, message: "the header says \(declaredBase) base lines, the export holds \(base.count)")
        }
        guard trailer.checksum == hex8(checksum) else {
            throw ExportFormatError(
                line: trailer.line,
                message: "the lines before this one have CRC-32C \(hex8(checksum)), the export says \(trailer.checksum): it was altered")
        }
        let exported = ExportedRun(run: run, base: base, events: events)
        if let (line, message) = ExportCheck.parents(exported, lines) { throw ExportFormatError(line: line, message: message) }
        return exported
    }
}

/// A field of a line that is missing or of the wrong type.
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
    return EntryMetadata(
        kind: kind, mode: try uint32(v, prefix + "mode"), inode: try uint(v, prefix + "inode"),
        device: try uint(v, prefix + "dev"), size: try uint(v, prefix + "size"),
        mtimeNs: try int(v, prefix + "mtime_ns"), ctimeNs: try int(v, prefix + "ctime_ns"),
        btimeNs: try int(v, prefix + "btime_ns"),
        dirID: kind == .directory && !prefix.hasPrefix("root") ? try uint(v, prefix + "dir_id") : 0,
        // Written since schema 3: an older export has none, as an older log.
        blocks: v[prefix + "nlink"] == nil ? 0 : try uint(v, prefix + "blocks"),
        nlink: v[prefix + "nlink"] == nil ? 0 : try uint32(v, prefix + "nlink"),
        uid: v[prefix + "nlink"] == nil ? 0 : try uint32(v, prefix + "uid"),
        gid: v[prefix + "nlink"] == nil ? 0 : try uint32(v, prefix + "gid"))
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
    var r = RunRecord(
        id: try uint32(v, "run"), root: try path(v, "root"), rootDirID: try uint(v, "root_dir_id"), status: status,
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
        event = .jobStarted(
            root: try path(v, "root"), rootDirID: try uint(v, "root_dir_id"), options: try string(v, "options"),
            version: try string(v, "version"), rootMetadata: v["root_kind"] == nil ? nil : try metadata(v, "root_"))
    case .jobPaused: event = .jobPaused(reason: try string(v, "reason"))
    case .jobResumed: event = .jobResumed
    case .jobCompleted: event = .jobCompleted(try counts(v))
    case .jobFailed: event = .jobFailed(message: try string(v, "message"))
    case .snapshotTaken: event = .snapshotTaken(entries: try uint(v, "entries"))
    case .directoryListed: event = .directoryListed(dirID: try uint(v, "dir_id"), children: try uint(v, "children"))
    case .pathRejected: event = .pathRejected(parent: try uint(v, "parent"), name: try path(v, "name"), rule: try path(v, "rule"))
    case .entryCreated: event = .entryCreated(parent: try uint(v, "parent"), name: try path(v, "name"), try metadata(v, ""))
    case .entryUpdated:
        event = .entryUpdated(parent: try uint(v, "parent"), name: try path(v, "name"), old: try metadata(v, "old_"), new: try metadata(v, ""))
    case .entryRemoved: event = .entryRemoved(parent: try uint(v, "parent"), name: try path(v, "name"))
    case .entryMoved:
        event = .entryMoved(
            fromParent: try uint(v, "from_parent"), fromName: try path(v, "from_name"),
            toParent: try uint(v, "parent"), toName: try path(v, "name"), try metadata(v, ""))
    case .nonCriticalError:
        let opName = try string(v, "operation")
        guard let op = FileOperation.allCases.first(where: { $0.name == opName }) else { throw ImportFormatError("unknown operation \(opName)") }
        guard let errno = Int32(exactly: try int(v, "errno")) else { throw ImportFormatError("\"errno\" does not fit in 32 bits") }
        event = .nonCriticalError(parent: try uint(v, "parent"), name: try path(v, "name"), errno: errno, operation: op)
    }
    return EventRecord(sequence: try uint(v, "seq"), run: try uint32(v, "run"), timeMs: try int(v, "time_ms"), event: event)
}
