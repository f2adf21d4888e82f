import CLMDB

#if canImport(Glibc)
    import Glibc
#endif

/// A named database (`MDB_dbi`) inside an environment. Valid for the environment's life.
package struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
}

/// A transaction, reached only inside `Environment.read`/`write`, which end it exactly once.
///
/// Bytes handed out by `get` and cursors point into the map and are valid only until the
/// transaction ends; copy them out to keep them. A class rather than a `~Copyable` struct:
/// Swift 6.3 crashes compiling the retry loop around a noncopyable transaction.
package final class Transaction {
    let txn: OpaquePointer
    package let isReadOnly: Bool
    private var isFinished = false

    /// Read transactions hold the environment's readers lock while their snapshot is open.
    private let readersLock: UnsafeMutablePointer<pthread_rwlock_t>?
    private var isReset = false

    init(env: Environment, readOnly: Bool) throws(LMDBError) {
        var txnp: OpaquePointer?
        if readOnly { pthread_rwlock_rdlock(env.readersLock) }
        let rc = mdb_txn_begin(env.env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txnp)
        if rc != 0 {
            if readOnly { pthread_rwlock_unlock(env.readersLock) }
            throw LMDBError(rawValue: rc)
        }
        self.txn = txnp!
        self.isReadOnly = readOnly
        self.readersLock = readOnly ? env.readersLock : nil
    }

    private func releaseReadersLock() {
        if let readersLock, !isReset { pthread_rwlock_unlock(readersLock) }
    }

    func commit() throws(LMDBError) {
        precondition(!isFinished, "transaction already ended")
        isFinished = true
        defer { releaseReadersLock() }
        if isReset {
            mdb_txn_abort(txn)
            return
        }
        try check(mdb_txn_commit(txn))
    }

    func abort() {
        precondition(!isFinished, "transaction already ended")
        isFinished = true
        mdb_txn_abort(txn)
        releaseReadersLock()
    }

    deinit {
        if !isFinished {
            mdb_txn_abort(txn)
            releaseReadersLock()
        }
    }

    /// Releases a read transaction's snapshot (and the map) until `renew()`: call it before
    /// blocking, so the writer can grow the map meanwhile.
    ///
    /// Corresponding C function: `mdb_txn_reset`.
    package func reset() {
        precondition(isReadOnly && !isFinished, "only an open read transaction can be reset")
        guard !isReset else { return }
        mdb_txn_reset(txn)
        isReset = true
        pthread_rwlock_unlock(readersLock!)
    }

    /// Takes the newest committed snapshot after `reset()`.
    ///
    /// Corresponding C function: `mdb_txn_renew`.
    package func renew() throws(LMDBError) {
        precondition(isReadOnly && !isFinished && isReset, "only a reset read transaction can be renewed")
        pthread_rwlock_rdlock(readersLock!)
        let rc = mdb_txn_renew(txn)
        if rc != 0 {
            pthread_rwlock_unlock(readersLock!)
            throw LMDBError(rawValue: rc)
        }
        isReset = false
    }

    /// Moves a read transaction to the newest committed snapshot.
    package func refresh() throws(LMDBError) {
        reset()
        try renew()
    }

    /// Whether `reset()` released the snapshot.
    package var isSnapshotReleased: Bool { isReset }

    package func openDatabase(_ name: String, create: Bool) throws(LMDBError) -> Database {
        var dbi: MDB_dbi = 0
        try check(mdb_dbi_open(txn, name, create ? UInt32(MDB_CREATE) : 0, &dbi))
        return Database(dbi: dbi)
    }

    /// Looks up `key` and passes the value's bytes to `body`; `nil` when absent.
    ///
    /// Corresponding C function: `mdb_get`.
    package func get<R>(_ db: Database, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(txn, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return try body(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Looks up `key` and copies the value out.
    package func get(_ db: Database, key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try get(db, key: k) { Array($0) } }
    }

    /// Flags for `put`.
    package struct PutFlags: OptionSet, Sendable {
        package let rawValue: UInt32
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        /// MDB_APPEND: the key is greater than every key in the database (fast path).
        package static let append = PutFlags(rawValue: UInt32(MDB_APPEND))
        /// MDB_NOOVERWRITE: fail with `.keyExists` if the key is present.
        package static let noOverwrite = PutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    }

    /// Stores `value` under `key`.
    ///
    /// Corresponding C function: `mdb_put`.
    package func put(_ db: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: PutFlags = []) throws(LMDBError) {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_put(txn, db.dbi, &k, &v, flags.rawValue))
    }

    package func put(_ db: Database, key: [UInt8], value: [UInt8], flags: PutFlags = []) throws(LMDBError) {
        let result = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in Result { () throws(LMDBError) in try put(db, key: k, value: v, flags: flags) } }
        }
        try result.get()
    }

    /// Deletes `key`; returns false when it was absent.
    ///
    /// Corresponding C function: `mdb_del`.
    @discardableResult
    package func delete(_ db: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = mdb_del(txn, db.dbi, &k, nil)
        if rc == MDB_NOTFOUND { return false }
        try check(rc)
        return true
    }

    @discardableResult
    package func delete(_ db: Database, key: [UInt8]) throws(LMDBError) -> Bool {
        try key.withUnsafeBytes { k in Result { () throws(LMDBError) in try delete(db, key: k) } }.get()
    }

    /// Removes every record of `db`, keeping the database.
    package func clear(_ db: Database) throws(LMDBError) {
        try check(mdb_drop(txn, db.dbi, 0))
    }

    /// Number of records in `db`.
    package func count(_ db: Database) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(txn, db.dbi, &stat))
        return stat.ms_entries
    }

    /// Runs `body` with a cursor over `db`; the cursor is closed when it returns.
    package func withCursor<R>(_ db: Database, _ body: (inout Cursor) throws -> R) throws -> R {
        var cursorp: OpaquePointer?
        try check(mdb_cursor_open(txn, db.dbi, &cursorp))
        var cursor = Cursor(cursor: cursorp!)
        defer { mdb_cursor_close(cursorp) }
        return try body(&cursor)
    }
}

