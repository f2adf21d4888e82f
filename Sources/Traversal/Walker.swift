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
    /// Entries whose stat succeeded, in the order `readdir` returned them.
    public var entries: [ListedEntry] = []
    /// Entries that could not be read, and a failed `readdir` of the directory itself.
    public var errors: [WalkError] = []
    /// Entries the rules rejected (not in `entries`).
    public var rejected: [RejectedEntry] = []

    public init(directoryID: UInt64, stat: EntryStat) {
        self.directoryID = directoryID
        self.stat = stat
    }
}

/// A directory's names known without reading it, and possibly their metadata.
public struct KnownListing: Sendable {
    /// Names, a NUL after each.
    public var names: [UInt8]
    /// The metadata of each name in order, when it need not be stat'ed again (a resumed
    /// run's already recorded directory); nil to stat every name.
    public var stats: [EntryStat]?

    public init(names: [UInt8], stats: [EntryStat]? = nil) {
        self.names = names
        self.stats = stats
    }
}

/// What the walker hands its results to, and asks where it goes.
public protocol WalkDelegate {
    /// Takes a directory's complete listing, and sets `directoryID` on each entry the walk
    /// should enter next. Only entries with `canDescend` may be entered; a 0 id skips one.
    mutating func directoryListed(_ listing: inout DirectoryListing) throws
    /// The names of directory `directoryID` when they are known not to have changed since
    /// they were last read, so the walker can skip reading it; nil to read.
    mutating func knownListing(of directoryID: UInt64, stat: EntryStat) -> KnownListing?
    /// Takes an error that concerns an entry of an already listed directory.
    mutating func walkFailed(_ error: WalkError) throws
    /// Asked before each directory: true stops the walk at that point.
    var shouldStop: Bool { get }
}

/// Walks a tree depth-first, reading every directory by file descriptor.
///
/// Stages per directory, as Spacedrive's walker: read the names (`readdir`), collect
/// metadata (`fstatat` relative to the directory), apply the rules, hand the listing over,
/// then descend into subdirectories. Symlinks are recorded and never followed; directories
/// on another device are recorded and not entered.
///
/// With `threads` > 1, lister threads read directories ahead of the walk: as soon as a
/// listing is handed over, its subdirectories become tasks that any thread may read
/// (newest first, so the listers work where the walk is about to go). The delegate still
/// sees the listings in depth-first order (subdirectories in name order), one at a time
/// on the calling thread, which
/// also reads whatever no lister has started: the same tree gives the same calls in the
/// same order whatever the thread count. A directory's descriptor stays open until each
/// of its subdirectories is opened, so depth is limited by the descriptor limit, not by
/// PATH_MAX.
public struct Walker<FS: FileSystem> {
    public let fileSystem: FS
    /// Which entries are indexed; nil indexes everything.
    public let rules: CompiledRules?
    /// Threads reading directories, the calling thread included.
    public let threads: Int

    public init(fileSystem: FS, rules: CompiledRules? = nil, threads: Int = 1) {
        self.fileSystem = fileSystem
        self.rules = rules
        self.threads = max(1, threads)
    }

    private struct Frame {
        var names: [UInt8]
        /// The listing tasks of the subdirectories to enter, in listing order.
        var tasks: [ListingTask]
        var next = 0
        /// The id of this directory, which its subdirectories' errors are filed under.
        var parentID: UInt64 = 0
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
        // Each finished listing waiting to be taken holds a descriptor: a quarter of the
        // descriptor limit at most, so a low limit cannot make the thread count matter.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let readAhead = max(8, min(1024, Int(clamping: limit.rlim_cur) / 4))
        let pool = ListerPool(listers: threads - 1, readAhead: readAhead)
        var helpers: [WorkerThread] = []
        var stack: [Frame] = []
        defer {
            pool.stop()
            for helper in helpers { helper.join() }
            // Listings read ahead that the walk never took, and directories whose
            // subdirectories were not all opened.
            for frame in stack { for task in frame.tasks[frame.next...] { task.discard(fileSystem) } }
        }
        for _ in 1..<threads {
            let fs = fileSystem, device = rootStat.device, rules = rules
            do {
                helpers.append(try WorkerThread {
                    while let task = pool.next() {
                        pool.finish(task, Self.run(task, fs: fs, device: device, rules: rules))
                    }
                })
            } catch {
                fileSystem.close(rootHandle)
                throw error
            }
        }

