import Rules

/// Reads one directory of a walk, on whichever thread gets to it first: opens it, takes
/// its names from `getdents64` (or from what the index knows), sorts them, stats each one
/// relative to the directory, applies the rules, and makes a task for each subdirectory
/// the walk may enter.
///
/// One value holds what every read of a walk shares (the file system, the root's device,
/// the rules, the listers' pool), and each thread reading has a copy: a directory read by a
/// lister ahead of the walk is the listing the walk's own thread would have read. Generic
/// over the file system, as the `Walker` is, so that the calls into it are specialized.
struct DirectoryReader<FS: FileSystem>: Sendable {
    let fs: FS
    /// The root's device: a directory on another one is recorded and not entered.
    let device: UInt64
    /// Which entries are indexed; nil indexes everything.
    let rules: WalkRules<FS>?
    let pool: ListerPool<FS>

    /// Rejected wherever it is listed, before the rules see it.
    let leftOut: LeftOutDirectory?

    init(fs: FS, device: UInt64, rules: CompiledRules?, pool: ListerPool<FS>, leftOut: LeftOutDirectory? = nil) {
        self.fs = fs
        self.device = device
        self.rules = rules.map { WalkRules(compiled: $0, fs: fs) }
        self.pool = pool
        self.leftOut = leftOut
    }

    /// Names from which a directory's stats are shared out among the threads.
    static var hugeDirectory: Int { 2048 }

    // MARK: - Listers

    /// One piece of a lister's work (a lister thread's, or the helping thread's between its
    /// own tasks): a subdirectory to read, whose listing then waits in the pool for the
    /// walk, or a chunk of a huge directory's stats.
    func perform(_ work: ListerWork<FS>, lookAhead: inout (any IndexLookAhead)?) {
        switch work {
        case let .listing(task):
            pool.finish(task, run(task, lookAhead: &lookAhead))
        case let .stats(job):
            job.work()
        }
    }

    /// A lister thread: does the pool's work until the pool stops.
    func listUntilStopped(lookAhead: inout (any IndexLookAhead)?) {
        while let work = pool.next() { perform(work, lookAhead: &lookAhead) }
    }

    // MARK: - One directory

    /// Opens and reads one subdirectory (on whichever thread gets to it first), with the
    /// names the delegate gave, or else those the look-ahead finds in the index.
    func run(_ task: ListingTask, lookAhead: inout (any IndexLookAhead)?) -> ListingOutcome {
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
            return .opened(list(handle, stat: task.stat, context: task.context, known: known, indexID: id))
        case let .failure(errno):
            return .failed(errno)
        }
    }

    /// Reads (or takes from `known`), stats and filters one directory, and makes a task
    /// for each subdirectory the walk may enter, in name order (not readdir's: the walk,
    /// and so the log, does not depend on the order a filesystem returns names in, or on
    /// whether they came from the index). The listing's id is the walk's to set.
    func list(
        _ handle: DirectoryHandle, stat: EntryStat, context: DirectoryRules?, known: KnownListing?,
        indexID: UInt64
    ) -> ListedDirectory {
        var listed = read(handle, stat: stat, context: context, known: known)
        listed.indexID = indexID
        // The entries are in name order already. (Read in place, not through a copy of the
        // listing: this function is not always inlined, and a copy retains its four arrays.)
        let subdirectories = listed.listing.entries.indices.filter { listed.listing.entries[$0].canDescend }
        guard !subdirectories.isEmpty else {
            fs.close(handle)
            return listed
        }
        let shared = SharedHandle(handle, subdirectories: subdirectories.count)
        let children = subdirectories.map { index in
            let entry = listed.listing.entries[index]
            var childContext: DirectoryRules?
            if let rules, let parent = listed.context {
                childContext = listed.listing.names.withUnsafeBytes {
                    rules.compiled.child(
                        of: parent, name: UnsafeRawBufferPointer(rebasing: $0[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameLength)]),
                        filesAccepted: entry.filesAccepted)
                }
            }
            // The directory's metadata is what its parent's fstatat saw: no fstat per directory.
            return ListingTask(
                parent: shared, names: listed.listing.names, nameStart: entry.nameStart, nameLength: entry.nameLength,
                entryIndex: index, stat: entry.stat, context: childContext, indexParentID: indexID)
        }
        listed.handle = shared
        listed.children = children
        return listed
    }

    /// Reads (or takes from `known`), stats and filters one directory.
    private func read(_ handle: DirectoryHandle, stat: EntryStat, context: DirectoryRules?, known: KnownListing?) -> ListedDirectory {
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
                listing.entries.append(
                    ListedEntry(
                        nameStart: start, nameLength: length, stat: st, directoryID: 0,
                        canDescend: st.isDirectory && st.device == device))
            }
            leftOut?.reject(from: &listing)
            let outOfDescriptors = rules?.apply(&listing, handle, &context) ?? false
            return ListedDirectory(listing: Self.canonical(listing), context: context, usedIndex: true, outOfDescriptors: outOfDescriptors)
        }
        listing.names.withUnsafeBytes { names in
            func add(_ start: Int32, _ length: Int32, _ result: Result<EntryStat, Errno>) {
                switch result {
                case let .success(st):
                    listing.entries.append(
                        ListedEntry(
                            nameStart: start, nameLength: length, stat: st, directoryID: 0,
                            canDescend: st.isDirectory && st.device == device))
                case let .failure(error):
                    listing.errors.append(
                        WalkError(
                            directoryID: 0,
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
            return read(handle, stat: stat, context: context, known: nil)
        }
        leftOut?.reject(from: &listing)
        let outOfDescriptors = rules?.apply(&listing, handle, &context) ?? false
        return ListedDirectory(listing: Self.canonical(listing), context: context, usedIndex: known != nil, outOfDescriptors: outOfDescriptors)
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
}
