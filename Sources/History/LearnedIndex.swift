import EventStore
import Events
internal import LMDB
import Projections

#if canImport(Glibc)
    import Glibc
#endif

/// The index as it stood just after one sequence of a log: what a run "learned".
///
/// Rule: the cheapest set of views that equals the fold of the log through `through` is
/// used. First the live views, when their last folded sequence is `through` (the run is
/// the latest one); then the `replay.*` views, when an earlier `evindex replay --to`
/// stopped exactly there; otherwise the log is folded from sequence 1 into a scratch LMDB
/// environment in a temporary directory, with the same `ViewFold` the writer uses.
/// Motivation: `diff` must not write into the database it reads (a run may be writing),
/// and the fold is the definition of the index, so no second implementation of it exists.
public final class LearnedIndex {
    /// Where the views came from.
    public enum Source: Sendable, Equatable {
        case live
        case replayed
        /// Folded into scratch views: this many events.
        case folded(events: UInt64)
    }

    public let views: Views
    public let source: Source
    /// The last sequence folded into `views`.
    public let lastSequence: UInt64
    /// Reads the learned views beside `log`, the log they were folded from.
    public func reader(log: EventLog) -> IndexReader { IndexReader(log: log, views: views) }

    /// Keeps a scratch environment open while the views are used.
    private let scratch: Environment?

    private init(views: Views, source: Source, lastSequence: UInt64, scratch: Environment?) {
        self.views = views; self.source = source; self.lastSequence = lastSequence; self.scratch = scratch
    }

    /// The index of `log` as of sequence `through`.
    ///
    /// - Parameter live: the database's live views.
    /// - Parameter scratchParent: the directory for a scratch environment (its files are
    ///   unlinked at once, so nothing is left behind even after a crash).
    /// - Throws: `DecodeError` for a corrupt record, `LMDBError`.
    public static func at(_ through: UInt64, log: EventLog, live: Views, scratchParent: String = defaultScratchParent) throws -> LearnedIndex {
        if try log.environment.read({ try live.lastSequence($0) }) == through {
            return LearnedIndex(views: live, source: .live, lastSequence: through, scratch: nil)
        }
        if let replayed = try? Views(environment: log.environment, prefix: Views.replayPrefix, create: false),
            try log.environment.read({ try replayed.lastSequence($0) }) == through
        {
            return LearnedIndex(views: replayed, source: .replayed, lastSequence: through, scratch: nil)
        }
        let environment = try scratchEnvironment(in: scratchParent)
        let views = try Views(environment: environment, logEnvironment: log.environment, nameIndex: false)
        let events = try fold(log: log, into: views, through: through)
        return LearnedIndex(views: views, source: .folded(events: events), lastSequence: through, scratch: environment)
    }

    /// `$TMPDIR`, else `/tmp`.
    public static var defaultScratchParent: String {
        if let t = getenv("TMPDIR"), t[0] != 0 { return String(cString: t) }
        return "/tmp"
    }

    /// A fresh LMDB environment whose files are already unlinked: it lives as long as the
    /// process holds it open.
    static func scratchEnvironment(in parent: String) throws -> Environment {
        var template = Array((parent + "/evindex-scratch-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw HistoryError("cannot make a scratch directory in \(parent): \(String(cString: strerror(errno)))")
        }
        let path = String(cString: made)
        var options = Environment.Options()
        options.noSync = true
        let environment: Environment
        do {
            environment = try Environment(path: path, options: options)
        } catch {
            rmdir(path)
            throw error
        }
        unlink(path + "/data.mdb")
        unlink(path + "/lock.mdb")
        rmdir(path)
        return environment
    }

    /// Folds `log` from sequence 1 through `through` into empty `target` views, 200,000
    /// events per write transaction. Returns how many events were folded.
    static func fold(log: EventLog, into target: Views, through: UInt64) throws -> UInt64 {
        // Scratch views are read by path, never rescanned: no inode index to keep.
        let fold = ViewFold(views: target, keepsDirectoryInodes: false, keepsHistory: false)
        return try log.environment.read { source in
            try fold.foldInChunks(
                from: 1, through: through,
                forEachItem: { _, from, to, body in
                    try log.forEach(source, from: from, through: to, body)
                },
                afterCommit: {
                    // Each chunk reads on in the log and writes new pages: what was read stays
                    // in the page cache, not in this process.
                    log.environment.releaseMappedPages()
                    target.environment.releaseMappedPages()
                }
            ).events
        }
    }
}

/// A failure of a history command, in one line.
public struct HistoryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// For an import refused because the root is indexed: the two paths, as bytes.
    public var overlap: (root: [UInt8], indexed: [UInt8])?
    public init(_ message: String, overlap: (root: [UInt8], indexed: [UInt8])? = nil) {
        self.message = message; self.overlap = overlap
    }
    public var description: String { message }
}
