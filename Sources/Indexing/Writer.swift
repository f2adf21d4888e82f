import EventStore
import Events
internal import LMDB
import Projections
import Traversal

/// The single writer of a run: turns the walker's batches into events, through the
/// `EventWriter` that appends and folds them in one transaction, and keeps the run's row,
/// counts, dir ids and job-state snapshots.
final class Writer {
    let log: EventLog
    let views: Views
    /// Appends events and folds them into the views, committed together.
    private let events: EventWriter
    let options: RunOptions
    private(set) var runID: UInt32 = 0
    private var run: RunRecord!
    /// The sequence the next event gets.
    private var sequence: UInt64 { events.nextSequence }
    private(set) var nextDirID: UInt64 = 1
    private var counts = RunCounts()
    /// The walker sent its last message: nothing more will arrive on the queue.
    private(set) var walkerFinished = false
    /// The fold of this run's events, snapshotted every `snapshotEvery` events and at a pause.
    private(set) var jobState = JobState()
    private var lastSnapshotSequence: UInt64 = 0
    static let snapshotEvery: UInt64 = 200_000
    /// The sequence at which the map's pages were last let go of (see `commit`).
    private var lastMapRelease: UInt64 = 0
    static let releaseMapEvery: UInt64 = 200_000

    init(log: EventLog, views: Views, options: RunOptions) throws {
        self.log = log
        self.views = views
        self.events = EventWriter(log: log, views: views)
        self.options = options
    }

    /// When the previous run started (ms), 0 for the first: directories changed since a
    /// little before it are "racy" and always read again.
    private(set) var previousRunStartMs: Int64 = 0

    /// Appends JobStarted and the run's row; returns the root's dir id and whether it is new.
    func start(root: [UInt8], rules: String, rootMetadata: EntryMetadata?) throws -> (UInt64, Bool) {
        let now = wallClockMs()
        return try write { txn in
            self.runID = try log.nextRunID(txn)
            self.previousRunStartMs = try trustBoundary(txn, root: root, before: runID)
            // Nothing of an abandoned run carries over.
            self.counts = RunCounts()
            self.jobState = JobState()
            self.nextDirID = try log.metaValue(txn, "nextDirID") ?? 1
            var rootDirID: UInt64
            var isNew = false
            if case let .directory(id, _)? = try views.locate(txn, path: root) {
                rootDirID = id
            } else {
                rootDirID = self.nextDirID
                self.nextDirID += 1
                isNew = true
            }
            self.run = RunRecord(
                id: runID, root: root, rootDirID: rootDirID, status: .running,
                firstSequence: sequence, lastSequence: sequence, startedMs: now)
            self.run.isFirstIndex = isNew
            self.lastSnapshotSequence = sequence
            try appendRare(
                txn, .jobStarted(root: root, rootDirID: rootDirID, options: rules, version: IndexJob.version, rootMetadata: rootMetadata),
                timeMs: now)
            try log.setMetaValue(txn, "nextDirID", nextDirID)
            try log.putRun(txn, run)
            return (rootDirID, isNew)
        }
    }

    /// When the last completed run that covered all of `root` began; 0 when there is none,
    /// or when a later run over any part of it did not complete.
    ///
    /// Directories whose ctime is older than that start − 2 s may have their names taken
    /// from the views: that run read them (or found them unchanged) after they last changed,
    /// late enough that a change in the same clock tick cannot hide. A subtree run does not
    /// move the boundary (it did not read what lies outside it). A run cut off, failed or
    /// restarted may have recorded directories without their listing, so after one nothing
    /// is trusted until a covering run completes.
    private func trustBoundary(_ txn: Transaction, root: [UInt8], before id: UInt32) throws -> Int64 {
        func covers(_ a: [UInt8], _ b: [UInt8]) -> Bool { PathBytes.isSameOrBelow(b, a) }
        let earlier = try log.allRuns(txn).filter { $0.id < id }
        guard let cover = earlier.last(where: { covers($0.root, root) && $0.status == .completed }) else { return 0 }
        let unfinishedSince = earlier.contains {
            $0.id > cover.id && $0.status != .completed && (covers($0.root, root) || covers(root, $0.root))
        }
        return unfinishedSince ? 0 : cover.startedMs
    }

    /// Takes up an unfinished run (paused, or cut off by a crash): its job state is the
    /// latest snapshot plus the fold of the run's events after it; appends JobResumed.
    func resume(_ unfinished: RunRecord) throws {
        let now = wallClockMs()
        try write { txn in
            self.runID = unfinished.id
            self.run = unfinished
            self.nextDirID = try log.metaValue(txn, "nextDirID") ?? 1
            self.previousRunStartMs = try trustBoundary(txn, root: unfinished.root, before: unfinished.id)
            var state = JobState()
            var from = unfinished.firstSequence
            if let (at, restored) = try log.latestSnapshot(txn, run: unfinished.id, { seq, bytes in (seq, JobState(snapshot: bytes)) }),
                let restored
            {
                state = restored
                from = at + 1
            }
            // Only the run's own stretch after its snapshot: resume does not grow with the log.
            try log.forEach(txn, from: from, through: unfinished.lastSequence) { seq, r, time, item in
                if r == unfinished.id { state.apply(EventRecord(sequence: seq, run: r, timeMs: time, item: item)) }
                return true
            }
            self.jobState = state
            self.counts = unfinished.counts
            self.counts.directories = 0; self.counts.files = 0; self.counts.symlinks = 0
            self.counts.others = 0; self.counts.bytes = 0
            self.run.status = .running
            // A failure taken up again is over: its message and end would outlive it.
            self.run.message = ""
            self.run.endedMs = 0
            try appendRare(txn, .jobResumed, timeMs: now)
            self.lastSnapshotSequence = sequence
            try log.putRun(txn, run)
        }
    }

