#if canImport(Glibc)
    import Glibc
#endif

/// `data.mdb` checked against what its meta pages say, before LMDB maps it.
///
/// Rule: the newer of the two meta pages (LMDB's choice: the higher transaction id among
/// those with LMDB's magic) names the last page its commit uses; a file shorter than that
/// page's end is refused in one line. Motivation: LMDB maps the file and trusts the meta
/// page, so a cut-short `data.mdb` (a copy that stopped, a full disk during a copy) made
/// every command die of SIGBUS when it touched a page past the end of the file.
///
/// Layout (lmdb.h, `MDB_meta` after a 16-byte page header): magic u32 at 16, version u32
/// at 20, the free-list `MDB_db` at 40 whose first u32 is the page size, the main `MDB_db`
/// at 88, the last page number u64 at 136, the transaction id u64 at 144; the second meta
/// page starts one page in.
enum DatabaseFile {
    static let magic: UInt32 = 0xBEEF_C0DE
    /// `MDB_DATA_VERSION` of LMDB 0.9.
    static let dataVersion: UInt32 = 1

    /// An `MDB_db`: where one B+tree starts and what it holds.
    struct Tree: Equatable {
        var flags: UInt16
        var depth: UInt16
        var branchPages: UInt64
        var leafPages: UInt64
        var overflowPages: UInt64
        var entries: UInt64
        /// `P_INVALID` (all ones) for an empty tree.
        var root: UInt64

        static let size = 48
        static let noPage = UInt64.max

        init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
            flags = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
            depth = bytes.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self)
            branchPages = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            leafPages = bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            overflowPages = bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            entries = bytes.loadUnaligned(fromByteOffset: offset + 32, as: UInt64.self)
            root = bytes.loadUnaligned(fromByteOffset: offset + 40, as: UInt64.self)
        }
    }

    struct Meta {
        var pageFlags: UInt16
        var magic: UInt32
        var version: UInt32
        var pageSize: UInt64
        var free: Tree
        var main: Tree
        var lastPage: UInt64
        var transaction: UInt64

        /// What LMDB itself checks before it uses a meta page (`mdb_env_read_header`), and
        /// a page size it could have written.
        var isPlausible: Bool {
            magic == DatabaseFile.magic && pageSize >= 512 && pageSize <= 65536 && pageSize & (pageSize - 1) == 0
        }
    }

    /// The meta page at `offset`, nil when the file ends before it.
    static func meta(fd: Int32, at offset: UInt64) -> Meta? {
        var bytes = [UInt8](repeating: 0, count: 152)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 152, off_t(offset)) }
        guard n == 152 else { return nil }
        return bytes.withUnsafeBytes { b in
            Meta(
                pageFlags: b.loadUnaligned(fromByteOffset: 10, as: UInt16.self),
                magic: b.loadUnaligned(fromByteOffset: 16, as: UInt32.self),
                version: b.loadUnaligned(fromByteOffset: 20, as: UInt32.self),
                pageSize: UInt64(b.loadUnaligned(fromByteOffset: 40, as: UInt32.self)),
                free: Tree(b, at: 40), main: Tree(b, at: 88),
                lastPage: b.loadUnaligned(fromByteOffset: 136, as: UInt64.self),
                transaction: b.loadUnaligned(fromByteOffset: 144, as: UInt64.self))
        }
    }

    /// Nil when `data.mdb` is fine to map (or missing, or empty: LMDB makes a new one);
    /// else the one line that says why it is not.
    static func problem(directory: String) -> String? {
        let path = directory + "/data.mdb"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return nil }
        let size = UInt64(st.st_size)
        guard let first = meta(fd: fd, at: 0), first.isPlausible else {
            return size < 4096 ? "\(path) holds \(size) bytes, less than one page: it is not an evindex database" : nil
        }
        let second = meta(fd: fd, at: first.pageSize).flatMap { $0.isPlausible ? $0 : nil }
        let newest = second.map { $0.transaction > first.transaction ? $0 : first } ?? first
        let needed = (newest.lastPage &+ 1) &* newest.pageSize
        guard size >= 2 * first.pageSize, size >= needed else {
            return "\(path) is cut short: it holds \(size) bytes, its last commit needs \(max(needed, 2 * first.pageSize)); restore it from a copy"
        }
        return nil
    }
}
