import Rules
#if canImport(Glibc)
import Glibc
#endif

/// Where a walk step failed.
public enum WalkOperation: UInt8, Sendable {
    case openDirectory = 1
    case readDirectory = 2
    case stat = 3
}

/// A non-critical error met during a walk: the walk records it and goes on.
public struct WalkError: Error, Sendable, Hashable {
    /// The id of the directory holding `name`.
    public var directoryID: UInt64
    /// The entry's name; empty when the error concerns the directory `directoryID` itself.
    public var name: [UInt8]
    public var errno: Errno
    public var operation: WalkOperation

    public init(directoryID: UInt64, name: [UInt8], errno: Errno, operation: WalkOperation) {
        self.directoryID = directoryID; self.name = name; self.errno = errno; self.operation = operation
    }
}

/// One entry of a listing: its name is `names[nameStart ..< nameStart + nameLength]`
/// (followed by a NUL so it can be handed to a syscall as is).
public struct ListedEntry: Sendable {
    public var nameStart: Int32
    public var nameLength: Int32
    public var stat: EntryStat
    /// For a directory the walker will descend into, the id its own listing carries; else
    /// 0. Set by the delegate.
    public var directoryID: UInt64
    /// A directory on the root's device (and not at the rules' maximum depth): the walk
    /// may enter it.
    public var canDescend: Bool
    /// The child-directory rules accept files inside this directory.
    public var filesAccepted = true
}

/// An entry the rules rejected: not indexed, and a directory is not entered.
public struct RejectedEntry: Sendable {
    public var nameStart: Int32
    public var nameLength: Int32
    /// The rule, as `PathRejected` records it.
    public var rule: String
}

/// Everything the walker learned reading one directory.
public struct DirectoryListing: Sendable {
    public var directoryID: UInt64
    /// The directory's own metadata (as its parent's listing saw it; `fstat` for the root).
    public var stat: EntryStat
    /// Names back to back, each followed by a NUL byte.
    public var names: [UInt8] = []
    /// Entries whose stat succeeded, in name order (bytes compared as unsigned, a name
    /// before any longer name it begins): the order of the views and of the events.
    public var entries: [ListedEntry] = []
    /// Entries that could not be read, and a failed `readdir` of the directory itself.
    public var errors: [WalkError] = []
    /// Entries the rules rejected (not in `entries`).
    public var rejected: [RejectedEntry] = []

    public init(directoryID: UInt64, stat: EntryStat) {
        self.directoryID = directoryID
        self.stat = stat
    }

    /// The id a listing read ahead (before the walk knew it) carries, and its errors too.
    mutating func setDirectoryID(_ id: UInt64) {
        directoryID = id
        for i in errors.indices { errors[i].directoryID = id }
    }
}

/// A directory's names known without reading it, and possibly their metadata.
public struct KnownListing: Sendable {
    /// Names, a NUL after each.
    public var names: [UInt8]
    /// The metadata of each name in order, when it need not be stat'ed again (a resumed
    /// run's already recorded directory); nil to stat every name. With stats, the names
    /// are in name order (as the view keeps them).
    public var stats: [EntryStat]?
    /// What this run recorded before it stopped: the listing must carry these names (and
    /// stats), not what a read ahead found.
    public var isRecorded: Bool

    public init(names: [UInt8], stats: [EntryStat]? = nil, isRecorded: Bool = false) {
        self.names = names
        self.stats = stats
        self.isRecorded = isRecorded || stats != nil
    }
}

/// What the walker hands its results to, and asks where it goes.
public protocol WalkDelegate {
    /// Takes a directory's complete listing, and sets `directoryID` on each entry the walk
    /// should enter next. Only entries with `canDescend` may be entered; a 0 id skips one.
    /// It must not reorder or remove entries: the walk finds them again by position.
    mutating func directoryListed(_ listing: inout DirectoryListing) throws
    /// The names of directory `directoryID` when they are known not to have changed since
    /// they were last read, so the walker can skip reading it; nil to read.
    mutating func knownListing(of directoryID: UInt64, stat: EntryStat) -> KnownListing?
    /// Takes an error that concerns an entry of an already listed directory.
    mutating func walkFailed(_ error: WalkError) throws
    /// Asked before each directory: true stops the walk at that point.
    var shouldStop: Bool { get }
}

