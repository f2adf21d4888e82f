import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Search
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
            their path (resolved through the current index; an entry since removed shows
            its directory id). A record whose checksum fails stops the listing with an
            error naming its sequence number.

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
            SIGTERM (exit 0) or --limit events were printed; with --run, also once that
            run has completed or been abandoned (a paused or failed run may be resumed).

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

        /// A run in flight (or one that may be resumed) goes on past its last sequence:
        /// following it reads on until it completes or is abandoned.
        func bound(_ snapshot: IndexSnapshot) throws {
            guard let runID else { return }
            let record = try index.run(snapshot, id: runID)
            next = max(next, record.firstSequence)
            if !follow || record.status == .completed || record.status == .abandoned { end = min(end, record.lastSequence) }
        }
        var going = try index.read { snapshot -> Bool in
            try bound(snapshot)
            return try pass(snapshot)
        }
        out.flush()
        guard follow else { return }
        while going && !StopSignals.isRaised {
            usleep(150_000)
            if StopSignals.isRaised { break }
            paths.forget()
            going = try index.read { snapshot -> Bool in
                try bound(snapshot)
                return try pass(snapshot)
            }
            out.flush()
        }
        out.flush()
    }
}

/// Milliseconds since the epoch: a number of milliseconds, or a date `TimeFilter` reads.
func parseTime(_ text: String) -> Int64? {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) { return Int64(text) }
    return TimeFilter.parseDate(text)
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
