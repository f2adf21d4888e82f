import ArgumentParser
import EventStore
import Events
import Indexing
import LMDB
import Projections
#if canImport(Glibc)
import Glibc
#endif

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every record's checksum, and the file-path and directory-size views against a replay of the log.",
        discussion: """
            Reads the whole log, checking each block's CRC-32C and schema version and decoding every event, then
            rebuilds the views from the log (as `replay --verify` does) and compares them
            with the live ones, and checks that the views hold together (every directory entry
            has its row, every row sits in its parent's listing, every directory's totals add
            up). Exits 0 when all is sound, 1 naming the first bad record, the first differing
            entry or the first broken invariant.

            Examples:
              evindex verify --db /var/lib/evindex
              evindex verify
            """
    )

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let (log, lock) = try database.openLocked(doing: "verifying")
        defer { withExtendedLifetime(lock) {} }
        var checked: UInt64 = 0
        do {
            try log.environment.read { txn in
                // Every event decoded, not only the checksums: a block is read as a whole.
                try log.forEachItem(txn) { _, _, _, _ in
                    checked += 1
                    return true
                }
            }
        } catch let error as DecodeError {
            throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
        }
        let live = try Views(environment: log.environment, create: false)
        let replayed = try Views(environment: log.environment, prefix: Replay.prefix, create: true)
        let result = try Replay.rebuild(log: log, into: replayed)
        let difference = try log.environment.read { txn in try live.firstDifference(txn, from: replayed) }
        if let difference {
            throw CommandFailure(message: "the views differ from a replay of the log: first at \(difference)", exitCode: 1)
        }
        // A replay repeats whatever the log says: views a run would refuse can equal it.
        if let problem = try log.environment.read({ txn in try live.firstInconsistency(txn) }) {
            throw CommandFailure(message: "the views equal a replay of the log but do not hold together: \(problem)", exitCode: 1)
        }
        var out = Output()
        out.line("\(checked) events, every checksum sound; the views equal a replay of \(result.events) events and hold together")
        out.flush()
    }
}