/// What the index holds for directories the walk has not reached yet, so that a lister
/// reading ahead can take their names from it as the delegate would. Each lister thread
/// has its own; the delegate still has the last word (a directory read from the index
/// where the delegate wants it read is read again).
public protocol IndexLookAhead {
    /// The id the index has for `name` in directory `parent` when it is the same directory
    /// (0 otherwise), and its names when they can be trusted not to have changed.
    mutating func lookUp(parent: UInt64, name: UnsafeRawBufferPointer, stat: EntryStat) -> (id: UInt64, known: KnownListing?)
}

/// Walks a tree depth-first, reading every directory by file descriptor.
///
/// Stages per directory, as Spacedrive's walker: read the names (`readdir`), collect
/// metadata (`fstatat` relative to the directory), apply the rules, hand the listing over,
/// then descend into subdirectories. Symlinks are recorded and never followed; directories
/// on another device are recorded and not entered.
///
/// With `threads` > 1, lister threads read directories ahead of the walk: as soon as a
/// directory is read (by any thread), its subdirectories become tasks that any thread may
/// read, newest first, so a lister runs down a branch ahead of the walk without waiting
/// for the delegate. When the walk hands a listing over, the delegate's answers (which
/// subdirectories to enter, their ids, names it already knows) are matched with those
/// tasks; the ones it does not enter are cancelled, with whatever was read below them. The
/// delegate still sees the listings in depth-first order (subdirectories in name order),
/// one at a time on the calling thread, which also reads whatever no lister has started:
/// the same tree gives the same calls in the same order whatever the thread count. With a
/// `helper`, a thread that has work of its own (the writer) is one of the listers: it reads
/// ahead whenever it has nothing else to do. A
/// directory's descriptor stays open until each subdirectory the walk enters is opened
/// (and those it skips are cancelled), so depth is limited by the descriptor limit, not by
/// PATH_MAX.
public struct Walker<FS: FileSystem> {
    public let fileSystem: FS
    /// Which entries are indexed; nil indexes everything.
    public let rules: CompiledRules?
    /// Threads reading directories, the calling thread included.
    public let threads: Int
    /// Makes each lister thread's look-ahead into the index; nil: listers read every directory.
    public let lookAhead: (@Sendable () -> (any IndexLookAhead)?)?
    /// A thread with other work that reads ahead when it has none (the writer): it counts
    /// as one of `threads`, so one lister thread fewer is started.
    public let helper: ListingHelper?

    public init(fileSystem: FS, rules: CompiledRules? = nil, threads: Int = 1,
                lookAhead: (@Sendable () -> (any IndexLookAhead)?)? = nil, helper: ListingHelper? = nil) {
        self.fileSystem = fileSystem
        self.rules = rules
        self.threads = max(1, threads)
        self.lookAhead = lookAhead
        self.helper = self.threads > 1 ? helper : nil
    }

    private struct Frame {
        /// The subdirectories to enter, in name order, with the ids and names (nil: read
        /// them) the delegate gave them.
        var tasks: [(task: ListingTask, id: UInt64, known: KnownListing?)]
        var next = 0
        /// The id of this directory, which its subdirectories' errors are filed under.
        var parentID: UInt64 = 0
        /// The walk's hold on the directory's descriptor, so a subdirectory read ahead can
        /// be read again: let go once the last task is taken.
        var handle: SharedHandle?
    }

