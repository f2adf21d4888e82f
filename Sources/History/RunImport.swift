import EventStore
import Events
internal import LMDB
import Projections

/// A run read from an export: its row, the index below its root just before it began
/// (its base), and its own events, all with the exporting database's ids.
public struct ExportedRun: Sendable {
    public struct BaseEntry: Sendable {
        public var parent: UInt64
        public var name: [UInt8]
        public var metadata: EntryMetadata
        /// Set for a name the base holds as rejected (the rule); `metadata` is then unused.
        public var rule: [UInt8]?
        public init(parent: UInt64, name: [UInt8], metadata: EntryMetadata, rule: [UInt8]? = nil) {
            self.parent = parent; self.name = name; self.metadata = metadata; self.rule = rule
        }

        /// A rejected name of the base.
        public static func rejected(parent: UInt64, name: [UInt8], rule: [UInt8]) -> BaseEntry {
            BaseEntry(
                parent: parent, name: name,
                metadata: EntryMetadata(kind: .other, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0), rule: rule)
        }
    }

    public var run: RunRecord
    /// Entries below the root before the run, parents before their children, and the
    /// names the base holds as rejected.
    public var base: [BaseEntry]
    public var events: [EventRecord]

    public init(run: RunRecord, base: [BaseEntry], events: [EventRecord]) {
        self.run = run; self.base = base; self.events = events
    }

    /// Reads run `run` of `log` through sequence `through`: the base comes from the index
    /// as of the event before the run's first (none for a root's first index).
    public static func read(
        log: EventLog, live: Views, run: RunRecord, through: UInt64? = nil,
        _ visit: (Section) throws -> Void
    ) throws {
        var base: [BaseEntry] = []
        if !run.isFirstIndex {
            let before = try LearnedIndex.at(run.firstSequence - 1, log: log, live: live)
            try before.views.environment.read { txn in
                var stack: [UInt64] = [run.rootDirID]
                while let dir = stack.popLast() {
                    var subdirs: [UInt64] = []
                    try before.views.forEachChild(txn, of: dir) { name, m in
                        base.append(BaseEntry(parent: dir, name: Array(name), metadata: m))
                        if m.kind == .directory && m.dirID != 0 { subdirs.append(m.dirID) }
                        return true
                    }
                    // Rejections are state too: a rescan compares with them.
                    try before.views.forEachRejection(txn, of: dir) { name, rule in
                        base.append(.rejected(parent: dir, name: Array(name), rule: Array(rule)))
                    }
                    stack.append(contentsOf: subdirs.reversed())
                }
            }
        }
        try visit(.header(run, baseEntries: base.count))
        for entry in base { try visit(.base(entry)) }
        base = []
        try log.environment.read { txn in
            try log.forEach(txn, from: run.firstSequence, through: through ?? run.lastSequence) { seq, r, time, item in
                if r == run.id { try visit(.event(EventRecord(sequence: seq, run: r, timeMs: time, item: item))) }
                return true
            }
        }
    }

    /// One piece of an export, in the order written.
    public enum Section: Sendable {
        case header(RunRecord, baseEntries: Int)
        case base(BaseEntry)
        case event(EventRecord)
    }
}

/// Appends an exported run to a database as a new run, with new sequences, a new run id
/// and new dir ids, folding it into the views.
public enum RunImport {
    public struct Result: Sendable {
        /// The run that recreated the base (nil when the export had none).
        public var baseRun: UInt32?
        public var baseEntries: Int
        public var run: UInt32
        public var firstSequence: UInt64
        public var lastSequence: UInt64
    }

    /// Writes `exported` into `log` (whose writer lock the caller holds).
    ///
    /// Rule: the imported run's index equals the exported run's. Its base (the index below
    /// the root before the run) becomes a run of its own, written first: `JobStarted`,
    /// one `EntryCreated` per entry, `JobCompleted`. Then the run's events, as they were,
    /// with every dir id mapped to a new one. The root must not be indexed in this
    /// database yet (nor a root above or below it): the imported events describe a tree
    /// this database knows nothing else about.
    /// - Throws: `HistoryError` when the root is already indexed here.
    /// Appends `exported` to `log` as a new run, folded into the log's live views.
    public static func append(_ exported: ExportedRun, log: EventLog, version: String) throws -> Result {
        try append(exported, log: log, views: Views(environment: log.environment), version: version)
    }

