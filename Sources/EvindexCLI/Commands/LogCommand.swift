import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Print events from the log, oldest first.",
        discussion: """
            Each event: its sequence number, run, time, type and fields. Entry events name
            their path (resolved through the current index; an entry since removed shows its
            directory id). A record whose checksum fails stops the listing with an error
            naming its sequence number.

            Filters combine (an event is printed when it passes all of them):
              --type T[,T]    event types, case-insensitive (JobStarted, EntryCreated, ...)
              --path PREFIX   events concerning PREFIX or a path below it (as the current
                              index names them); lifecycle events of runs whose root
                              contains PREFIX or lies below it
              --from/--to     a sequence range (inclusive)
              --since/--until a time range (inclusive): 2026-11-30T05:00:00Z, 2026-11-30,
                              or milliseconds since the epoch

            --follow keeps reading the log after the last event, printing new events as a
            running `evindex run` commits them (it polls every 150 ms), until Ctrl-C or
            SIGTERM (exit 0) or --limit events were printed.

            Examples:
              evindex log --run 2 --limit 20
              evindex log --type EntryCreated,EntryRemoved --path ~/Photos
              evindex log --since 2026-11-30T05:00:00Z --json
              evindex log --follow --type NonCriticalError
            """
    )

    @Option(name: .customLong("run"), help: ArgumentHelp("Only events of this run.", valueName: "id"))
    var runID: UInt32?

    @Option(name: .customLong("type"), help: ArgumentHelp("Only events of these types (comma-separated, repeatable, any case).", valueName: "types"))
    var types: [String] = []

    @Option(name: .customLong("path"), help: ArgumentHelp("Only events concerning this path or paths below it.", valueName: "prefix"))
    var pathPrefix: String?

    @Option(name: .long, help: ArgumentHelp("Start at this sequence number.", valueName: "seq"))
    var from: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Stop after this sequence number.", valueName: "seq"))
    var to: UInt64?

    @Option(name: .long, help: ArgumentHelp("Only events at or after this time (ISO-8601 UTC or epoch ms).", valueName: "time"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Only events at or before this time (ISO-8601 UTC or epoch ms).", valueName: "time"))
    var until: String?

    @Option(name: .long, help: ArgumentHelp("Print at most this many events.", valueName: "n"))
    var limit: Int?

    @Flag(name: .long, help: "Keep printing new events as they are committed, until Ctrl-C.")
    var follow = false

    @Flag(name: .long, help: "One JSON object per event: seq, run, time_ms, type and the event's fields.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if let to, to < from { throw ValidationError("--to must not be below --from") }
        _ = try parsedTypes()
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, parseTime(value) == nil {
                throw ValidationError("\(name) \(value): not a time (2026-11-30T05:00:00Z, 2026-11-30 or milliseconds since the epoch)")
            }
        }
    }

    func parsedTypes() throws -> Set<EventType>? {
        var result = Set<EventType>()
        for list in types {
            for name in list.split(separator: ",") {
                let trimmed = name.trimmingSpaces
                guard let t = EventType(name: trimmed) else {
                    throw ValidationError("--type \(trimmed): not an event type (\(EventType.allCases.map(\.name).joined(separator: ", ")))")
                }
                result.insert(t)
            }
        }
        return result.isEmpty ? nil : result
    }

    func run() throws {
        let index = try ReadOnlyIndex(database)
        var filter = EventFilter(
            runID: runID, types: try parsedTypes(),
            pathPrefix: pathPrefix.map { absolutePath(rawArgument($0)) },
            sinceMs: since.flatMap(parseTime), untilMs: until.flatMap(parseTime))
        var out = Output()
        var paths = PathResolver()
        var printed = 0
        var next = from
        var end = to ?? UInt64.max
        let done = { (printed: Int) -> Bool in limit.map { printed >= $0 } ?? false }
        if follow { StopSignals.catchThem() }

        /// Prints the events from `next` on; false once the listing is over.
        func pass(_ snapshot: IndexSnapshot) throws -> Bool {
            var more = true
            do {
                try snapshot.forEachRecord(from: next, through: end) { record in
                    if done(printed) { more = false; return false }
                    next = record.sequence + 1
                    guard try filter.matches(record, snapshot, &paths) else { return true }
                    printed += 1
                    if json {
                        try out.object { try eventFields(&$0, record, snapshot, &paths) }
                    } else {
                        out.line(try eventLine(record, snapshot, &paths))
                    }
                    return true
                }
            } catch let error as DecodeError {
                out.flush()
                throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
            }
            return more && !done(printed) && next <= end
        }

        var going = try index.read { snapshot -> Bool in
            if let runID {
                let record = try index.run(snapshot, id: runID)
                next = max(next, record.firstSequence)
                // A run in flight (or one that may be resumed) goes on past its last
                // sequence: following it reads on.
                if !follow { end = min(end, record.lastSequence) }
            }
            return try pass(snapshot)
        }
        out.flush()
        guard follow else { return }
        while going && !StopSignals.isRaised {
            usleep(150_000)
            if StopSignals.isRaised { break }
            paths.forget()
            going = try index.read { try pass($0) }
            out.flush()
        }
        out.flush()
    }
}

/// Milliseconds since the epoch from `2026-11-30T05:00:00Z` (fraction and `Z` optional,
/// UTC), `2026-11-30`, or a number of milliseconds.
func parseTime(_ text: String) -> Int64? {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) { return Int64(text) }
    var s = Substring(text)
    if s.hasSuffix("Z") || s.hasSuffix("z") { s = s.dropLast() } else if s.hasSuffix("+00:00") { s = s.dropLast(6) }
    let dateAndTime = s.split(maxSplits: 1, whereSeparator: { $0 == "T" || $0 == "t" || $0 == " " })
    guard let date = dateAndTime.first else { return nil }
    let d = date.split(separator: "-", omittingEmptySubsequences: false)
    guard d.count == 3, let year = Int32(d[0]), let month = Int32(d[1]), let day = Int32(d[2]),
        (1...12).contains(month), (1...31).contains(day)
    else { return nil }
    var hour: Int32 = 0, minute: Int32 = 0, second: Int32 = 0
    var millis: Int64 = 0
    if dateAndTime.count == 2 {
        let t = dateAndTime[1].split(separator: ":", omittingEmptySubsequences: false)
        guard t.count == 2 || t.count == 3, let h = Int32(t[0]), let m = Int32(t[1]), (0...23).contains(h), (0...59).contains(m) else { return nil }
        hour = h; minute = m
        if t.count == 3 {
            let sec = t[2].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let sv = Int32(sec[0]), (0...60).contains(sv) else { return nil }
            second = sv
            if sec.count == 2 {
                let digits = String((sec[1] + "000").prefix(3))
                guard sec[1].allSatisfy({ $0.isASCII && $0.isNumber }), let ms = Int64(digits) else { return nil }
                millis = ms
            }
        }
    }
    var parts = tm()
    parts.tm_year = year - 1900; parts.tm_mon = month - 1; parts.tm_mday = day
    parts.tm_hour = hour; parts.tm_min = minute; parts.tm_sec = second
    return Int64(timegm(&parts)) * 1000 + millis
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
