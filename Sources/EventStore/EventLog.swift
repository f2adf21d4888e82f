import Events
package import LMDB

#if canImport(Glibc)
    import Glibc
#endif

/// What a crash of the machine (power loss, kernel panic) can take from a database being
/// written. A crash of evindex alone never loses a commit: committed pages are in the
/// page cache. Docs/ARCHITECTURE.md, "Durability".
public enum Durability: String, Sendable, CaseIterable {
    /// Every commit is on disk (data and meta page) before the next one begins: nothing
    /// committed is lost.
    case commit
    /// A commit flushes its data but not its meta page (`MDB_NOMETASYNC`): the last commit
    /// can be undone (the run resumes from the one before); the database stays consistent.
    case batch
}

/// The append-only event log on LMDB, with the runs table and the database's metadata.
///
/// Key layout (named databases of one environment):
/// - `log`:  sequence of its first event (8 bytes big-endian) → a block of events
///   (Docs/EVENTS.md; a database of schema 1 also holds one-event records)
/// - `runs`: run id (4 bytes big-endian) → `RunRecord`
/// - `meta`: UTF-8 name → value (the schema version, counters)
/// - `snapshots`: run id (4 bytes big-endian) + sequence (8 bytes big-endian) → job state
public final class EventLog: Sendable {
    package let environment: Environment
    public let directory: String
    let log: Database
    let runs: Database
    let meta: Database
    let snapshots: Database

    /// The schema version of a database this build creates and the newest it reads.
    /// 2: the log in blocks, the file-path view one listing per directory. 3: metadata
    /// with blocks, links, owner and group; the directory-size view with du's disk and
    /// apparent bytes, and the `links` view. 4: the name index (`names`). A database of an
    /// older schema keeps its log
    /// (its records are read as they are); its views are rebuilt from the log before it is
    /// used (`SchemaUpgrade` in Indexing), and its next rescan fills in what old events lack.
    public static let schemaVersion: UInt64 = 4
    /// The schema version stored in the database when it was opened.
    public let storedSchema: UInt64