        let rootContext = rules?.rootContext(isDirectory: Self.isDirectory, exists: Self.exists, readFile: Self.readFile)
        let rootKnown = delegate.knownListing(of: rootID, stat: rootStat)
        var rootListing = Self.list(rootHandle, id: rootID, stat: rootStat, device: rootStat.device, context: rootContext,
                                    known: rootKnown, rules: rules, fs: fileSystem)
        do { try delegate.directoryListed(&rootListing.listing) } catch {
            fileSystem.close(rootHandle)
            throw error
        }
        stack.append(frame(rootListing, handle: SharedHandle(rootHandle), pool: pool, delegate: &delegate))

        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].tasks.count else {
                stack.removeLast()
                continue
            }
            if delegate.shouldStop { return false }
            let task = stack[top].tasks[stack[top].next]
            stack[top].next += 1
            switch pool.take(task, run: { Self.run(task, fs: fileSystem, device: rootStat.device, rules: rules) }) {
            case let .opened(handle, listed):
                var listed = listed
                do { try delegate.directoryListed(&listed.listing) } catch {
                    fileSystem.close(handle)
                    throw error
                }
                stack.append(frame(listed, handle: SharedHandle(handle), pool: pool, delegate: &delegate))
            case let .failed(errno):
                try delegate.walkFailed(WalkError(directoryID: stack[top].parentID, name: task.name, errno: errno, operation: .openDirectory))
            }
        }
        return true
    }

    /// The frame of a listing just handed over: a task for each subdirectory to enter,
    /// offered to the listers last first, so the first subdirectory is read first.
    private func frame<D: WalkDelegate>(_ listed: ListedDirectory, handle: SharedHandle, pool: ListerPool, delegate: inout D) -> Frame {
        let listing = listed.listing
        var tasks: [ListingTask] = []
        listing.names.withUnsafeBytes { names in
            func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            }
            // In name order, not readdir's: the walk (and so the log) does not depend on
            // the order a filesystem returns names in, or on whether they came from the index.
            let subdirectories = listing.entries.filter { $0.canDescend && $0.directoryID != 0 }
                .sorted { name($0).lexicographicallyPrecedes(name($1)) }
            for entry in subdirectories {
                let name = Array(name(entry))
                var context: DirectoryRules?
                if let rules, let parent = listed.context {
                    context = name.withUnsafeBytes { rules.child(of: parent, name: $0, filesAccepted: entry.filesAccepted) }
                }
                // The directory's metadata is what its parent's fstatat saw: no fstat per directory.
                tasks.append(ListingTask(parent: handle, name: name, id: entry.directoryID, stat: entry.stat, context: context,
                                         known: delegate.knownListing(of: entry.directoryID, stat: entry.stat)))
            }
        }
        handle.expect(tasks.count, fileSystem)
        pool.offer(tasks)
        return Frame(names: listing.names, tasks: tasks, parentID: listing.directoryID)
    }

    /// Opens and reads one subdirectory (on whichever thread gets to it first).
    private static func run(_ task: ListingTask, fs: FS, device: UInt64, rules: CompiledRules?) -> ListingOutcome {
        let opened: Result<DirectoryHandle, Errno> = (task.name + [0]).withUnsafeBufferPointer { p in
            do throws(Errno) {
                return .success(try fs.openDirectory(task.parent.handle, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)))
            } catch {
                return .failure(error)
            }
        }
        task.parent.release(fs)
        switch opened {
        case let .success(handle):
            return .opened(handle, list(handle, id: task.id, stat: task.stat, device: device, context: task.context, known: task.known,
                                        rules: rules, fs: fs))
        case let .failure(errno):
            return .failed(errno)
        }
    }

    /// Reads (or takes from `known`), stats and filters one directory.
    private static func list(_ handle: DirectoryHandle, id: UInt64, stat: EntryStat, device: UInt64, context: DirectoryRules?,
                             known: KnownListing?, rules: CompiledRules?, fs: FS) -> ListedDirectory {
        var listing = DirectoryListing(directoryID: id, stat: stat)
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
        } else {
            do throws(Errno) {
                try fs.readDirectory(handle) { name, length in
                    starts.append((Int32(listing.names.count), Int32(length)))
                    listing.names.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length + 1))
                }
            } catch {
                listing.errors.append(WalkError(directoryID: id, name: [], errno: error, operation: .readDirectory))
            }
        }
        listing.entries.reserveCapacity(starts.count)
        var context = context
        if let knownStats, knownStats.count == starts.count {
            for ((start, length), st) in zip(starts, knownStats) {
                listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                   canDescend: st.isDirectory && st.device == device))
            }
            applyRules(&listing, handle, &context, rules: rules, fs: fs)
            return ListedDirectory(listing: canonical(listing), context: context)
        }
        listing.names.withUnsafeBytes { names in
            for (start, length) in starts {
                let name = names.baseAddress!.advanced(by: Int(start)).assumingMemoryBound(to: CChar.self)
                do throws(Errno) {
                    let st = try fs.stat(handle, name)
                    listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                       canDescend: st.isDirectory && st.device == device))
                } catch {
                    listing.errors.append(WalkError(directoryID: id,
                                                    name: Array(names[Int(start)..<Int(start + length)]),
                                                    errno: error, operation: .stat))
                }
            }
        }
        if known != nil && listing.errors.contains(where: { $0.errno == .noSuchFileOrDirectory }) {
            // A name the directory's mtime vouched for is gone: read the directory after all.
            return list(handle, id: id, stat: stat, device: device, context: context, known: nil, rules: rules, fs: fs)
        }
        applyRules(&listing, handle, &context, rules: rules, fs: fs)
        return ListedDirectory(listing: canonical(listing), context: context)
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
    private static func applyRules(_ listing: inout DirectoryListing, _ handle: DirectoryHandle, _ context: inout DirectoryRules?,
                                   rules: CompiledRules?, fs: FS) {
        guard let rules, var ctx = context else { return }
        listing.names.withUnsafeBytes { names in
            func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            }
            if rules.ruleSet.gitignore {
                var hasGit = false, hasIgnoreFile = false
                for e in listing.entries where e.nameLength == 4 || e.nameLength == 10 {
                    let n = name(e)
                    if n.elementsEqual(dotGitName) { hasGit = isRepository(e.stat, handle, fs: fs) }
                    if e.stat.isRegularFile && n.elementsEqual(dotGitignoreName) { hasIgnoreFile = true }
                }
                if hasGit || hasIgnoreFile {
                    rules.enter(&ctx, hasGit: hasGit, hasIgnoreFile: hasIgnoreFile) { relative in
                        (relative + [0]).withUnsafeBufferPointer { p in
                            try? fs.readFile(handle, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
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
    }


    /// Whether the entry `.git` of this directory is a repository, as git requires of the
    /// top of a work tree: a directory with `HEAD`, `objects/` and `refs/`, or a file
    /// `gitdir: PATH` (worktrees, submodules).
    private static func isRepository(_ st: EntryStat, _ handle: DirectoryHandle, fs: FS) -> Bool {
        func probe(_ path: String, directory: Bool) -> Bool {
            path.withCString { p in
                guard let found = try? fs.stat(handle, p) else { return false }
                return directory ? found.isDirectory : true
            }
        }
        if st.isDirectory {
            return probe(".git/HEAD", directory: false) && probe(".git/objects", directory: true) && probe(".git/refs", directory: true)
        }
        guard st.isRegularFile, let contents = try? ".git".withCString({ try fs.readFile(handle, $0) }) else { return false }
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
