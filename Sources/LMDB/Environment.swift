import CLMDB
import CMapGuard

#if canImport(Glibc)
    import Glibc
#endif

/// An LMDB environment: one memory-mapped database directory holding named databases.
///
/// LMDB environments are thread-safe; transactions are not and stay on the thread that
/// began them (the closures below are synchronous). The environment is opened with
/// `MDB_NOTLS` so read transactions do not occupy a reader slot per thread.
package final class Environment: @unchecked Sendable {
    // @unchecked: the MDB_env pointer is safe to share (LMDB documents it as thread-safe);
    // `currentMapSize` is only touched under `resizeLock`.
    let env: OpaquePointer
    private let resizeLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var currentMapSize = 0
    /// Held shared by every open read transaction of this process and exclusively while
    /// the map is resized: LMDB forbids `mdb_env_set_mapsize` while a transaction is open.
    let readersLock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    package let path: String

    /// Options for opening an environment.
    package struct Options: Sendable {
        package var maxDatabases: UInt32 = 32
        package var maxReaders: UInt32 = 126
        /// Address space only: without MDB_WRITEMAP the file grows with the data, not the map.
        package var initialMapSize: Int = 1 << 34
        package var readOnly = false
        /// `MDB_NOLOCK`: no lock file and no reader table. Only for a reader that cannot
        /// write `lock.mdb` (another user's database): a writer cannot see it, and may
        /// reuse pages it is reading.
        package var noLock = false
        /// `MDB_NOSYNC`: commits are not flushed; a crash can lose recent commits.
        package var noSync = false
        /// `MDB_NOMETASYNC`: a commit flushes its data but not the meta page, which the
        /// next commit (or the system) flushes; a crash of the machine can undo the last
        /// commit, never damage the database.
        package var noMetaSync = false
        package init() {}
    }

    /// Opens (creating if needed) the environment in directory `path`.
    ///
    /// - Throws: `LMDBError` with LMDB's message, e.g. `.invalid` for a file that is not LMDB.
    package init(path: String, options: Options = Options()) throws {
        let opened = try Self.open(path: path, options: options)
        self.env = opened.env
        self.currentMapSize = opened.mapSize
        self.path = path
        pthread_mutex_init(resizeLock, nil)
        pthread_rwlock_init(readersLock, nil)
        guardMap()
    }

    private static func open(path: String, options: Options) throws(LMDBError) -> (env: OpaquePointer, mapSize: Int) {
        var envp: OpaquePointer?
        try check(mdb_env_create(&envp))
        guard let env = envp else { throw LMDBError(rawValue: ENOMEM) }
        do {
            try check(mdb_env_set_maxdbs(env, options.maxDatabases))
            try check(mdb_env_set_maxreaders(env, options.maxReaders))
            try check(mdb_env_set_mapsize(env, options.initialMapSize))
            var flags = UInt32(MDB_NOTLS) | UInt32(MDB_NORDAHEAD)
            if options.readOnly { flags |= UInt32(MDB_RDONLY) }
            if options.noLock { flags |= UInt32(MDB_NOLOCK) }
            if options.noSync { flags |= UInt32(MDB_NOSYNC) }
            if options.noMetaSync { flags |= UInt32(MDB_NOMETASYNC) }
            if !options.readOnly && !options.noLock { try reserveLockFile(path, maxReaders: options.maxReaders) }
            try check(mdb_env_open(env, path, flags, 0o644))
            // Another process may have grown the map: adopt the larger of the two.
            var info = MDB_envinfo()
            try check(mdb_env_info(env, &info))
            return (env, info.me_mapsize)
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    /// Allocates the blocks of `lock.mdb` before LMDB maps it. LMDB sizes the lock file with
    /// `ftruncate` and writes its header through the map: on a full disk (or a full tmpfs)
    /// the file is a hole and that first write is a SIGBUS. Reserved here, a full disk is
    /// ENOSPC instead, before anything is written. A filesystem without `fallocate` is left
    /// to LMDB.
    private static func reserveLockFile(_ directory: String, maxReaders: UInt32) throws(LMDBError) {
        let fd = Glibc.open(directory + "/lock.mdb", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }  // LMDB reports it, in its words
        defer { close(fd) }
        // LMDB's size: a 64-byte slot per reader after a 128-byte header, in whole pages.
        let bytes = (Int(maxReaders) * 64 + 128 + 4095) / 4096 * 4096
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        if rc == ENOSPC || rc == EDQUOT { throw LMDBError(rawValue: rc) }
    }

    deinit {
        evindex_unguard_mapping(UnsafeRawPointer(env))
        mdb_env_close(env)
        pthread_mutex_destroy(resizeLock)
        resizeLock.deallocate()
        pthread_rwlock_destroy(readersLock)
        readersLock.deallocate()
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(resizeLock)
        defer { pthread_mutex_unlock(resizeLock) }
        return try body()
    }

    /// Whether a commit flushes the meta page too (neither `MDB_NOMETASYNC` nor `MDB_NOSYNC`).
    package var flushesMetaPageOnCommit: Bool {
        var flags: UInt32 = 0
        mdb_env_get_flags(env, &flags)
        return flags & UInt32(MDB_NOMETASYNC | MDB_NOSYNC) == 0
    }

    /// The current size of the memory map in bytes.
    package var mapSize: Int { locked { currentMapSize } }

    /// Doubles the map. LMDB requires that no transaction of this process is active.
    func grow() throws {
        pthread_rwlock_wrlock(readersLock)
        defer { pthread_rwlock_unlock(readersLock) }
        try locked {
            let newSize = currentMapSize * 2
            try check(mdb_env_set_mapsize(env, newSize))
            currentMapSize = newSize
        }
        guardMap()
    }

    /// Unmaps, from this process only, the database pages it has read: they stay in the
    /// page cache and are mapped again on the next access. A pass that reads a whole
    /// database (diff, a fold into scratch views) calls this as it goes, so its resident
    /// memory does not grow with the database. The map is read-only (no `MDB_WRITEMAP`),
    /// so nothing is lost and open transactions stay valid.
    package func releaseMappedPages() {
        guard let (address, length) = mappedRange() else { return }
        _ = madvise(address, length, MADV_DONTNEED)
    }

    /// Where LMDB mapped `data.mdb` in this process: the mapping of that file's inode in
    /// /proc/self/maps (LMDB reports the address only for `MDB_FIXEDMAP`).
    private func mappedRange() -> (UnsafeMutableRawPointer, Int)? {
        var fd: Int32 = -1
        var st = Glibc.stat()
        guard mdb_env_get_fd(env, &fd) == 0, fstat(fd, &st) == 0, let maps = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(maps) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, maps) > 0, let line {
            // start-end perms offset dev inode path
            let text = String(cString: line)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, UInt64(fields[4]) == UInt64(st.st_ino), text.contains("data.mdb") else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start,
                let address = UnsafeMutableRawPointer(bitPattern: start)
            else { continue }
            return (address, Int(end - start))
        }
        return nil
    }

    /// Adopts a map size grown by another process (after `MDB_MAP_RESIZED`).
    func adoptResizedMap() throws {
        pthread_rwlock_wrlock(readersLock)
        defer { pthread_rwlock_unlock(readersLock) }
        try locked {
            try check(mdb_env_set_mapsize(env, 0))
            var info = MDB_envinfo()
            try check(mdb_env_info(env, &info))
            currentMapSize = info.me_mapsize
        }
        guardMap()
    }

    /// How far past its map a read through a damaged node can reach: a leaf's value size
    /// is 32 bits, a node offset 16.
    private static let reachPastMap = (1 << 32) + (1 << 16)

    /// Registers the map (wherever LMDB put it now) with the fault guard: a read past the
    /// end of a damaged `data.mdb` then ends the process with this line, exit status 1,
    /// instead of SIGBUS.
    private func guardMap() {
        guard let (address, length) = mappedRange() else { return }
        let message =
            "evindex: cannot read \(path)/data.mdb: a page lies past the end of the file, or the disk failed; the database is damaged (`evindex verify --db \(path)` says where), restore it from a copy"
        _ = evindex_guard_mapping(UnsafeRawPointer(env), address, length + Self.reachPastMap, message)
    }

    /// Runs `body` in a read-write transaction that commits when it returns and aborts
    /// when it throws.
    ///
    /// When the map is full the transaction is aborted, the map doubled and `body` run
    /// again from the start, so `body` must not keep effects outside the transaction
    /// (or must undo them in `onRetry`).
    /// - Important: Only one write transaction exists at a time per environment; LMDB
    ///   blocks a second writer until the first ends.
    package func write<R>(onRetry: () -> Void = {}, _ body: (Transaction) throws -> R) throws -> R {
        while true {
            let outcome = try attemptWrite(body)
            switch outcome {
            case .done(let result):
                return result
            case .retry(let error):
                onRetry()
                if error == .mapFull { try grow() } else { try adoptResizedMap() }
            }
        }
    }

    private enum WriteOutcome<R> {
        case done(R)
        case retry(LMDBError)
    }

    /// One attempt: the transaction is aborted on any error; map errors ask for a retry.
    private func attemptWrite<R>(_ body: (Transaction) throws -> R) throws -> WriteOutcome<R> {
        let txn = try Transaction(env: self, readOnly: false)
        let result: R
        do {
            result = try body(txn)
        } catch {
            txn.abort()
            if let e = error as? LMDBError, e == .mapFull || e == .mapResized { return .retry(e) }
            throw error
        }
        do {
            try txn.commit()
        } catch {
            if error == .mapFull || error == .mapResized { return .retry(error) }
            throw error
        }
        return .done(result)
    }

    /// Runs `body` in a read-only snapshot of the database.
    package func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        let txn = try beginRead()
        do {
            let result = try body(txn)
            // Commit, not abort: databases opened in this transaction stay open only if it commits.
            try txn.commit()
            return result
        } catch {
            txn.abort()
            throw error
        }
    }

    /// A read transaction the caller keeps across calls (a walker's snapshot of the views):
    /// `refresh()` moves it to the newest committed state cheaply; it ends when released.
    ///
    /// - Important: Use it on one thread at a time; refresh it often, since a snapshot
    ///   holds on to pages the writer would otherwise reuse.
    package func makeReader() throws -> Transaction { try beginRead() }

    private func beginRead() throws -> Transaction {
        for _ in 0..<3 {
            do {
                return try Transaction(env: self, readOnly: true)
            } catch {
                guard error == .mapResized else { throw error }
                try adoptResizedMap()
            }
        }
        return try Transaction(env: self, readOnly: true)
    }

    /// Opens (or with `create`, creates) a named database. Call once at start-up.
    package func openDatabase(_ name: String, create: Bool) throws -> Database {
        if create {
            return try write { txn in try txn.openDatabase(name, create: true) }
        }
        return try read { txn in try txn.openDatabase(name, create: false) }
    }
}
