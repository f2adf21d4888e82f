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
/// at 20, the free-list `MDB_db` at 40 whose first u32 is the page size, the last page
/// number u64 at 136, the transaction id u64 at 144; the second meta page starts one page in.
enum DatabaseFile {
    static let magic: UInt32 = 0xBEEF_C0DE

    struct Meta {
        var pageSize: UInt64
        var lastPage: UInt64
        var transaction: UInt64
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
        func meta(at offset: UInt64) -> Meta? {
            var bytes = [UInt8](repeating: 0, count: 152)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 152, off_t(offset)) }
            guard n == 152 else { return nil }
            func u32(_ at: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
            func u64(_ at: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) } }
            let pageSize = UInt64(u32(40))
            guard u32(16) == magic, pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else { return nil }
            return Meta(pageSize: pageSize, lastPage: u64(136), transaction: u64(144))
        }
        guard let first = meta(at: 0) else {
            return size < 4096 ? "\(path) holds \(size) bytes, less than one page: it is not an evindex database" : nil
        }
        let second = meta(at: first.pageSize)
        let newest = second.map { $0.transaction > first.transaction ? $0 : first } ?? first
        let needed = (newest.lastPage &+ 1) &* newest.pageSize
        guard size >= 2 * first.pageSize, size >= needed else {
            return "\(path) is cut short: it holds \(size) bytes, its last commit needs \(max(needed, 2 * first.pageSize)); restore it from a copy"
        }
        return nil
    }
}