@available(*, unavailable)
extension Transaction: Sendable {}

/// A position in a database, valid inside its transaction's `withCursor` closure.
package struct Cursor {
    let cursor: OpaquePointer

    /// A key and value read at the cursor; their bytes live until the transaction ends.
    package typealias Record = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    private func get(_ op: MDB_cursor_op, key: UnsafeRawBufferPointer? = nil) throws(LMDBError) -> Record? {
        var k = MDB_val(mv_size: key?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: key?.baseAddress))
        var v = MDB_val()
        let rc = mdb_cursor_get(cursor, &k, &v, op)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return (
            UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
            UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
        )
    }

    package mutating func first() throws(LMDBError) -> Record? { try get(MDB_FIRST) }
    package mutating func last() throws(LMDBError) -> Record? { try get(MDB_LAST) }
    package mutating func next() throws(LMDBError) -> Record? { try get(MDB_NEXT) }
    package mutating func previous() throws(LMDBError) -> Record? { try get(MDB_PREV) }
    /// Positions at the first key ≥ `key` (`MDB_SET_RANGE`).
    package mutating func seek(atLeast key: UnsafeRawBufferPointer) throws(LMDBError) -> Record? {
        try get(MDB_SET_RANGE, key: key)
    }
    package mutating func seek(atLeast key: [UInt8]) throws(LMDBError) -> Record? {
        try key.withUnsafeBytes { k in Result { () throws(LMDBError) in try get(MDB_SET_RANGE, key: k) } }.get()
    }

    /// Deletes the record at the cursor.
    package mutating func deleteCurrent() throws(LMDBError) {
        try check(mdb_cursor_del(cursor, 0))
    }

    /// Stores a record through the cursor (`mdb_cursor_put`); fastest for keys in order.
    package mutating func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: Transaction.PutFlags = []) throws(LMDBError) {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_cursor_put(cursor, &k, &v, flags.rawValue))
    }
}