    /// Walks the tree at `root`, whose listing carries `rootID`.
    ///
    /// - Returns: false when `delegate.shouldStop` ended the walk early.
    /// - Throws: `Errno` when the root cannot be opened; whatever the delegate throws.
    @discardableResult
    public func walk<D: WalkDelegate>(root: UnsafePointer<CChar>, rootID: UInt64, delegate: inout D) throws -> Bool {
        let rootHandle = try fileSystem.openRoot(root)
        let rootStat: EntryStat
        do {
            rootStat = try fileSystem.stat(rootHandle)
        } catch {
            fileSystem.close(rootHandle)
            throw error
        }
        // Finished listings waiting to be taken hold descriptors (their own, while they
        // have subdirectories to open): a quarter of the descriptor limit at most, so a low
        // limit cannot make the thread count matter; a read ahead that still runs out is
        // read again by the walk.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let readAhead = max(8, min(1024, Int(clamping: limit.rlim_cur) / 4))
        let pool = ListerPool(listers: threads - 1, readAhead: readAhead, fileSystem: fileSystem, bell: helper?.bell)
        var helpers: [WorkerThread] = []
        var stack: [Frame] = []
        if let helper {
            let fs = fileSystem, device = rootStat.device, rules = rules
            let lookAhead = HelperLookAhead(lookAhead?())
            helper.attach { largest in
                guard let work = pool.nextIfAny(largest: largest) else { return false }
                switch work {
                case let .listing(task):
                    pool.finish(task, Self.run(task, fs: fs, device: device, rules: rules, pool: pool, lookAhead: &lookAhead.value))
                case let .stats(job):
                    job.work()
                }
                return true
            }
        }
        defer {
            helper?.detach()
            pool.stop()
            for helper in helpers { helper.join() }
            // Listings read ahead that the walk never took, and directories whose
            // subdirectories were not all opened.
            for frame in stack {
                for (task, _, _) in frame.tasks[frame.next...] { pool.cancel(task) }
                frame.handle?.release(fileSystem)
            }
        }
        for _ in 1..<(helper == nil ? threads : threads - 1) {
            let fs = fileSystem, device = rootStat.device, rules = rules, makeLookAhead = lookAhead
            do {
                helpers.append(try WorkerThread {
                    var lookAhead = makeLookAhead?()
                    while let work = pool.next() {
                        switch work {
                        case let .listing(task):
                            pool.finish(task, Self.run(task, fs: fs, device: device, rules: rules, pool: pool, lookAhead: &lookAhead))
                        case let .stats(job):
                            job.work()
                        }
                    }
                })
            } catch {
                fileSystem.close(rootHandle)
                throw error
            }
        }

        let rootContext = rules?.rootContext(isDirectory: Self.isDirectory, exists: Self.exists, readFile: Self.readFile)
        let rootKnown = delegate.knownListing(of: rootID, stat: rootStat)
        var rootListing = Self.list(rootHandle, stat: rootStat, device: rootStat.device, context: rootContext,
                                    known: rootKnown, indexID: rootID, rules: rules, fs: fileSystem, pool: pool)
        rootListing.listing.setDirectoryID(rootID)
        pool.offer(rootListing.children)
        do { try delegate.directoryListed(&rootListing.listing) } catch {
            pool.dispose(listed: rootListing)
            throw error
        }
        stack.append(frame(rootListing, pool: pool, delegate: &delegate))

        var noLookAhead: (any IndexLookAhead)? = nil
        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].tasks.count else {
                stack.removeLast().handle?.release(fileSystem)
                continue
            }
            if delegate.shouldStop { return false }
            let (task, id, known) = stack[top].tasks[stack[top].next]
            stack[top].next += 1
            var outcome = pool.take(task, run: { Self.run($0, fs: fileSystem, device: rootStat.device, rules: rules, pool: pool, lookAhead: &noLookAhead) })
            if Self.mustReadAgain(outcome, id: id, known: known) {
                guard let handle = stack[top].handle else { preconditionFailure("the walk let go of a directory before its last task") }
                if case let .opened(listed) = outcome { pool.dispose(listed: listed) }
                handle.expect(1)
                outcome = Self.run(task.again(id: id, known: known), fs: fileSystem, device: rootStat.device, rules: rules, pool: pool,
                                   lookAhead: &noLookAhead)
                if case let .opened(listed) = outcome { pool.offer(listed.children) }
            }
            if stack[top].next == stack[top].tasks.count, let handle = stack[top].handle {
                // Every subdirectory to enter is open: the directory's descriptor may close.
                handle.release(fileSystem)
                stack[top].handle = nil
            }
            // Consumed: the delegate's changes to the listing then copy nothing.
            switch consume outcome {
            case var .opened(listed):
                listed.listing.setDirectoryID(id)
                do { try delegate.directoryListed(&listed.listing) } catch {
                    pool.dispose(listed: listed)
                    throw error
                }
                stack.append(frame(listed, pool: pool, delegate: &delegate))
            case let .failed(errno):
                try delegate.walkFailed(WalkError(directoryID: stack[top].parentID, name: task.name, errno: errno, operation: .openDirectory))
            }
        }
        return true
    }

    /// A listing read ahead that the delegate's answer does not allow: names taken from the
    /// index where the delegate wants them read, names looked up below under another id
    /// than the delegate's; or a read that ran out of descriptors (opening the directory or
    /// one of its rules files) while listings read ahead held some: read once more.
    private static func mustReadAgain(_ outcome: ListingOutcome, id: UInt64, known: KnownListing?) -> Bool {
        switch outcome {
        case let .opened(listed):
            return (known == nil && listed.usedIndex) || (listed.indexID != 0 && listed.indexID != id) || listed.outOfDescriptors
        case let .failed(errno):
            return errno.rawValue == EMFILE || errno.rawValue == ENFILE
        }
    }

    /// The frame of a listing just handed over: of the subdirectories' tasks, those the
    /// delegate gave an id to, with the names it knows; the others are cancelled.
    private func frame<D: WalkDelegate>(_ listed: ListedDirectory, pool: ListerPool<FS>, delegate: inout D) -> Frame {
        let listing = listed.listing
        var tasks: [(task: ListingTask, id: UInt64, known: KnownListing?)] = []
        tasks.reserveCapacity(listed.children.count)
        var replacements = 0
        for child in listed.children {
            let entry = listing.entries[child.entryIndex]
            guard entry.canDescend, entry.directoryID != 0 else {
                pool.cancel(child)
                continue
            }
            let known = delegate.knownListing(of: entry.directoryID, stat: entry.stat)
            guard !pool.adopt(child, id: entry.directoryID, known: known) else {
                tasks.append((child, entry.directoryID, known))
                continue
            }
            // A recorded listing (a resumed run's) must be what the delegate gets: what was
            // read ahead without it is dropped, and the directory read again with it.
            pool.cancel(child)
            replacements += 1
            tasks.append((child.again(id: entry.directoryID, known: known), entry.directoryID, known))
        }
        listed.handle?.expect(replacements)
        return Frame(tasks: tasks, parentID: listing.directoryID, handle: listed.handle)
    }

    /// Opens and reads one subdirectory (on whichever thread gets to it first), with the
    /// names the delegate gave, or else those the look-ahead finds in the index.
    private static func run(_ task: ListingTask, fs: FS, device: UInt64, rules: CompiledRules?, pool: ListerPool<FS>,
                            lookAhead: inout (any IndexLookAhead)?) -> ListingOutcome {
        // The name is followed by a NUL in its parent's names: no copy to open it.
        let opened: Result<DirectoryHandle, Errno> = task.withName { name in
            do throws(Errno) {
                return .success(try fs.openDirectory(task.parent.handle, name.baseAddress!.assumingMemoryBound(to: CChar.self)))
            } catch {
                return .failure(error)
            }
        }
        task.parent.release(fs)
        switch opened {
        case let .success(handle):
            var id = task.id, known = task.known
            if id == 0 && known == nil && task.indexParentID != 0, lookAhead != nil {
                (id, known) = task.withName { lookAhead!.lookUp(parent: task.indexParentID, name: $0, stat: task.stat) }
            }
            return .opened(list(handle, stat: task.stat, device: device, context: task.context, known: known, indexID: id, rules: rules,
                                fs: fs, pool: pool))
        case let .failure(errno):
            return .failed(errno)
        }
    }

    /// Reads (or takes from `known`), stats and filters one directory, and makes a task
    /// for each subdirectory the walk may enter, in name order (not readdir's: the walk,
    /// and so the log, does not depend on the order a filesystem returns names in, or on
    /// whether they came from the index). The listing's id is the walk's to set.
    private static func list(_ handle: DirectoryHandle, stat: EntryStat, device: UInt64, context: DirectoryRules?,
                             known: KnownListing?, indexID: UInt64, rules: CompiledRules?, fs: FS, pool: ListerPool<FS>) -> ListedDirectory {
        var listed = read(handle, stat: stat, device: device, context: context, known: known, rules: rules, fs: fs, pool: pool)
        listed.indexID = indexID
        let listing = listed.listing
        // The entries are in name order already.
        let subdirectories = listing.entries.indices.filter { listing.entries[$0].canDescend }
        guard !subdirectories.isEmpty else {
            fs.close(handle)
            return listed
        }
        let shared = SharedHandle(handle, subdirectories: subdirectories.count)
        listed.handle = shared
        listed.children = subdirectories.map { index in
            let entry = listing.entries[index]
            var childContext: DirectoryRules?
            if let rules, let parent = listed.context {
                childContext = listing.names.withUnsafeBytes {
                    rules.child(of: parent, name: UnsafeRawBufferPointer(rebasing: $0[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameLength)]),
                                filesAccepted: entry.filesAccepted)
                }
            }
            // The directory's metadata is what its parent's fstatat saw: no fstat per directory.
            return ListingTask(parent: shared, names: listing.names, nameStart: entry.nameStart, nameLength: entry.nameLength,
                               entryIndex: index, stat: entry.stat, context: childContext, indexParentID: indexID)
        }
        return listed
    }

    /// Names from which a directory's stats are shared out among the threads.
    static var hugeDirectory: Int { 2048 }

    /// Reads (or takes from `known`), stats and filters one directory.
    private static func read(_ handle: DirectoryHandle, stat: EntryStat, device: UInt64, context: DirectoryRules?,
                             known: KnownListing?, rules: CompiledRules?, fs: FS, pool: ListerPool<FS>) -> ListedDirectory {
        var listing = DirectoryListing(directoryID: 0, stat: stat)
        var starts: [(Int32, Int32)] = []
        var knownStats: [EntryStat]?
        if let known {
            listing.names = known.names
            var start = 0
            for (i, byte) in known.names.enumerated() where byte == 0 {
                starts.append((Int32(start), Int32(i - start)))
                start = i + 1
            }
            knownStats = known.stats
            if !NameOrder.isSorted(starts, listing.names) {
                // A recorded listing's stats (and the delegate's ids for it) go by position.
                precondition(knownStats == nil, "a recorded listing out of name order")
                let order = NameOrder.indices(starts, listing.names)
                starts = order.map { starts[$0] }
            }
        } else {
            // Most directories hold a few short names: one allocation each, not a doubling per name.
            listing.names.reserveCapacity(256)
            starts.reserveCapacity(16)
            do throws(Errno) {
                try fs.readDirectory(handle) { name, length in
                    starts.append((Int32(listing.names.count), Int32(length)))
                    listing.names.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length + 1))
                }
            } catch {
                listing.errors.append(WalkError(directoryID: 0, name: [], errno: error, operation: .readDirectory))
            }
            // Sorted here, on whichever thread reads the directory, not by the delegate.
            if starts.count > 1 {
                let order = NameOrder.indices(starts, listing.names)
                starts = order.map { starts[$0] }
            }
        }
        listing.entries.reserveCapacity(starts.count)
        var context = context
        if let knownStats, knownStats.count == starts.count {
            for ((start, length), st) in zip(starts, knownStats) {
                listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                   canDescend: st.isDirectory && st.device == device))
            }
            let outOfDescriptors = applyRules(&listing, handle, &context, rules: rules, fs: fs)
            return ListedDirectory(listing: canonical(listing), context: context, usedIndex: true, outOfDescriptors: outOfDescriptors)
        }
        listing.names.withUnsafeBytes { names in
            func add(_ start: Int32, _ length: Int32, _ result: Result<EntryStat, Errno>) {
                switch result {
                case let .success(st):
                    listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                       canDescend: st.isDirectory && st.device == device))
                case let .failure(error):
                    listing.errors.append(WalkError(directoryID: 0,
                                                    name: Array(names[Int(start)..<Int(start + length)]),
                                                    errno: error, operation: .stat))
                }
            }
            if starts.count >= Self.hugeDirectory && pool.hasListers {
                // A huge directory: its stats are shared out in chunks.
                starts.withUnsafeBufferPointer { starts in
                    let job = StatChunks(fileSystem: fs, handle: handle, names: names.baseAddress!, starts: starts)
                    pool.offer(job)
                    job.work()
                    job.waitUntilFinished()
                    pool.retire(job)
                    for (i, (start, length)) in starts.enumerated() {
                        add(start, length, job.errnos[i] == 0 ? .success(job.stats[i]) : .failure(Errno(rawValue: job.errnos[i])))
                    }
                }
                return
            }
            for (start, length) in starts {
                let name = names.baseAddress!.advanced(by: Int(start)).assumingMemoryBound(to: CChar.self)
                do throws(Errno) {
                    add(start, length, .success(try fs.stat(handle, name)))
                } catch {
                    add(start, length, .failure(error))
                }
            }
        }
        if known != nil && listing.errors.contains(where: { $0.errno == .noSuchFileOrDirectory }) {
            // A name the directory's mtime vouched for is gone: read the directory after all.
            return read(handle, stat: stat, device: device, context: context, known: nil, rules: rules, fs: fs, pool: pool)
        }
        let outOfDescriptors = applyRules(&listing, handle, &context, rules: rules, fs: fs)
        return ListedDirectory(listing: canonical(listing), context: context, usedIndex: known != nil, outOfDescriptors: outOfDescriptors)
    }

    /// Errors and rejections in name order, not readdir's: the same directory gives the
    /// same events whatever order the filesystem returns its names in.
    private static func canonical(_ listing: DirectoryListing) -> DirectoryListing {
        var listing = listing
        if listing.errors.count > 1 { listing.errors.sort { $0.name.lexicographicallyPrecedes($1.name) } }
        if listing.rejected.count > 1 {
            let names = listing.names
            names.withUnsafeBytes { n in
                func name(_ r: RejectedEntry) -> UnsafeRawBufferPointer {
                    UnsafeRawBufferPointer(rebasing: n[Int(r.nameStart)..<Int(r.nameStart + r.nameLength)])
                }
                listing.rejected.sort { name($0).lexicographicallyPrecedes(name($1)) }
            }
        }
        return listing
    }

    // MARK: - Rules

    /// Moves the entries the rules reject from `entries` to `rejected`, after taking this
    /// directory's `.git` and `.gitignore` into its context.
    ///
    /// - Returns: whether a rules file could not be read for lack of descriptors (a lister
    ///   reading ahead holds some): the listing is then read again by the walk.
    private static func applyRules(_ listing: inout DirectoryListing, _ handle: DirectoryHandle, _ context: inout DirectoryRules?,
                                   rules: CompiledRules?, fs: FS) -> Bool {
        guard let rules, var ctx = context else { return false }
        var outOfDescriptors = false
        listing.names.withUnsafeBytes { names in
            func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            }
            if rules.ruleSet.gitignore {
                var hasGit = false, hasIgnoreFile = false
                for e in listing.entries where e.nameLength == 4 || e.nameLength == 10 {
                    let n = name(e)
                    if n.elementsEqual(dotGitName) { hasGit = isRepository(e.stat, handle, fs: fs, outOfDescriptors: &outOfDescriptors) }
                    if e.stat.isRegularFile && n.elementsEqual(dotGitignoreName) { hasIgnoreFile = true }
                }
                if hasGit || hasIgnoreFile {
                    rules.enter(&ctx, hasGit: hasGit, hasIgnoreFile: hasIgnoreFile) { relative in
                        (relative + [0]).withUnsafeBufferPointer { p in
                            readRulesFile(handle, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), fs: fs,
                                          outOfDescriptors: &outOfDescriptors)
                        }
                    }
                }
            }
            var kept: [ListedEntry] = []
            kept.reserveCapacity(listing.entries.count)
            for var entry in listing.entries {
                let n = name(entry)
                let verdict = rules.classify(n, isDirectory: entry.stat.isDirectory, in: ctx) { child in
                    // "name/child", relative to this directory: one lstat, no descent.
                    (Array(n) + [UInt8(ascii: "/")] + child + [0]).withUnsafeBufferPointer { p in
                        let path = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
                        return (try? fs.stat(handle, path))?.isDirectory ?? false
                    }
                }
                switch verdict {
                case let .accepted(descend, filesAccepted):
                    if !descend { entry.canDescend = false }
                    entry.filesAccepted = filesAccepted
                    kept.append(entry)
                case let .rejected(rule):
                    listing.rejected.append(RejectedEntry(nameStart: entry.nameStart, nameLength: entry.nameLength, rule: rule))
                }
            }
            listing.entries = kept
        }
        context = ctx
        return outOfDescriptors
    }

    /// A `.gitignore`, `info/exclude` or `.git` file; nil when it cannot be read (git
    /// ignores what it cannot read too), noting when that was for lack of descriptors.
    private static func readRulesFile(_ handle: DirectoryHandle, _ path: UnsafePointer<CChar>, fs: FS,
                                      outOfDescriptors: inout Bool) -> [UInt8]? {
        do {
            return try fs.readFile(handle, path)
        } catch {
            if error.rawValue == EMFILE || error.rawValue == ENFILE { outOfDescriptors = true }
            return nil
        }
    }


    /// Whether the entry `.git` of this directory is a repository, as git requires of the
    /// top of a work tree: a directory with `HEAD`, `objects/` and `refs/`, or a file
    /// `gitdir: PATH` (worktrees, submodules).
    private static func isRepository(_ st: EntryStat, _ handle: DirectoryHandle, fs: FS, outOfDescriptors: inout Bool) -> Bool {
        func probe(_ path: String, directory: Bool) -> Bool {
            path.withCString { p in
                guard let found = try? fs.stat(handle, p) else { return false }
                return directory ? found.isDirectory : true
            }
        }
        if st.isDirectory {
            return probe(".git/HEAD", directory: false) && probe(".git/objects", directory: true) && probe(".git/refs", directory: true)
        }
        guard st.isRegularFile,
              let contents = ".git".withCString({ readRulesFile(handle, $0, fs: fs, outOfDescriptors: &outOfDescriptors) }) else { return false }
        return contents.starts(with: Array("gitdir: ".utf8))
    }

    /// Absolute-path helpers for the rules' look above the root (the walk itself reads
    /// only through the file-system capability).
    private static func isDirectory(_ path: [UInt8]) -> Bool {
        var st = Glibc.stat()
        return (path + [0]).withUnsafeBufferPointer { p in
            lstat(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), &st) == 0
        } && st.st_mode & S_IFMT == S_IFDIR
    }

    private static func exists(_ path: [UInt8]) -> Bool {
        var st = Glibc.stat()
        return (path + [0]).withUnsafeBufferPointer { p in
            lstat(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), &st) == 0
        }
    }

    private static func readFile(_ path: [UInt8]) -> [UInt8]? {
        try? readWholeFile(path, followSymlinks: false)
    }
}

