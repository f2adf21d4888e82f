import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Projections

#if canImport(Glibc)
    import Glibc
#endif

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild the views from the event log alone and compare them with the live ones.",
        discussion: """
            Folds the log into a second set of views kept in the same database (named
            replay.*), then prints the digest of the live and the replayed views and how
            many events per second were folded. By default it starts from the snapshot an
            earlier replay left there (when that is not past --to) and folds only the
            events after it; --from-scratch starts from empty views and sequence 1. With
            --verify, exits 1 naming the first entry where they differ, or the first
            broken invariant of the views (a directory entry without its row, a row
            outside its parent's listing, totals that do not add up): a replay repeats
            whatever the log says, so it cannot see those. With --to SEQ, the replayed
            views are those just after event SEQ; `ls --replayed` and `du --replayed` read
            them.

            Examples:
              evindex replay --verify
              evindex replay --to 5000
            """
    )

    @Option(name: .long, help: ArgumentHelp("Replay through this sequence number (default: the whole log).", valueName: "seq"))
    var to: UInt64?

    @Flag(name: .long, help: "Exit 1, naming the first difference, if the replayed views differ from the live ones or do not hold together.")
    var verify = false

    @Flag(name: .long, help: "Fold the whole log from sequence 1, ignoring the snapshot an earlier replay left.")
    var fromScratch = false

    @Flag(name: .long, help: "Start from the snapshot an earlier replay left (the default).")
    var fromSnapshot = false

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if verify && to != nil { throw ValidationError("--verify compares with the live views, which are as of the end of the log: drop --to") }
        if fromScratch && fromSnapshot { throw ValidationError("--from-scratch and --from-snapshot exclude each other") }
    }

    func run() throws {
        let (log, lock) = try database.openLocked(doing: "replaying")
        defer { withExtendedLifetime(lock) {} }
        let comparison: Replay.Comparison
        do {
            comparison = try Replay.compare(log: log, through: to ?? .max, fromSnapshot: !fromScratch, verify: verify)
        } catch let error as DecodeError {
            throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
        }
        let (result, liveDigest, replayDigest) = (comparison.result, comparison.liveDigest, comparison.replayedDigest)
        let (difference, inconsistency) = (comparison.difference, comparison.inconsistency)
        var out = Output()
        if json {
            var o = JSONObject()
            o.add("from", result.startedAfter == 0 ? "scratch" : "snapshot")
            o.add("snapshot_seq", result.startedAfter)
            o.add("events", result.events)
            o.add("last_seq", result.lastSequence)
            o.addRaw("seconds", format3(result.seconds))
            o.add("events_per_second", UInt64(result.eventsPerSecond))
            o.add("live_entries_digest", hex16(liveDigest.entries))
            o.add("live_dirs_digest", hex16(liveDigest.directories))
            o.add("replay_entries_digest", hex16(replayDigest.entries))
            o.add("replay_dirs_digest", hex16(replayDigest.directories))
            if verify { o.add("equal", difference == nil) }
            if let difference { o.add("first_difference", difference) }
            if verify { o.add("consistent", inconsistency == nil) }
            if let inconsistency { o.add("first_inconsistency", inconsistency) }
            out.line(o.json)
        } else {
            let origin = result.startedAfter == 0 ? "from scratch" : "from the snapshot at \(result.startedAfter)"
            out.line(
                "replayed \(counted(result.events, "event")) \(origin) (through \(result.lastSequence)) in \(format3(result.seconds)) s: \(UInt64(result.eventsPerSecond)) events/s"
            )
            out.line("live:     \(liveDigest)")
            out.line("replayed: \(replayDigest)")
            if verify && difference == nil { out.line("the replayed views equal the live ones") }
            if verify && difference == nil && inconsistency == nil { out.line("the views hold together") }
        }
        out.flush()
        if let difference {
            throw CommandFailure(message: "the replayed views differ from the live ones: first at \(difference)", exitCode: 1)
        }
        if let inconsistency {
            throw CommandFailure(message: "the views equal a replay of the log but do not hold together: \(inconsistency)", exitCode: 1)
        }
    }
}

func hex16(_ v: UInt64) -> String { fixedWidthHex(v) }
