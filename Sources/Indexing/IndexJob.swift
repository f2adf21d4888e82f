import EventStore
import Events
internal import LMDB
import Projections
import Rules
import Synchronization
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

/// Why a run could not start or could not finish. One line for the user, naming the path.
public struct IndexError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// Bad input: the root is missing, not a directory, unreadable.
        case badRoot
        /// The job failed part-way; JobFailed was written when possible.
        case failed
    }
    public var code: Code
    public var message: String
    public var description: String { message }
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
}

/// How a run went.
public struct RunSummary: Sendable {
    public var run: UInt32
    public var root: [UInt8]
    public var status: RunRecord.Status
    public var counts: RunCounts
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var seconds: Double
    /// When the rules differ from the last run of this root: that run and its rules text.
    public var previousRules: (run: UInt32, text: String)?
    /// A paused or cut-off run that was not resumed because its rules differ.
    public var abandonedForRules: UInt32?
}

/// Settings of one `evindex run`.
public struct RunOptions: Sendable {
    /// The root as the user gave it (bytes, not a String).
    public var root: [UInt8]
    public var databaseDirectory: String
    /// Commit after this many events…
    public var commitEvents = 10_000
    /// …or this many milliseconds, whichever comes first: every commit is a sync.
    public var commitIntervalMs: Int64 = 100
    /// Reuse the names of a directory whose inode, mtime and ctime are unchanged (and not
    /// racy) instead of reading it again; false reads every directory (`--full-listing`).
    public var trustDirectoryTimes = true
    /// Start a new run even if an earlier run of this root is unfinished (that one is
    /// then marked failed); by default the unfinished run is resumed.
    public var restart = false
    /// Stops the walk (a pause) when raised; SIGINT and SIGTERM raise it too once `StopSignals.catchThem()` ran.
    public var stop = StopFlag()
    /// Live counters for a progress display.
    public var progress = RunProgress()
    /// The first size of the LMDB map (it grows by doubling when full).
    public var initialMapSize = 1 << 34
    /// Threads reading directories (`--threads`): the online cores by default. The events
    /// are the same for any count.
    public var threads = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    /// Which entries are indexed (none rejected by default).
    public var rules = RuleSet()
    /// What a crash of the machine may take (`--durability`): nothing committed by default.
    public var durability = Durability.commit
    /// Where git's global config and excludes file are looked for (HOME, XDG_CONFIG_HOME,
    /// GIT_CONFIG_GLOBAL); the process environment by default.
    public var environment: [String: String]?
    public init(root: [UInt8], databaseDirectory: String) {
        self.root = root
        self.databaseDirectory = databaseDirectory
    }
}

/// How many lister threads have a look-ahead into the views.
private final class LookAheadCount: Sendable {
    let value = Atomic<Int>(0)
}

/// An index run: walk the tree, detect changes, append events and fold the views.
public enum IndexJob {
    /// This build's version, recorded in every `JobStarted` and printed by `evindex --version`.
    public static let version = "0.1.0"

    /// Runs one job to completion.
    ///
    /// - Throws: `IndexError.badRoot` before anything is written; `StoreError` for a
    ///   database that cannot be used or is locked; `IndexError.failed` after JobFailed.
    public static func run<FS: FileSystem>(_ options: RunOptions, fileSystem: FS) throws -> RunSummary {
        let started = monotonicSeconds()
        let root = try canonicalRoot(options.root)
        // The lock before the first write transaction: a second run is refused at once,
        // without waiting on LMDB's writer lock.
        try EventLog.prepareDirectory(options.databaseDirectory)
        let lock = try WriterLock(
            directory: options.databaseDirectory,
            holder: "pid \(getpid()), indexing \(String(decoding: root, as: UTF8.self))")
        defer { withExtendedLifetime(lock) {} }
        let log = try EventLog(
            directory: options.databaseDirectory, create: true, initialMapSize: options.initialMapSize,
            durability: options.durability)
        try SchemaUpgrade.upgradeIfNeeded(log)
        let views = try Views(environment: log.environment)
        raiseDescriptorLimit()
        var st = stat()
        let databaseDirectory =
            stat(options.databaseDirectory, &st) == 0 ? LeftOutDirectory(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)) : nil