    /// Where the database lives: `--db`, else `$EVINDEX_DB`, else `$XDG_DATA_HOME/evindex`,
    /// else `~/.local/share/evindex`.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let db = environment["EVINDEX_DB"], !db.isEmpty { return db }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/evindex" }
        let home = environment["HOME"] ?? getpwuid(getuid()).map { String(cString: $0.pointee.pw_dir) } ?? "."
        return home + "/.local/share/evindex"
    }

    /// Opens the database in `directory`.
    ///
    /// - Parameter create: create the directory and the database when missing (for `run`);
    ///   read-only commands pass false and get `.missing` instead.
    /// - Throws: `StoreError`: not writable, not a database, written by a newer schema.
    /// - Parameter initialMapSize: the first size of the memory map; it doubles whenever
    ///   a write finds it full.
    /// - Parameter upgrading: open a database of an older schema (the caller upgrades it);
    ///   otherwise one is refused with a message saying what upgrades it.
    /// - Parameter readOnly: open it for reading only (`MDB_RDONLY`), as the read commands
    ///   do: a database on a read-only filesystem or owned by another user can be read.
    ///   When `lock.mdb` cannot be opened for writing, without LMDB's lock (`MDB_NOLOCK`):
    ///   the read is then not protected from a run writing at the same time.
    public init(
        directory: String, create: Bool, initialMapSize: Int = 1 << 34, durability: Durability = .commit,
        upgrading: Bool = false, readOnly: Bool = false
    ) throws {
        self.directory = directory
        if create {
            try Self.prepareDirectory(directory)
        } else {
            // Read-only commands never create a database where there is none.
            if access(directory + "/data.mdb", F_OK) != 0 {
                throw StoreError(.missing, "no evindex database at \(directory) (run `evindex run PATH` first)")
            }
        }
        // Before LMDB maps it: a cut-short file would crash every command with SIGBUS.
        if let problem = DatabaseFile.problem(directory: directory) { throw StoreError(.corrupt, problem) }
        var options = Environment.Options()
        options.initialMapSize = initialMapSize
        options.noMetaSync = durability == .batch
        options.readOnly = readOnly && !create
        do {
            do {
                environment = try Environment(path: directory, options: options)
            } catch let error as LMDBError where options.readOnly && (error.rawValue == EACCES || error.rawValue == EROFS) {
                // LMDB opens `lock.mdb` for writing even to read (it skips it itself only on
                // a read-only filesystem).
                options.noLock = true
                environment = try Environment(path: directory, options: options)
            }
        } catch let error as LMDBError {
            if !options.readOnly, let full = StoreError.diskFullMessage(directory, error) { throw StoreError(.lmdb, full) }
            throw StoreError(
                error == .invalid || error == .versionMismatch ? .notADatabase : .lmdb,
                "\(directory) is not a usable evindex database: \(error.message)")
        }
        do {
            let open = { (txn: Transaction) -> (Database, Database, Database, Database, UInt64) in
                let log = try txn.openDatabase("log", create: create)
                let runs = try txn.openDatabase("runs", create: create)
                let meta = try txn.openDatabase("meta", create: create)
                let snapshots = try txn.openDatabase("snapshots", create: create)
                var stored = Self.schemaVersion
                if let v = try Self.metaValue(txn, meta, "schema") {
                    stored = v
                    if v > Self.schemaVersion {
                        throw StoreError(
                            .newerSchema,
                            "the database at \(directory) has schema version \(v), newer than this evindex reads (\(Self.schemaVersion)); upgrade evindex"
                        )
                    }
                    if v < Self.schemaVersion && !create && !upgrading {
                        throw StoreError(
                            .olderSchema,
                            "the database at \(directory) was written by an older evindex (schema \(v)); the next `evindex run`, `replay` or `verify` rebuilds its views from its log"
                        )
                    }
                } else if create {
                    try Self.setMetaValue(txn, meta, "schema", Self.schemaVersion)
                }
                return (log, runs, meta, snapshots, stored)
            }
            // Readers open in a read transaction: they never wait for a running writer.
            (log, runs, meta, snapshots, storedSchema) = create ? try environment.write(open) : try environment.read(open)
        } catch LMDBError.notFound {
            throw StoreError(.missing, "no evindex database at \(directory) (run `evindex run PATH` first)")
        } catch let error as LMDBError {
            if create, let full = StoreError.diskFullMessage(directory, error) { throw StoreError(.lmdb, full) }
            throw StoreError(
                error == .corrupted || error == .invalid ? .notADatabase : .lmdb,
                "\(directory) is not a usable evindex database: \(error.message)")
        }
    }

    /// Creates the database directory when missing and checks it can be written.
    public static func prepareDirectory(_ directory: String) throws {
        var st = stat()
        if stat(directory, &st) != 0 {
            try makeDirectories(directory)
        } else if st.st_mode & S_IFMT != S_IFDIR {
            throw StoreError(.notWritable, "database path \(directory) is not a directory")
        }
        if access(directory, W_OK) != 0 {
            throw StoreError(.notWritable, "cannot write the database directory \(directory): \(String(cString: strerror(errno)))")
        }
    }

    private static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw StoreError(.notWritable, "cannot create the database directory \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: - Metadata

    static func metaValue(_ txn: Transaction, _ meta: Database, _ name: String) throws -> UInt64? {
        try Array(name.utf8).withUnsafeBytes { key in
            try txn.get(meta, key: key) { v -> UInt64? in
                v.count == 8 ? UInt64(bigEndian: v.loadUnaligned(as: UInt64.self)) : nil
            } ?? nil
        }
    }

    static func setMetaValue(_ txn: Transaction, _ meta: Database, _ name: String, _ value: UInt64) throws {
        var v = value.bigEndian
        try Array(name.utf8).withUnsafeBytes { key in
            try withUnsafeBytes(of: &v) { try txn.put(meta, key: key, value: $0) }
        }
    }

    /// A counter or setting stored in `meta`.
    package func metaValue(_ txn: Transaction, _ name: String) throws -> UInt64? { try Self.metaValue(txn, meta, name) }
    package func setMetaValue(_ txn: Transaction, _ name: String, _ value: UInt64) throws {
        try Self.setMetaValue(txn, meta, name, value)
    }

    // MARK: - Log

    /// The sequence number of the last event, 0 for an empty log.
    package func lastSequence(_ txn: Transaction) throws -> UInt64 {
        try txn.withCursor(log) { cursor in
            guard let (key, value) = try cursor.last() else { return 0 }
            let first = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            // The next sequence is taken from here: a damaged count must not be believed.
            try RecordDecoder.verify(sequence: first, value: value)
            guard let count = BlockFormat.count(value), count > 0 else { return first }
            return first &+ UInt64(count) &- 1
        }
    }

    /// Stores a finished block under the sequence of its first event, which must be above
    /// every stored one.
    @inline(__always)
    package func appendBlock(_ txn: Transaction, firstSequence: UInt64, value: UnsafeRawBufferPointer) throws {
        var key = RecordFormat.key(firstSequence)
        try withUnsafeBytes(of: &key) { k in try txn.put(log, key: k, value: value, flags: .append) }
    }

    /// Calls `body` with each event from sequence `from` through `through`, in order, until
    /// it returns false: its sequence, run, time and the event. Events whose type is in
    /// `building` (a mask of `1 << type`) are built, the others handed out as `.unbuilt`; names stay in the stored block, valid only inside `body`.
    /// Reads version-1 records and blocks alike. The one way events leave the log.
    ///
    /// - Throws: `DecodeError` naming the sequence of a corrupt or newer record or block.
    package func forEach(
        _ txn: Transaction, from: UInt64 = 1, through: UInt64 = .max, building: UInt64 = .max,
        _ body: (UInt64, UInt32, Int64, LogItem) throws -> Bool
    ) throws {
        try Self.forEach(txn, log: log, from: from, through: through, building: building, body)
    }

    /// `forEach` for a reader that opened the `log` database itself (the views).
    package static func forEach(
        _ txn: Transaction, log: Database, from: UInt64 = 1, through: UInt64 = .max,
        building: UInt64 = .max, _ body: (UInt64, UInt32, Int64, LogItem) throws -> Bool
    ) throws {
        try forEachStoredValue(txn, log: log, from: from, through: through) { first, value in
            if value.first == RecordFormat.singleRecordVersion {
                guard first >= from else { return true }
                let record = try RecordDecoder.decode(sequence: first, value: value)
                let type = record.event.type
                guard building & (1 << UInt64(type.rawValue)) != 0 else {
                    return try body(first, record.run, record.timeMs, .unbuilt(type))
                }
                if case let .entryCreated(parent, name, m) = record.event {
                    return try name.withUnsafeBytes { try body(first, record.run, record.timeMs, .created(parent: parent, name: $0, metadata: m)) }
                }
                return try body(first, record.run, record.timeMs, .other(record.event))
            }
            var block = try BlockReader(firstSequence: first, value: value)
            while true {
                let seq = block.sequence
                // Stop before decoding what lies past the range.
                if seq > through { return false }
                guard let item = try block.next(building: building) else { return true }
                if seq < from { continue }
                if try !body(seq, block.run, block.timeMs, item) { return false }
            }
        }
    }

    /// `forEach` for the listings: each `EntryCreated` from `from` through `through` (its
    /// parent, name and metadata, the name valid only inside `body`) until it returns false;
    /// the other events are read past, never built. The one hot-path variant of the
    /// iterator (`BlockReader.forEachCreated` says why).
    package static func forEachCreated(
        _ txn: Transaction, log: Database, from: UInt64, through: UInt64,
        _ body: (UInt64, UnsafeRawBufferPointer, EntryMetadata) throws -> Bool
    ) throws {
        try forEachStoredValue(txn, log: log, from: from, through: through) { first, value in
            if value.first == RecordFormat.singleRecordVersion {
                guard first >= from else { return true }
                guard case let .entryCreated(parent, name, m) = try RecordDecoder.decode(sequence: first, value: value).event else {
                    return true
                }
                return try name.withUnsafeBytes { try body(parent, $0, m) }
            }
            var block = try BlockReader(firstSequence: first, value: value)
            return try block.forEachCreated(from: from, through: through, body)
        }
    }

    /// The stored values holding events `from` through `through`, in order, until `body`
    /// returns false.
    static func forEachStoredValue(
        _ txn: Transaction, log: Database, from: UInt64, through: UInt64,
        _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        // A directory's listing in the file-path view starts where a block starts and
        // mostly ends in it: one look-up, no cursor.
        if through != .max {
            var key = RecordFormat.key(from)
            let whole = try withUnsafeBytes(of: &key) { k in
                try txn.get(log, key: k) { value -> Bool in
                    guard let count = BlockFormat.count(value), from &+ UInt64(count) > through else { return false }
                    _ = try body(from, value)
                    return true
                }
            }
            if whole == true { return }
        }
        try forEachStoredValue(txn, log: log, from: from) { first, value in
            first <= through ? try body(first, value) : false
        }
    }

    /// The options (the rules text) a run's `JobStarted` recorded; nil if it is missing.
    package func jobOptions(_ txn: Transaction, run: RunRecord) throws -> String? {
        var options: String?
        try forEach(txn, from: run.firstSequence, through: run.firstSequence) { _, _, _, item in
            if case let .other(.jobStarted(_, _, o, _, _)) = item { options = o }
            return false
        }
        return options
    }

    /// Calls `body` with each stored value (a block, or a version-1 record) and the
    /// sequence it is stored under, from the one holding `from` on, without decoding.
    package func forEachStoredValue(
        _ txn: Transaction, from: UInt64 = 1,
        _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try Self.forEachStoredValue(txn, log: log, from: from, body)
    }

    static func forEachStoredValue(
        _ txn: Transaction, log: Database, from: UInt64,
        _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try txn.withCursor(log) { cursor in
            var start = RecordFormat.key(from)
            var record = try withUnsafeBytes(of: &start) { try cursor.seek(atLeast: $0) }
            // `from` may sit inside the block stored before it.
            if record.map({ UInt64(bigEndian: $0.0.loadUnaligned(as: UInt64.self)) }) != from {
                let previous = record == nil ? try cursor.last() : try cursor.previous()
                if previous != nil { record = previous } else if record != nil { record = try cursor.first() }
            }
            while let (key, value) = record {
                if try !body(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), value) { return }
                record = try cursor.next()
            }
        }
    }

    /// Rewrites the value stored under `sequence` in place. Only for tests of corruption handling.
    package func overwriteForTesting(_ txn: Transaction, sequence: UInt64, value: [UInt8]) throws {
        var key = RecordFormat.key(sequence)
        try withUnsafeBytes(of: &key) { k in try value.withUnsafeBytes { try txn.put(log, key: k, value: $0) } }
    }

    // MARK: - Snapshots

    /// Stores a run's job state as of `sequence` (a SnapshotTaken event's).
    package func putSnapshot(_ txn: Transaction, run: UInt32, sequence: UInt64, state: [UInt8]) throws {
        var key: [UInt8] = []
        withUnsafeBytes(of: run.bigEndian) { key.append(contentsOf: $0) }
        withUnsafeBytes(of: sequence.bigEndian) { key.append(contentsOf: $0) }
        try txn.put(snapshots, key: key, value: state)
    }

    /// The latest snapshot of `run`: its sequence and bytes (valid inside `body`).
    package func latestSnapshot<R>(_ txn: Transaction, run: UInt32, _ body: (UInt64, UnsafeRawBufferPointer) throws -> R) throws -> R? {
        try txn.withCursor(snapshots) { cursor in
            // The first key past this run's, then one step back.
            var next = (run + 1).bigEndian
            let positioned = try withUnsafeBytes(of: &next) { try cursor.seek(atLeast: $0) }
            let row = positioned == nil ? try cursor.last() : try cursor.previous()
            guard let (key, value) = row, key.count == 12,
                UInt32(bigEndian: key.loadUnaligned(as: UInt32.self)) == run
            else { return nil }
            return try body(UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 4, as: UInt64.self)), value)
        }
    }

    // MARK: - Runs

    package func nextRunID(_ txn: Transaction) throws -> UInt32 {
        try txn.withCursor(runs) { cursor in
            guard let (key, _) = try cursor.last() else { return 1 }
            return UInt32(bigEndian: key.loadUnaligned(as: UInt32.self)) + 1
        }
    }

    package func putRun(_ txn: Transaction, _ run: RunRecord) throws {
        var key = run.id.bigEndian
        try withUnsafeBytes(of: &key) { k in try run.encoded().withUnsafeBytes { try txn.put(runs, key: k, value: $0) } }
    }

    package func run(_ txn: Transaction, id: UInt32) throws -> RunRecord? {
        var key = id.bigEndian
        return try withUnsafeBytes(of: &key) { k in try txn.get(runs, key: k) { try RunRecord(id: id, decoding: $0) } }
    }

    package func allRuns(_ txn: Transaction) throws -> [RunRecord] {
        try txn.withCursor(runs) { cursor in
            var result: [RunRecord] = []
            var row = try cursor.first()
            while let (key, value) = row {
                result.append(try RunRecord(id: UInt32(bigEndian: key.loadUnaligned(as: UInt32.self)), decoding: value))
                row = try cursor.next()
            }
            return result
        }
    }
}