    /// Ends an unfinished run for good (`--restart`): JobFailed, status failed.
    func abandon(_ unfinished: RunRecord, reason: String) throws {
        runID = unfinished.id
        run = unfinished
        counts = unfinished.counts
        try fail(reason, status: .abandoned)
        run = nil
    }

    /// Runs `body` in a write transaction; on a retry (the map grew) or a failure, the run's
    /// own state goes back to where the transaction began (the events' is `EventWriter`'s).
    private func write<R>(_ body: (Transaction) throws -> R) throws -> R {
        let savedCounts = counts, savedDirID = nextDirID, savedRun = run
        let savedState = jobState, savedSnapshot = lastSnapshotSequence
        return try events.write(
            onRollBack: {
                self.counts = savedCounts
                self.nextDirID = savedDirID
                self.run = savedRun
                self.jobState = savedState
                self.lastSnapshotSequence = savedSnapshot
            }, body)
    }

    private func appendRare(_ txn: Transaction, _ event: Event, timeMs: Int64) throws {
        jobState.apply(try events.append(txn, run: runID, timeMs: timeMs, event))
    }

    /// Drains the queue until the walker finishes, committing every `commitEvents`
    /// events or `commitIntervalMs`, then appends JobCompleted. With a `helper`, the
    /// writer reads directories ahead of the walk whenever the queue is empty.
    func consume(_ queue: BoundedQueue<WriterMessage>, helper: ListingHelper? = nil) throws -> RunSummary {
        var group: [WriterBatch] = []
        var groupEvents = 0
        var lastCommit = monotonicMs()
        // A slow walker (a stalled network share) must not keep changes uncommitted.
        func commitIfDue() throws {
            let now = monotonicMs()
            guard now - lastCommit >= options.commitIntervalMs else { return }
            if !group.isEmpty {
                try commit(group, final: nil)
                group.removeAll(keepingCapacity: true)
                groupEvents = 0
            }
            lastCommit = now
        }
        while true {
            let next: WriterMessage?
            if let helper {
                let ticket = helper.bell.ticket
                if let message = queue.popIfAny() {
                    next = message
                } else {
                    // With changes not yet committed, only a small directory: the commit
                    // waits for what the writer reads.
                    let largest: UInt64? = group.isEmpty ? nil : Self.smallDirectoryBytes
                    if !helper.helpOnce(largest: largest) { helper.bell.wait(ticket, timeoutMs: options.commitIntervalMs) }
                    next = nil
                }
            } else {
                next = queue.pop(timeoutMs: options.commitIntervalMs)
            }
            guard let message = next else {
                try commitIfDue()
                continue
            }
            switch message {
            case let .batches(batches):
                group.append(contentsOf: batches)
                groupEvents += batches.reduce(0) { $0 + $1.eventCount }
                if groupEvents >= options.commitEvents {
                    try commit(group, final: nil)
                    group.removeAll(keepingCapacity: true)
                    groupEvents = 0
                    lastCommit = monotonicMs()
                } else {
                    try commitIfDue()
                }
            case let .finished(walked, failure, paused):
                walkerFinished = true
                if let failure {
                    try commit(group, final: nil)
                    throw failure
                }
                if paused {
                    try commit(group, final: nil, pause: walked)
                    return RunSummary(
                        run: runID, root: run.root, status: .paused, counts: counts,
                        firstSequence: run.firstSequence, lastSequence: sequence - 1, seconds: 0)
                }
                try commit(group, final: walked)
                return RunSummary(
                    run: runID, root: run.root, status: .completed, counts: counts,
                    firstSequence: run.firstSequence, lastSequence: sequence - 1, seconds: 0)
            }
        }
    }

    /// The largest directory (`st_size`) the writer reads while it holds uncommitted
    /// changes: about a thousand names on ext4.
    static let smallDirectoryBytes: UInt64 = 32 << 10