        let writer = try Writer(log: log, views: views, options: options)
        let rootDirID: UInt64, rootIsNew: Bool, isRescan: Bool
        var alreadyListed: Set<UInt64> = []
        var unfinishedBelow: Set<UInt64> = []
        let rulesText = options.rules.canonicalText
        let (unfinished, unfinishedRules, previous) = try log.environment.read { txn in
            let runs = try log.allRuns(txn)
            let unfinished = runs.last { $0.root == root && $0.status.isResumable }
            let previous = runs.last { $0.root == root && !$0.status.isResumable }
            return (
                unfinished, try unfinished.flatMap { try log.jobOptions(txn, run: $0) },
                try previous.flatMap { run in try log.jobOptions(txn, run: run).map { (run.id, $0) } }
            )
        }
        var abandonedForRules: UInt32?
        if let unfinished, !options.restart, unfinishedRules == rulesText {
            try writer.resume(unfinished)
            (rootDirID, rootIsNew, isRescan) = (unfinished.rootDirID, false, !unfinished.isFirstIndex)
            alreadyListed = writer.jobState.listed
            unfinishedBelow = try log.environment.read { txn in
                try directoriesWithUnlistedDescendants(views, txn, listed: alreadyListed)
            }
        } else {
            if let unfinished {
                let rulesDiffer = !options.restart
                try writer.abandon(
                    unfinished,
                    reason: rulesDiffer
                        ? "abandoned: a new run was started with other rules"
                        : "abandoned: a new run was started with --restart")
                if rulesDiffer { abandonedForRules = unfinished.id }
            }
            // The root's own blocks are part of what du counts for it; a root that cannot be
            // stat'ed is the walk's error to report.
            let rootStat = (root + [0]).withUnsafeBufferPointer { p -> EntryStat? in
                try? fileSystem.stat(atPath: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
            }
            (rootDirID, rootIsNew) = try writer.start(
                root: root, rules: rulesText, rootMetadata: rootStat.map { EntryMetadata($0, dirID: 0) })
            isRescan = !rootIsNew
        }

        // With two threads or more, the writer reads directories ahead of the walk when it
        // has nothing to write: it is one of `threads`, and no core is left idle or shared.
        let helper = options.threads > 1 ? ListingHelper() : nil
        let queue = BoundedQueue<WriterMessage>(capacity: 64, bell: helper?.bell)
        let stop = options.stop
        let walkerStart = writer.nextDirID
        let listedBefore = alreadyListed
        let notWholly = unfinishedBelow
        let progress = options.progress
        progress.rootFound()
        progress.set(.walking)
        let previousRunStartMs = writer.previousRunStartMs
        let threads = options.threads
        let compiledRules: CompiledRules? =
            options.rules.isEmpty
            ? nil
            : CompiledRules(
                options.rules, root: root, environment: options.environment ?? processEnvironment(),
                readFile: { try? readWholeFile($0) })
        // The detector and the listers trust the same directories: listers take their names
        // from the views as the detector does (only on a rescan: a first index has nothing
        // to trust).
        let trust = DirectoryTrust(previousRunStartMs: previousRunStartMs, trustDirectoryTimes: options.trustDirectoryTimes)
        // At most 16 of them: each keeps an LMDB reader slot (126 in all, other processes'
        // readers included) for the whole walk.
        let lookAheads = LookAheadCount()
        let lookAhead: (@Sendable () -> (any IndexLookAhead)?)? =
            isRescan && threads > 1
            ? { @Sendable () -> (any IndexLookAhead)? in
                lookAheads.value.add(1, ordering: .relaxed).newValue <= 16 ? ViewLookAhead(views: views, trust: trust) : nil
            } : nil
        let thread = try startWalker {
            var detector = ChangeDetector(
                views: views, queue: queue, stop: stop, nextDirID: walkerStart,
                isRescan: isRescan, rootDirID: rootDirID, rootIsNew: rootIsNew,
                alreadyListed: listedBefore, unfinishedBelow: notWholly,
                trust: trust, progress: progress,
                hasRules: !options.rules.isEmpty)
            var failure: (any Error & Sendable)?
            var completed = false
            do {
                try root.withUnsafeBufferPointer { bytes in
                    var path = Array(bytes) + [0]
                    let walker = Walker(
                        fileSystem: fileSystem, rules: compiledRules, threads: threads, lookAhead: lookAhead,
                        helper: helper, leavingOut: databaseDirectory)
                    completed = try path.withUnsafeMutableBytes { p in
                        try walker.walk(root: p.baseAddress!.assumingMemoryBound(to: CChar.self), rootID: rootDirID, delegate: &detector)
                    }
                }
            } catch let error as Errno {
                failure = IndexError(.failed, "cannot read \(String(decoding: root, as: UTF8.self)): \(error)")
            } catch {
                failure = IndexError(.failed, "walk of \(String(decoding: root, as: UTF8.self)) failed: \(error)")
            }
            progress.set(.saving)
            detector.finishWalk(completed: failure == nil && completed)
            detector.handOver()
            queue.push(.finished(detector.counts, failure, paused: failure == nil && !completed))
        }

        var summary: RunSummary
        do {
            summary = try writer.consume(queue, helper: helper)
        } catch {
            stop.set()
            // Unblock the walker so it can end, then record the failure.
            if !writer.walkerFinished {
                while case .batches = queue.pop() {}
            }
            thread.join()
            var message = "\(error)"
            if StoreError.isOnFullDisk(options.databaseDirectory) {
                // LMDB reports a short write as EIO; say what the user can act on.
                message = "the disk holding \(options.databaseDirectory) is full (\(error)); free some space and run again to resume"
            }
            try? writer.fail(message)
            throw IndexError(.failed, "run \(writer.runID) of \(String(decoding: root, as: UTF8.self)) failed: \(message)")
        }
        thread.join()
        progress.set(.done)
        summary.seconds = monotonicSeconds() - started
        if let previous, previous.1 != rulesText { summary.previousRules = previous }
        summary.abandonedForRules = abandonedForRules
        return summary
    }

