import Rules

#if canImport(Glibc)
    import Glibc
#endif

/// Where a walk step failed.
public enum WalkOperation: UInt8, Sendable {
    case openDirectory = 1
    case readDirectory = 2
    case stat = 3
    case readExcludesFile = 4
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
/// metadata (`fstatat` relative to the directory), apply the rules (those three are a
/// `DirectoryReader`'s), hand the listing over, then descend into subdirectories. Symlinks
/// are recorded and never followed; directories on another device are recorded and not
/// entered.
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
    /// The directory left out wherever the walk meets it.
    public let leftOut: LeftOutDirectory?

    /// - Parameter leavingOut: a directory (device, inode) the walk rejects wherever it
    ///   meets it, rules or none: the database's own.
    public init(
        fileSystem: FS, rules: CompiledRules? = nil, threads: Int = 1,
        lookAhead: (@Sendable () -> (any IndexLookAhead)?)? = nil, helper: ListingHelper? = nil,
        leavingOut: LeftOutDirectory? = nil
    ) {
        self.fileSystem = fileSystem
        self.rules = rules
        self.leftOut = leavingOut
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
        let reader = DirectoryReader(fs: fileSystem, device: rootStat.device, rules: rules, pool: pool, leftOut: leftOut)
        var helpers: [WorkerThread] = []
        var stack: [Frame] = []
        if let helper {
            let lookAhead = HelperLookAhead(lookAhead?())
            helper.attach { largest in
                guard let work = pool.nextIfAny(largest: largest) else { return false }
                reader.perform(work, lookAhead: &lookAhead.value)
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
            let makeLookAhead = lookAhead
            do {
                helpers.append(
                    try WorkerThread {
                        var lookAhead = makeLookAhead?()
                        reader.listUntilStopped(lookAhead: &lookAhead)
                    })
            } catch {
                fileSystem.close(rootHandle)
                throw error
            }
        }

        let rootContext = reader.rules?.rootContext()
        let rootKnown = delegate.knownListing(of: rootID, stat: rootStat)
        var rootListing = reader.list(rootHandle, stat: rootStat, context: rootContext, known: rootKnown, indexID: rootID)
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
            var outcome = pool.take(task, run: { reader.run($0, lookAhead: &noLookAhead) })
            if Self.mustReadAgain(outcome, id: id, known: known) {
                guard let handle = stack[top].handle else { preconditionFailure("the walk let go of a directory before its last task") }
                if case let .opened(listed) = outcome { pool.dispose(listed: listed) }
                handle.expect(1)
                outcome = reader.run(task.again(id: id, known: known), lookAhead: &noLookAhead)
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
}

/// The helping thread's look-ahead: only that thread touches it, one directory at a time.
private final class HelperLookAhead: @unchecked Sendable {
    var value: (any IndexLookAhead)?
    init(_ value: (any IndexLookAhead)?) { self.value = value }
}