private let dotGitName = Array(".git".utf8)
private let dotGitignoreName = Array(".gitignore".utf8)

/// The helping thread's look-ahead: only that thread touches it, one directory at a time.
private final class HelperLookAhead: @unchecked Sendable {
    var value: (any IndexLookAhead)?
    init(_ value: (any IndexLookAhead)?) { self.value = value }
}

/// Sorting a listing's names (outside the generic `Walker`, so that it compiles to
/// specialized code whatever the file system).
enum NameOrder {
    /// Whether the names at `starts` are in name order already (names from the index are).
    static func isSorted(_ starts: [(Int32, Int32)], _ names: [UInt8]) -> Bool {
        guard starts.count > 1 else { return true }
        return names.withUnsafeBytes { n in
            for i in 1..<starts.count where compareNames(n, starts[i - 1], starts[i]) > 0 { return false }
            return true
        }
    }

    /// A name's place in the sort: its first 8 bytes big-endian (zero after a shorter
    /// name's end: a name holds no NUL), and where it is in the listing.
    private struct SortKey {
        var prefix: UInt64
        var index: Int32
    }

    /// The indices of `starts` in name order. The 8-byte prefixes decide most comparisons
    /// with no `memcmp` and no call; runs of names with the same prefix are then sorted
    /// by their whole names.
    static func indices(_ starts: [(Int32, Int32)], _ names: [UInt8]) -> [Int] {
        names.withUnsafeBytes { n in
            var keys = [SortKey]()
            keys.reserveCapacity(starts.count)
            for (i, (start, length)) in starts.enumerated() {
                var prefix: UInt64 = 0
                let p = n.baseAddress! + Int(start)
                if length >= 8 {
                    prefix = UInt64(bigEndian: p.loadUnaligned(as: UInt64.self))
                } else {
                    for j in 0..<8 { prefix = prefix << 8 | (j < Int(length) ? UInt64(p.load(fromByteOffset: j, as: UInt8.self)) : 0) }
                }
                keys.append(SortKey(prefix: prefix, index: Int32(i)))
            }
            if keys.count <= 16 {
                // Insertion sort: most directories hold a handful of names.
                for i in 1..<max(1, keys.count) {
                    let key = keys[i]
                    var j = i
                    while j > 0 && (keys[j - 1].prefix > key.prefix || (keys[j - 1].prefix == key.prefix && keys[j - 1].index > key.index)) {
                        keys[j] = keys[j - 1]
                        j -= 1
                    }
                    keys[j] = key
                }
            } else {
                keys.sort { $0.prefix != $1.prefix ? $0.prefix < $1.prefix : $0.index < $1.index }
            }
            var runStart = 0
            while runStart < keys.count {
                var runEnd = runStart + 1
                while runEnd < keys.count && keys[runEnd].prefix == keys[runStart].prefix { runEnd += 1 }
                if runEnd - runStart > 1 { sortRun(&keys, runStart..<runEnd, n, starts) }
                runStart = runEnd
            }
            return keys.map { Int($0.index) }
        }
    }

