import Events
internal import LMDB

#if canImport(Glibc)
    import Glibc
#endif

/// Why the event store could not be opened, read or written. Messages are one line and
/// name the database directory.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// The database was written by a newer evindex.
        case newerSchema
        /// The database was written by an older evindex and is not upgraded yet.
        case olderSchema
        /// The directory cannot be created or written.
        case notWritable
        /// The files are not an LMDB database, or are damaged.
        case notADatabase
        /// There is no database at the path (for read-only commands).
        case missing
        /// Another `evindex run` holds the database.
        case locked
        /// A stored record or row failed its checksum or could not be decoded.
        case corrupt
        /// Any other LMDB failure.
        case lmdb
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension StoreError {
    /// The one line for an LMDB failure that reached the top unwrapped ("database error:
    /// …"); nil for any other error. Callers above the store never see LMDB's types.
    public static func databaseErrorMessage(_ error: any Error, directory: String? = nil) -> String? {
        guard let error = error as? LMDBError else { return nil }
        if let directory, let full = diskFullMessage(directory, error) { return full }
        return "database error: \(error.message)"
    }

    /// The line for a write that failed because the disk holding the database is full;
    /// nil when it is not full. LMDB reports a short write as EIO ("Input/output error"),
    /// so the disk itself is asked (under 1 MiB free), and the line says what the user
    /// can act on.
    public static func diskFullMessage(_ directory: String, _ error: any Error) -> String? {
        let code = (error as? LMDBError)?.rawValue
        guard code == ENOSPC || code == EDQUOT || (code == EIO && isOnFullDisk(directory)) else { return nil }
        return "the disk holding \(directory) is full (\(error)); free some space and run the command again"
    }

    /// Whether the filesystem holding `directory` has (almost) no space left.
    public static func isOnFullDisk(_ directory: String) -> Bool {
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return false }
        return UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20
    }
}
