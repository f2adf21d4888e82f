import CLMDB

/// An error code returned by LMDB, with LMDB's own message.
///
/// Codes are a struct, not an enum, so new codes break no one; `~=` lets callers write
/// `catch LMDBError.notFound`.
public struct LMDBError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// MDB_NOTFOUND: key/data pair not found (EOF).
    public static let notFound = LMDBError(rawValue: MDB_NOTFOUND)
    /// MDB_KEYEXIST: key/data pair already exists.
    public static let keyExists = LMDBError(rawValue: MDB_KEYEXIST)
    /// MDB_MAP_FULL: environment mapsize reached.
    public static let mapFull = LMDBError(rawValue: MDB_MAP_FULL)
    /// MDB_MAP_RESIZED: another process grew the map beyond our mapsize.
    public static let mapResized = LMDBError(rawValue: MDB_MAP_RESIZED)
    /// MDB_INVALID: file is not an LMDB file.
    public static let invalid = LMDBError(rawValue: MDB_INVALID)
    /// MDB_CORRUPTED: located page was wrong type.
    public static let corrupted = LMDBError(rawValue: MDB_CORRUPTED)
    /// MDB_VERSION_MISMATCH: environment version mismatch.
    public static let versionMismatch = LMDBError(rawValue: MDB_VERSION_MISMATCH)
    /// MDB_READERS_FULL: environment maxreaders reached.
    public static let readersFull = LMDBError(rawValue: MDB_READERS_FULL)
    /// MDB_DBS_FULL: environment maxdbs reached.
    public static let dbsFull = LMDBError(rawValue: MDB_DBS_FULL)
    /// MDB_BAD_TXN: transaction must abort, has a child, or is invalid.
    public static let badTxn = LMDBError(rawValue: MDB_BAD_TXN)

    /// LMDB's text for the code (`mdb_strerror`), which also covers errno values.
    public var message: String { String(cString: mdb_strerror(rawValue)) }
    public var description: String { message }

    public static func ~= (lhs: LMDBError, rhs: any Error) -> Bool {
        (rhs as? LMDBError)?.rawValue == lhs.rawValue
    }
}

/// Every LMDB return code passes through here.
@inline(__always)
func check(_ rc: Int32) throws(LMDBError) {
    if rc != 0 { throw LMDBError(rawValue: rc) }
}