    /// Names with the same first 8 bytes, by their whole names: an insertion sort for a
    /// short run, `sort` for a long one.
    private static func sortRun(_ keys: inout [SortKey], _ run: Range<Int>, _ n: UnsafeRawBufferPointer, _ starts: [(Int32, Int32)]) {
        if run.count > 32 {
            var part = Array(keys[run])
            part.sort { compareNames(n, starts[Int($0.index)], starts[Int($1.index)]) < 0 }
            keys.replaceSubrange(run, with: part)
            return
        }
        for i in run.dropFirst() {
            let key = keys[i]
            var j = i
            while j > run.lowerBound && compareNames(n, starts[Int(keys[j - 1].index)], starts[Int(key.index)]) > 0 {
                keys[j] = keys[j - 1]
                j -= 1
            }
            keys[j] = key
        }
    }

    /// memcmp order, then the shorter first.
    @inline(__always)
    static func compareNames(_ n: UnsafeRawBufferPointer, _ a: (Int32, Int32), _ b: (Int32, Int32)) -> Int {
        let common = Int(min(a.1, b.1))
        if common > 0 {
            let c = memcmp(n.baseAddress! + Int(a.0), n.baseAddress! + Int(b.0), common)
            if c != 0 { return Int(c) }
        }
        return Int(a.1) - Int(b.1)
    }
}