    /// Directories with a directory at or below them that the interrupted run did not list
    /// (or has not reached): every other listed directory's subtree is wholly recorded, and
    /// the resumed walk need not enter it. One pass over the directory rows.
    static func directoriesWithUnlistedDescendants(_ views: Views, _ txn: Transaction, listed: Set<UInt64>) throws -> Set<UInt64> {
        var parents: [UInt64: UInt64] = [:]
        try views.forEachDirectory(txn) { id, parent in parents[id] = parent }
        var marked = Set<UInt64>()
        for id in parents.keys where !listed.contains(id) {
            var current = id
            while current != 0, marked.insert(current).inserted {
                current = parents[current] ?? 0
            }
        }
        return marked
    }

    /// The absolute, symlink-free form of the root; refuses what cannot be indexed.
    static func canonicalRoot(_ given: [UInt8]) throws -> [UInt8] {
        let shown = String(decoding: given, as: UTF8.self)
        guard !given.isEmpty else { throw IndexError(.badRoot, "no path given to index") }
        guard let resolved = realPath(given) else {
            throw IndexError(.badRoot, "cannot index \(shown): \(Errno.current)")
        }
        // An unreadable root is bad input, refused before anything is written.
        do {
            let fileSystem = PosixFileSystem()
            let st = try (resolved + [0]).withUnsafeBufferPointer { p throws(Errno) in
                try p.withMemoryRebound(to: CChar.self) { c throws(Errno) in try fileSystem.stat(atPath: c.baseAddress!) }
            }
            if st.mode & UInt32(S_IFMT) != UInt32(S_IFDIR) { throw IndexError(.badRoot, "cannot index \(shown): not a directory") }
            let handle = try (resolved + [0]).withUnsafeBufferPointer { p throws(Errno) in
                try p.withMemoryRebound(to: CChar.self) { c throws(Errno) in try fileSystem.openRoot(c.baseAddress!) }
            }
            fileSystem.close(handle)
        } catch let error as Errno {
            throw IndexError(.badRoot, "cannot index \(shown): \(error)")
        }
        return resolved
    }

    /// A deep tree holds one descriptor per level: allow as many as the hard limit.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}

/// The walker's thread (the writer keeps the calling thread).
func startWalker(_ body: @escaping @Sendable () -> Void) throws -> WorkerThread {
    do {
        return try WorkerThread(body)
    } catch {
        throw IndexError(.failed, "cannot start the walker thread: \(error)")
    }
}

/// The process environment, as the rules look up git's config files in it.
func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { result[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return result
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

func wallClockMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
