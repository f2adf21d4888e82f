import ArgumentParser
import EventStore
import Events
import Indexing
import Projections

#if canImport(Glibc)
    import Glibc
#endif

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every record's checksum, and the file-path and directory-size views against a replay of the log.",
        discussion: """
            First reads data.mdb page by page as LMDB will trust it (both meta pages,
            every tree's pages, nodes, key order and counts, the free list), then reads
            the whole log, checking each block's CRC-32C and schema version and
            decoding every event, then rebuilds the views from the log (as `replay
            --verify` does) and compares them with the live ones, and checks that the
            views hold together (every directory entry has its row, every row sits in its
            parent's listing, every directory's totals add up). Exits 0 when all is sound,
            1 naming the first bad record, the first differing entry or the first broken
            invariant.

            Examples:
              evindex verify --db /var/lib/evindex
              evindex verify
            """
    )

    @Flag(help: "One JSON object on stdout: sound, and the counts or the problem.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        do {
            try check()
        } catch {
            // A script reads the verdict from stdout; the one line still goes to stderr.
            if json, let failure = Evindex.failure(error, databaseDirectory: database.directory) {
                var out = Output()
                out.object {
                    $0.add("sound", false)
                    $0.add("problem", failure.message)
                }
                out.flush()
            }
            throw error
        }
    }

    private func check() throws {
        var pages: DatabaseStructure.Summary?
        // Before LMDB maps it: a damaged page would make LMDB read past the file.
        let (log, lock) = try database.openLocked(doing: "verifying") { pages = try DatabaseStructure.check(directory: database.directory) }
        defer { withExtendedLifetime(lock) {} }
        let verification: Replay.Verification
        do {
            verification = try Replay.verify(log: log)
        } catch let error as DecodeError {
            throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
        }
        if let mismatch = verification.runs {
            throw CommandFailure(message: "the runs table differs from the log: \(mismatch)", exitCode: 1)
        }
        if let difference = verification.difference {
            throw CommandFailure(message: "the views differ from a replay of the log: first at \(difference)", exitCode: 1)
        }
        if let problem = verification.inconsistency {
            throw CommandFailure(message: "the views equal a replay of the log but do not hold together: \(problem)", exitCode: 1)
        }
        let summary = pages ?? DatabaseStructure.Summary(pages: 0, freePages: 0)
        var out = Output()
        if json {
            out.object {
                $0.add("sound", true)
                $0.add("pages", summary.pages)
                $0.add("free_pages", summary.freePages)
                $0.add("events", verification.events)
                $0.add("runs", verification.runCount)
                $0.add("replayed_events", verification.replayed.events)
            }
        } else {
            out.line(
                "\(counted(summary.pages, "page")) (\(summary.freePages) free), every one sound; \(counted(verification.events, "event")), every checksum sound; \(counted(verification.runCount, "run")) as the log says; the views equal a replay of \(counted(verification.replayed.events, "event")) and hold together"
            )
        }
        out.flush()
    }
}
