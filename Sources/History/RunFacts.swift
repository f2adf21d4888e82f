import EventStore
import Events
internal import LMDB
import Projections

/// What a run said about itself in its own events, besides the entries it indexed: its
/// root, options (its rules), version, non-critical errors, rejections, pauses, resumes
/// and snapshots.
public struct RunFacts: Sendable {
    public struct Failure: Sendable, Hashable {
        public var sequence: UInt64
        public var parent: UInt64
        public var name: [UInt8]
        public var errno: Int32
        public var operation: FileOperation
    }

    public struct Rejection: Sendable, Hashable {
        public var sequence: UInt64
        public var parent: UInt64
        public var name: [UInt8]
        public var rule: [UInt8]
    }

    public var run: RunRecord
    /// The last sequence of the run considered (`A@SEQ`, else the run's last).
    public var through: UInt64
    public var root: [UInt8]
    public var rootDirID: UInt64
    public var options: String = ""
    public var version: String = ""
    public var errors: [Failure] = []
    public var rejections: [Rejection] = []
    /// How many events of each type the run wrote (through `through`).
    public var eventsByType: [EventType: Int] = [:]
    /// The sequences of its `JobPaused` and `JobResumed` events.
    public var pauses: [UInt64] = [], resumes: [UInt64] = []
    /// Its `SnapshotTaken` events: sequence and the entries the snapshot held.
    public var snapshots: [(sequence: UInt64, entries: UInt64)] = []

    /// Reads the run's own events from its first sequence through `through`. Entries are
    /// only counted: their names are never copied out of the log.
    public static func read(_ snapshot: IndexSnapshot, run: RunRecord, through: UInt64) throws -> RunFacts {
        let (log, txn) = (snapshot.log, snapshot.logTransaction)
        var facts = RunFacts(run: run, through: through, root: run.root, rootDirID: run.rootDirID)
        let wanted: [EventType] = [.jobStarted, .nonCriticalError, .pathRejected, .jobPaused, .jobResumed, .snapshotTaken]
        let building = wanted.reduce(UInt64(0)) { $0 | 1 << UInt64($1.rawValue) }
        try log.forEach(txn, from: run.firstSequence, through: through, building: building) { seq, r, _, item in
            guard r == run.id else { return true }
            facts.eventsByType[item.type, default: 0] += 1
            guard case let .other(event) = item else { return true }
            switch event {
            case let .jobStarted(root, rootDirID, options, version, _):
                facts.root = root; facts.rootDirID = rootDirID; facts.options = options; facts.version = version
            case let .nonCriticalError(parent, name, errno, operation):
                facts.errors.append(Failure(sequence: seq, parent: parent, name: name, errno: errno, operation: operation))
            case let .pathRejected(parent, name, rule):
                facts.rejections.append(Rejection(sequence: seq, parent: parent, name: name, rule: rule))
            case .jobPaused: facts.pauses.append(seq)
            case .jobResumed: facts.resumes.append(seq)
            case let .snapshotTaken(entries): facts.snapshots.append((seq, entries))
            default: break
            }
            return true
        }
        return facts
    }

    /// The first event of this run (through `through`) that concerns the listing of
    /// directory `dirID`, named `name` in directory `parent`: an entry event, error or
    /// rejection inside it, its `DirectoryListed`, or a failure to open it.
    public func firstEvent(_ snapshot: IndexSnapshot, dirID: UInt64?, parent: UInt64?, name: [UInt8]) throws -> EventRecord? {
        let (log, txn) = (snapshot.log, snapshot.logTransaction)
        var found: EventRecord?
        try log.forEach(txn, from: run.firstSequence, through: through) { seq, r, time, item in
            let record = EventRecord(sequence: seq, run: r, timeMs: time, item: item)
            guard record.run == run.id else { return true }
            let inside: (UInt64) -> Bool = { id in dirID != nil && id == dirID! }
            let concerns: Bool
            switch record.event {
            case let .entryCreated(p, _, _), let .entryUpdated(p, _, _, _), let .entryRemoved(p, _), let .pathRejected(p, _, _):
                concerns = inside(p)
            case let .entryMoved(fp, _, tp, _, _):
                concerns = inside(fp) || inside(tp)
            case let .directoryListed(id, _):
                concerns = inside(id)
            case let .nonCriticalError(p, n, _, operation):
                concerns = inside(p) || (operation == .openDirectory && parent != nil && p == parent! && n == name)
            default:
                concerns = false
            }
            if concerns { found = record; return false }
            return true
        }
        return found
    }
}
