import CLMDB

/// An error code returned by LMDB, with LMDB's own message.
///
/// Codes are a struct, not an enum, so new codes break no one; `~=` lets callers write
/// `catch LMDBError.notFound`.
package struct LMDBError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    /// MDB_NOTFOUND: key/data pair not found (EOF).
    package static let notFound = LMDBError(rawValue: MDB_NOTFOUND)
    /// MDB_KEYEXIST: key/data pair already exists.
    package static let keyExists = LMDBError(rawValue: MDB_KEYEXIST)
    /// MDB_MAP_FULL: environment mapsize reached.
    package static let mapFull = LMDBError(rawValue: MDB_MAP_FULL)
    /// MDB_MAP_RESIZED: another process grew the map beyond our mapsize.
    package static let mapResized = LMDBError(rawValue: MDB_MAP_RESIZED)
    /// MDB_INVALID: file is not an LMDB file.
    package static let invalid = LMDBError(rawValue: MDB_INVALID)
    /// MDB_CORRUPTED: located page was wrong type.
    package static let corrupted = LMDBError(rawValue: MDB_CORRUPTED)
    /// MDB_VERSION_MISMATCH: environment version mismatch.
    package static let versionMismatch = LMDBError(rawValue: MDB_VERSION_MISMATCH)
    /// MDB_READERS_FULL: environment maxreaders reached.
    package static let readersFull = LMDBError(rawValue: MDB_READERS_FULL)
    /// MDB_DBS_FULL: environment maxdbs reached.
    package static let dbsFull = LMDBError(rawValue: MDB_DBS_FULL)
    /// MDB_BAD_TXN: transaction must abort, has a child, or is invalid.
    package static let badTxn = LMDBError(rawValue: MDB_BAD_TXN)

    /// LMDB's text for the code (`mdb_strerror`), which also covers errno values.
    package var message: String { String(cString: mdb_strerror(rawValue)) }
    package var description: String { message }

    package static func ~= (lhs: LMDBError, rhs: any Error) -> Bool {
        (rhs as? LMDBError)?.rawValue == lhs.rawValue
    }
}

/// Every LMDB return code passes through here.
@inline(__always)
func check(_ rc: Int32) throws(LMDBError) {
    if rc != 0 { throw LMDBError(rawValue: rc) }
}
