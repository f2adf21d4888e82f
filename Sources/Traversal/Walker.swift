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
/// metadata (`fstatat` relative to the directory), hand the listing over, then descend
/// into subdirectories. Symlinks are recorded and never followed; directories on another
/// device are recorded and not entered. Only the descriptors of the current path are
/// open, so depth is limited by the descriptor limit, not by PATH_MAX.
public struct Walker<FS: FileSystem> {
    public let fileSystem: FS
    /// Which entries are indexed; nil indexes everything.
    public let rules: CompiledRules?

    public init(fileSystem: FS, rules: CompiledRules? = nil) {
        self.fileSystem = fileSystem
        self.rules = rules
    }

    private struct Frame {
        var handle: DirectoryHandle
        var names: [UInt8]
        /// (nameStart, directoryID, stat, filesAccepted) of the subdirectories still to enter.
        var subdirectories: [(Int32, UInt64, EntryStat, Bool)]
        var next = 0
        /// The id of this directory, which its subdirectories' errors are filed under.
        var parentID: UInt64 = 0
        /// The rules in force in this directory.
        var context: DirectoryRules?
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
        var stack: [Frame] = []
        defer { for frame in stack { fileSystem.close(frame.handle) } }
        let rootContext = rules?.rootContext(isDirectory: Self.isDirectory, exists: Self.exists, readFile: Self.readFile)
        stack.append(try list(rootHandle, id: rootID, stat: rootStat, device: rootStat.device, context: rootContext,
                              delegate: &delegate))

        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].subdirectories.count else {
                fileSystem.close(stack.removeLast().handle)
                continue
            }
            if delegate.shouldStop { return false }
            let (nameStart, childID, stat, filesAccepted) = stack[top].subdirectories[stack[top].next]
            stack[top].next += 1
            // The directory's metadata is what its parent's fstatat saw: no fstat per directory.
            let opened: Result<DirectoryHandle, Errno> = stack[top].names.withUnsafeBytes { names in
                let name = names.baseAddress!.advanced(by: Int(nameStart)).assumingMemoryBound(to: CChar.self)
                do throws(Errno) {
                    return .success(try fileSystem.openDirectory(stack[top].handle, name))
                } catch {
                    return .failure(error)
                }
            }
            switch opened {
            case let .success(handle):
                var context: DirectoryRules?
                if let rules, let parent = stack[top].context {
                    context = stack[top].names.withUnsafeBytes { names in
                        var end = Int(nameStart)
                        while names[end] != 0 { end += 1 }
                        return rules.child(of: parent, name: UnsafeRawBufferPointer(rebasing: names[Int(nameStart)..<end]),
                                           filesAccepted: filesAccepted)
                    }
                }
                stack.append(try list(handle, id: childID, stat: stat, device: rootStat.device, context: context,
                                      delegate: &delegate))
            case let .failure(errno):
                let name = Self.name(in: stack[top].names, at: nameStart)
                try delegate.walkFailed(WalkError(directoryID: stack[top].parentID, name: name,
                                                  errno: errno, operation: .openDirectory))
            }
        }
        return true
    }

    private static func name(in names: [UInt8], at start: Int32) -> [UInt8] {
        var end = Int(start)
        while names[end] != 0 { end += 1 }
        return Array(names[Int(start)..<end])
    }

    /// Reads, stats and hands over one directory; returns its frame for the descent.
    private func list<D: WalkDelegate>(_ handle: DirectoryHandle, id: UInt64, stat: EntryStat, device: UInt64,
                                       context: DirectoryRules?, delegate: inout D, reuse: Bool = true) throws -> Frame {
        var listing = DirectoryListing(directoryID: id, stat: stat)
        var starts: [(Int32, Int32)] = []
        var reused = false
        var knownStats: [EntryStat]?
        if reuse, let known = delegate.knownListing(of: id, stat: stat) {
            listing.names = known.names
            var start = 0
            for (i, byte) in known.names.enumerated() where byte == 0 {
                starts.append((Int32(start), Int32(i - start)))
                start = i + 1
            }
            reused = true
            knownStats = known.stats
        } else {
            do throws(Errno) {
                try fileSystem.readDirectory(handle) { name, length in
                    starts.append((Int32(listing.names.count), Int32(length)))
                    listing.names.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length + 1))
                }
            } catch {
                listing.errors.append(WalkError(directoryID: id, name: [], errno: error, operation: .readDirectory))
            }
        }
        listing.entries.reserveCapacity(starts.count)
        if let knownStats, knownStats.count == starts.count {
            for ((start, length), st) in zip(starts, knownStats) {
                listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                   canDescend: st.isDirectory && st.device == device))
            }
            var context = context
            applyRules(&listing, handle, &context)
            try delegate.directoryListed(&listing)
            return frame(handle, id, listing, context)
        }
        listing.names.withUnsafeBytes { names in
            for (start, length) in starts {
                let name = names.baseAddress!.advanced(by: Int(start)).assumingMemoryBound(to: CChar.self)
                do throws(Errno) {
                    let st = try fileSystem.stat(handle, name)
                    listing.entries.append(ListedEntry(nameStart: start, nameLength: length, stat: st, directoryID: 0,
                                                       canDescend: st.isDirectory && st.device == device))
                } catch {
                    listing.errors.append(WalkError(directoryID: id,
                                                    name: Array(names[Int(start)..<Int(start + length)]),
                                                    errno: error, operation: .stat))
                }
            }
        }
        if reused && listing.errors.contains(where: { $0.errno == .noSuchFileOrDirectory }) {
            // A name the directory's mtime vouched for is gone: read the directory after all.
            return try list(handle, id: id, stat: stat, device: device, context: context, delegate: &delegate, reuse: false)
        }
        var context = context
        applyRules(&listing, handle, &context)
        try delegate.directoryListed(&listing)
        return frame(handle, id, listing, context)
    }

    private func frame(_ handle: DirectoryHandle, _ id: UInt64, _ listing: DirectoryListing, _ context: DirectoryRules?) -> Frame {
        var subdirectories: [(Int32, UInt64, EntryStat, Bool)] = []
        for entry in listing.entries where entry.canDescend && entry.directoryID != 0 {
            subdirectories.append((entry.nameStart, entry.directoryID, entry.stat, entry.filesAccepted))
        }
        var frame = Frame(handle: handle, names: listing.names, subdirectories: subdirectories)
        frame.parentID = id
        frame.context = context
        return frame
    }

    // MARK: - Rules

    /// Moves the entries the rules reject from `entries` to `rejected`, after taking this
    /// directory's `.git` and `.gitignore` into its context.
    private func applyRules(_ listing: inout DirectoryListing, _ handle: DirectoryHandle, _ context: inout DirectoryRules?) {
        guard let rules, var ctx = context else { return }
        let fs = fileSystem
        listing.names.withUnsafeBytes { names in
            func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            }
            if rules.ruleSet.gitignore {
                var hasGit = false, hasIgnoreFile = false
                for e in listing.entries where e.nameLength == 4 || e.nameLength == 10 {
                    let n = name(e)
                    if n.elementsEqual(dotGitName) { hasGit = true }
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
        let fd = (path + [0]).withUnsafeBufferPointer { p in
            open(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return try? readAll(fd)
    }
}

private let dotGitName = Array(".git".utf8)
private let dotGitignoreName = Array(".gitignore".utf8)