    /// Applies a group of batches in one transaction; with `final`, ends the run too.
    private func commit(_ group: [WriterBatch], final walked: RunCounts?, pause: RunCounts? = nil) throws {
        let before = sequence
        defer { options.progress.wrote(events: sequence > before ? sequence - before : 0) }
        if walked != nil { options.progress.set(.finishing) }
        try write { txn in
            let now = wallClockMs()
            for batch in group { try apply(txn, batch, timeMs: now) }
            if let pause {
                counts.directories = pause.directories; counts.files = pause.files; counts.symlinks = pause.symlinks
                counts.others = pause.others; counts.bytes = pause.bytes
                try appendRare(txn, .jobPaused(reason: "signal"), timeMs: now)
                try takeSnapshot(txn, timeMs: now)
                run.status = .paused
                run.counts = counts
            } else if walked == nil && sequence - lastSnapshotSequence >= Self.snapshotEvery {
                try takeSnapshot(txn, timeMs: now)
            }
            if let walked {
                var c = walked
                c.errors = counts.errors
                c.created = counts.created; c.updated = counts.updated
                c.removed = counts.removed; c.moved = counts.moved
                counts = c
                try appendRare(txn, .jobCompleted(c), timeMs: now)
                run.status = .completed
                run.endedMs = now
                run.counts = c
            }
            try log.setMetaValue(txn, "nextDirID", nextDirID)
            run.lastSequence = sequence - 1
            if walked == nil {
                // The row shows the run's progress while it runs (and after a crash).
                run.counts.created = counts.created; run.counts.updated = counts.updated
                run.counts.removed = counts.removed; run.counts.moved = counts.moved; run.counts.errors = counts.errors
            }
            try log.putRun(txn, run)
        }
        if sequence - lastMapRelease >= Self.releaseMapEvery {
            // The pages of the views and the log read through the map count as this
            // process's memory until unmapped: a first index would otherwise grow with the
            // database (they stay in the page cache, and are mapped again when next read).
            views.environment.releaseMappedPages()
            lastMapRelease = sequence
        }
    }

    /// Appends SnapshotTaken and stores the job state under its sequence, in the same
    /// transaction as the events it covers.
    private func takeSnapshot(_ txn: Transaction, timeMs: Int64) throws {
        let at = sequence
        try appendRare(txn, .snapshotTaken(entries: jobState.entryEvents), timeMs: timeMs)
        try log.putSnapshot(txn, run: runID, sequence: at, state: jobState.encoded())
        lastSnapshotSequence = at
    }

    private func apply(_ txn: Transaction, _ batch: WriterBatch, timeMs: Int64) throws {
        let parent = batch.directoryID
        try batch.names.withUnsafeBytes { names in
            for change in batch.changes {
                let name = UnsafeRawBufferPointer(rebasing: names[Int(change.nameStart)..<Int(change.nameStart + change.nameLength)])
                if change.metadata.kind == .directory { nextDirID = max(nextDirID, change.metadata.dirID + 1) }
                switch change.kind {
                case .created:
                    try events.appendCreated(txn, run: runID, timeMs: timeMs, parent: parent, name: name, metadata: change.metadata)
                    counts.created += 1
                    jobState.entryEvents += 1
                case .updated:
                    try appendRare(
                        txn, .entryUpdated(parent: parent, name: Array(name), old: change.old!, new: change.metadata),
                        timeMs: timeMs)
                    counts.updated += 1
                case .removed:
                    try appendRare(txn, .entryRemoved(parent: parent, name: Array(name)), timeMs: timeMs)
                    counts.removed += 1
                case .moved:
                    let from = batch.moves[Int(change.detail)]
                    try appendRare(
                        txn,
                        .entryMoved(
                            fromParent: from.parent, fromName: from.name, toParent: parent,
                            toName: Array(name), change.metadata), timeMs: timeMs)
                    counts.moved += 1
                case .rejected:
                    try appendRare(txn, .pathRejected(parent: parent, name: Array(name), rule: batch.rules[Int(change.detail)]), timeMs: timeMs)
                case .rejectionLifted:
                    try appendRare(txn, .entryRemoved(parent: parent, name: Array(name)), timeMs: timeMs)
                }
            }
        }
        // DirectoryListed before the errors of the listing: the errors leave it incomplete.
        if let children = batch.listedChildren {
            try appendRare(txn, .directoryListed(dirID: parent, children: children), timeMs: timeMs)
        }
        for error in batch.errors {
            try appendRare(
                txn,
                .nonCriticalError(
                    parent: error.directoryID, name: error.name, errno: error.errno.rawValue,
                    operation: FileOperation(error.operation)), timeMs: timeMs)
            counts.errors += 1
        }
        // One block per batch: the view finds a directory's listing in one read.
        try events.endBlock(txn)
    }

    /// Records that the run failed (JobFailed and the run's status), best effort.
    func fail(_ message: String, status: RunRecord.Status = .failed) throws {
        guard run != nil else { return }
        try write { txn in
            let now = wallClockMs()
            try appendRare(txn, .jobFailed(message: message), timeMs: now)
            run.status = status
            run.endedMs = now
            run.message = message
            run.lastSequence = sequence - 1
            run.counts = counts
            try log.putRun(txn, run)
        }
    }
}

extension FileOperation {
    init(_ operation: WalkOperation) {
        switch operation {
        case .openDirectory: self = .openDirectory
        case .readDirectory: self = .readDirectory
        case .stat: self = .stat
        case .readExcludesFile: self = .readExcludesFile
        }
    }
}