    public static func append(_ exported: ExportedRun, log: EventLog, views: Views, version: String) throws -> Result {
        let root = exported.run.root
        let events = EventWriter(log: log, views: views)
        func overlaps(_ a: [UInt8], _ b: [UInt8]) -> Bool { PathBytes.isSameOrBelow(a, b) || PathBytes.isSameOrBelow(b, a) }
        return try events.write { txn -> Result in
            for indexed in try views.roots(txn) where overlaps(indexed.path, root) {
                throw HistoryError(
                    "\(String(decoding: root, as: UTF8.self)) overlaps the indexed root \(String(decoding: indexed.path, as: UTF8.self)) in \(log.directory); import into a database that does not index it",
                    overlap: (root, indexed.path))
            }
            var nextDirID = try log.metaValue(txn, "nextDirID") ?? 1
            var ids: [UInt64: UInt64] = [0: 0]
            func map(_ id: UInt64) -> UInt64 {
                if let m = ids[id] { return m }
                let m = nextDirID
                nextDirID += 1
                ids[id] = m
                return m
            }
            func mapped(_ m: EntryMetadata) -> EntryMetadata {
                var m = m
                if m.kind == .directory { m.dirID = map(m.dirID) }
                return m
            }
            var runID = try log.nextRunID(txn)
            let rootID = map(exported.run.rootDirID)
            func append(_ run: UInt32, _ time: Int64, _ event: Event) throws {
                try events.append(txn, run: run, timeMs: time, event)
                // A block per listing, as the writer stores them: the file-path view reads a
                // directory's listing from the block it starts in.
                if case .directoryListed = event { try events.endBlock(txn) }
            }

            var baseRun: UInt32?
            if !exported.run.isFirstIndex {
                let id = runID
                runID += 1
                baseRun = id
                let time = exported.run.startedMs
                let first = events.nextSequence
                var counts = RunCounts()
                try append(id, time, .jobStarted(root: root, rootDirID: rootID, options: "", version: version))
                var parent: UInt64?
                for entry in exported.base {
                    // The base holds a directory's children together: a block for each.
                    if entry.parent != parent {
                        try events.endBlock(txn)
                        parent = entry.parent
                    }
                    if let rule = entry.rule {
                        try append(id, time, .pathRejected(parent: map(entry.parent), name: entry.name, rule: rule))
                        continue
                    }
                    let m = mapped(entry.metadata)
                    counts.add(m.kind, size: m.size)
                    counts.created += 1
                    try append(id, time, .entryCreated(parent: map(entry.parent), name: entry.name, m))
                }
                try append(id, time, .jobCompleted(counts))
                var row = RunRecord(
                    id: id, root: root, rootDirID: rootID, status: .completed, firstSequence: first,
                    lastSequence: events.nextSequence - 1, startedMs: time, endedMs: time, counts: counts,
                    message: "")
                row.isFirstIndex = true
                try log.putRun(txn, row)
            }

            let first = events.nextSequence
            var sawStart = false
            for record in exported.events {
                let event: Event
                switch record.event {
                case let .jobStarted(r, rootDirID, options, version, rootMetadata):
                    sawStart = true
                    event = .jobStarted(
                        root: r, rootDirID: map(rootDirID), options: options, version: version, rootMetadata: rootMetadata)
                case let .directoryListed(dirID, children):
                    event = .directoryListed(dirID: map(dirID), children: children)
                case let .pathRejected(parent, name, rule):
                    event = .pathRejected(parent: map(parent), name: name, rule: rule)
                case let .entryCreated(parent, name, m):
                    event = .entryCreated(parent: map(parent), name: name, mapped(m))
                case let .entryUpdated(parent, name, old, new):
                    event = .entryUpdated(parent: map(parent), name: name, old: mapped(old), new: mapped(new))
                case let .entryRemoved(parent, name):
                    event = .entryRemoved(parent: map(parent), name: name)
                case let .entryMoved(fromParent, fromName, toParent, toName, m):
                    event = .entryMoved(fromParent: map(fromParent), fromName: fromName, toParent: map(toParent), toName: toName, mapped(m))
                case let .nonCriticalError(parent, name, errno, operation):
                    event = .nonCriticalError(parent: map(parent), name: name, errno: errno, operation: operation)
                case .jobPaused, .jobResumed, .jobCompleted, .jobFailed, .snapshotTaken:
                    event = record.event
                }
                try append(runID, record.timeMs, event)
            }
            if !sawStart && baseRun == nil {
                throw HistoryError("the export holds no JobStarted: it is not a whole run")
            }
            var row = exported.run
            row.id = runID
            row.rootDirID = rootID
            row.firstSequence = first
            row.lastSequence = events.nextSequence - 1
            row.isFirstIndex = baseRun == nil && exported.run.isFirstIndex
            if row.status.isResumable {
                // An imported run is a record of what happened elsewhere: never resumed here.
                row.message = "imported while \(row.status.name)"
                row.status = .abandoned
            }
            try log.putRun(txn, row)
            try log.setMetaValue(txn, "nextDirID", nextDirID)
            return Result(
                baseRun: baseRun, baseEntries: exported.base.count, run: runID,
                firstSequence: first, lastSequence: events.nextSequence - 1)
        }
    }
}
