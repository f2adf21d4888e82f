#if canImport(Glibc)
    import Glibc
#endif

/// Every page of `data.mdb` that its last commit uses, read with `pread` and checked the
/// way LMDB will trust it, before `verify` lets LMDB map the file.
///
/// Rule: both meta pages are sound and hold consecutive transaction ids (LMDB writes
/// commit `t` to meta page `t & 1`); from the newer one, every B+tree (the main one, each
/// named database in it, the free list) is walked page by page: each page is within the
/// commit's last page, used once, of the kind and depth its parent says; each node lies
/// inside its page, keys ascend within their parent's bounds, overflow runs are as long as
/// their values; each tree's counts match its `MDB_db`; the free list names pages no tree
/// uses, and every page of the file is either used or free. Motivation: LMDB checks none
/// of this; a flipped byte in a page header or a node made it read past the map (SIGBUS,
/// SIGSEGV) or silently answer from the older commit, and `verify` passed.
///
/// What cannot be seen: a value's bytes (the log's blocks carry their own checksums,
/// the views are compared with a replay), and a newer meta page whose transaction id
/// became exactly one below the older's when its commit freed no page (nothing then
/// tells it from a commit cut short).
///
/// Layout (LMDB 0.9, mdb.c): a page header is `pgno` u64, pad u16, flags u16 at 10, then
/// `lower` u16 at 12 and `upper` u16 at 14 (or, for an overflow run, its page count u32
/// at 12), then u16 node offsets from 16. A node is `lo` u16, `hi` u16, flags u16, key
/// size u16, the key, then the value (a branch node's child page is `lo | hi << 16 |
/// flags << 32`; a leaf's value size is `lo | hi << 16`).
public enum DatabaseStructure {
    /// What a sound file holds: its pages, those its trees use and those free.
    public struct Summary: Sendable {
        public var pages: UInt64
        public var freePages: UInt64
        public init(pages: UInt64, freePages: UInt64) { (self.pages, self.freePages) = (pages, freePages) }
    }

    /// Checks `directory/data.mdb` page by page.
    /// - Throws: `StoreError.corrupt` naming the first problem and its page.
    public static func check(directory: String) throws(StoreError) -> Summary {
        let path = directory + "/data.mdb"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.missing, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do {
            var walk = try Walk(fd: fd)
            return try walk.run()
        } catch {
            throw StoreError(.corrupt, "\(path) is damaged: \(error.message)")
        }
    }

    struct Damage: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static let branchPage: UInt16 = 0x01
    static let leafPage: UInt16 = 0x02
    static let overflowPage: UInt16 = 0x04
    static let metaPage: UInt16 = 0x08
    static let bigData: UInt16 = 0x01
    static let subDatabase: UInt16 = 0x02
    static let duplicates: UInt16 = 0x04
    /// `MDB_INTEGERKEY`, which LMDB sets on the free list only.
    static let integerKey: UInt16 = 0x08
    static let headerSize = 16

    /// One check of one file: the pages seen so far and the page buffers of each level.
    struct Walk {
        let fd: Int32
        let pageSize: Int
        let newest: DatabaseFile.Meta
        private var used: [UInt64]
        private var usedCount: UInt64 = 2
        private var freeCount: UInt64 = 0

        init(fd: Int32) throws(Damage) {
            self.fd = fd
            guard let first = DatabaseFile.meta(fd: fd, at: 0) else { throw Damage("the file ends inside its first meta page") }
            try Self.checkMeta(first, number: 0)
            guard let second = DatabaseFile.meta(fd: fd, at: first.pageSize) else {
                throw Damage("the file ends inside its second meta page")
            }
            try Self.checkMeta(second, number: 1)
            guard second.pageSize == first.pageSize else {
                throw Damage("the meta pages disagree on the page size (\(first.pageSize) and \(second.pageSize))")
            }
            let (t0, t1) = (first.transaction, second.transaction)
            guard t0 & 1 == 0 || (t0 == 0 && t1 == 0) else {
                throw Damage(Self.olderCommit(damaged: 0, t0, t1))
            }
            guard t1 & 1 == 1 || (t0 == 0 && t1 == 0) else {
                throw Damage(Self.olderCommit(damaged: 1, t0, t1))
            }
            guard t0 == t1 || max(t0, t1) - min(t0, t1) == 1 else {
                throw Damage(
                    "the meta pages hold transaction ids \(t0) and \(t1), which are not consecutive: one of them is damaged, and LMDB reads the commit of \(max(t0, t1)), which may not be the last one"
                )
            }
            newest = t1 > t0 ? second : first
            let older = t1 > t0 ? first : second
            guard older.lastPage <= newest.lastPage else {
                throw Damage("the older meta page names last page \(older.lastPage), past the newer's \(newest.lastPage)")
            }
            pageSize = Int(newest.pageSize)
            guard newest.lastPage >= 1, newest.lastPage < UInt64(Int.max) / UInt64(pageSize) else {
                throw Damage("the newest meta page names an impossible last page \(newest.lastPage)")
            }
            var st = stat()
            let needed = (newest.lastPage + 1) * UInt64(pageSize)
            guard fstat(fd, &st) == 0, UInt64(st.st_size) >= needed else {
                throw Damage("the file holds \(st.st_size) bytes, its last commit needs \(needed)")
            }
            // A commit's free list holds the pages each transaction freed, keyed by its id,
            // so none above the commit's own: a meta page whose id fell below the other's
            // (and so made LMDB read the older commit) still holds its own commit's keys.
            for (number, meta) in [(0, first), (1, second)] {
                if let key = Self.lastFreeKey(fd: fd, tree: meta.free, pageSize: pageSize, lastPage: newest.lastPage),
                    key > meta.transaction
                {
                    throw Damage(
                        "meta page \(number) is damaged: it names transaction \(meta.transaction), yet its free list holds pages freed by transaction \(key); LMDB may be reading the database as of an older commit"
                    )
                }
            }
            used = [UInt64](repeating: 0, count: Int(newest.lastPage / 64) + 1)
            markUsedUnchecked(0)
            markUsedUnchecked(1)
        }

        /// The highest key of a free list, along its rightmost pages; nil when they cannot
        /// be read as such (the full walk then names the damage, if it is the newest's).
        private static func lastFreeKey(fd: Int32, tree: DatabaseFile.Tree, pageSize: Int, lastPage: UInt64) -> UInt64? {
            var number = tree.root
            var page = Page(bytes: [UInt8](repeating: 0, count: pageSize))
            for _ in 0..<Int(min(tree.depth, 32)) {
                guard number >= 2, number <= lastPage else { return nil }
                let n = page.bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, pageSize, off_t(number * UInt64(pageSize))) }
                guard n == pageSize, page.u64(0) == number else { return nil }
                let flags = page.u16(10), lower = Int(page.u16(12))
                guard lower > DatabaseStructure.headerSize, lower <= pageSize else { return nil }
                let offset = Int(page.u16(lower - 2))
                guard offset >= DatabaseStructure.headerSize, offset + 16 <= pageSize else { return nil }
                if flags == DatabaseStructure.leafPage {
                    guard page.u16(offset + 6) == 8 else { return nil }
                    return page.u64(offset + 8)
                }
                guard flags == DatabaseStructure.branchPage else { return nil }
                number = UInt64(page.u16(offset)) | UInt64(page.u16(offset + 2)) << 16 | UInt64(page.u16(offset + 4)) << 32
            }
            return nil
        }

        private static func olderCommit(damaged number: Int, _ t0: UInt64, _ t1: UInt64) -> String {
            "meta page \(number) is damaged: its transaction id \(number == 0 ? t0 : t1) is \(number == 0 ? "odd" : "even"), yet LMDB writes only \(number == 0 ? "even" : "odd") ones there (the other holds \(number == 0 ? t1 : t0)); LMDB may be reading the database as of an older commit"
        }

        private static func checkMeta(_ meta: DatabaseFile.Meta, number: Int) throws(Damage) {
            guard meta.pageFlags & DatabaseStructure.metaPage != 0 else { throw Damage("meta page \(number) lacks the meta flag") }
            guard meta.magic == DatabaseFile.magic else { throw Damage("meta page \(number) lacks LMDB's magic number") }
            guard meta.version == DatabaseFile.dataVersion else {
                throw Damage("meta page \(number) has data version \(meta.version), not LMDB 0.9's \(DatabaseFile.dataVersion)")
            }
            guard meta.isPlausible else { throw Damage("meta page \(number) names an impossible page size \(meta.pageSize)") }
            guard meta.free.flags == DatabaseStructure.integerKey, meta.main.flags == 0 else {
                throw Damage("meta page \(number) gives its trees flags evindex never sets")
            }
        }

        mutating func run() throws(Damage) -> Summary {
            let main = newest.main
            var named: [(name: String, tree: DatabaseFile.Tree)] = []
            try walkTree(main, name: "main") { key, value, flags throws(Damage) in
                guard flags & DatabaseStructure.subDatabase != 0 else { return }
                guard value.count == DatabaseFile.Tree.size else {
                    throw Damage("the record of database `\(Self.text(key))` is \(value.count) bytes, not \(DatabaseFile.Tree.size)")
                }
                let tree = value.withUnsafeBytes { DatabaseFile.Tree($0, at: 0) }
                guard tree.flags == 0 else { throw Damage("database `\(Self.text(key))` has flags evindex never sets") }
                named.append((Self.text(key), tree))
            }
            for (name, tree) in named {
                try walkTree(tree, name: name) { _, _, flags throws(Damage) in
                    guard flags & DatabaseStructure.subDatabase == 0 else {
                        throw Damage("database `\(name)` holds a database record, which evindex never writes")
                    }
                }
            }
            var listed: [UInt64] = []
            try walkTree(newest.free, name: "free list", integerKeys: true) { _, value, _ throws(Damage) in
                guard value.count >= 8, value.count % 8 == 0 else {
                    throw Damage("a free-list record is \(value.count) bytes, not a count and page numbers")
                }
                let count = value.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                guard count == UInt64(value.count / 8 - 1) else {
                    throw Damage("a free-list record says \(count) pages but holds \(value.count / 8 - 1)")
                }
                value.withUnsafeBytes { b in
                    for i in 1..<(value.count / 8) { listed.append(b.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
                }
            }
            for page in listed {
                guard page >= 2, page <= newest.lastPage else {
                    throw Damage("the free list names page \(page), outside pages 2 to \(newest.lastPage)")
                }
                guard !isUsed(page) else { throw Damage("the free list names page \(page), which a tree uses or the list names twice") }
                markUsedUnchecked(page)
                freeCount += 1
            }
            let pages = newest.lastPage + 1
            guard usedCount == pages else {
                throw Damage(
                    "of its \(pages) pages, \(usedCount - freeCount) are in use and \(freeCount) free: \(pages - usedCount) are neither")
            }
            return Summary(pages: pages, freePages: freeCount)
        }

        // MARK: Trees

        struct Counts {
            var branch: UInt64 = 0
            var leaf: UInt64 = 0
            var overflow: UInt64 = 0
            var entries: UInt64 = 0
        }

        typealias Visit = (_ key: [UInt8], _ value: [UInt8], _ flags: UInt16) throws(Damage) -> Void

        /// Walks one tree, handing each leaf node to `visit` (its value only when `visit`
        /// reads values: the main tree and the free list).
        private mutating func walkTree(
            _ tree: DatabaseFile.Tree, name: String, integerKeys: Bool = false, visit: Visit
        ) throws(Damage) {
            if tree.root == DatabaseFile.Tree.noPage {
                guard tree.depth == 0, tree.entries == 0, tree.branchPages == 0, tree.leafPages == 0, tree.overflowPages == 0
                else { throw Damage("the empty database `\(name)` claims pages or entries") }
                return
            }
            guard tree.depth >= 1, tree.depth <= 32 else { throw Damage("database `\(name)` claims depth \(tree.depth)") }
            var counts = Counts()
            let readValues = name == "main" || name == "free list"
            try walkPage(
                tree.root, level: 1, depth: Int(tree.depth), low: nil, high: nil, tree: name, integerKeys: integerKeys,
                readValues: readValues, counts: &counts, visit: visit)
            guard counts.branch == tree.branchPages, counts.leaf == tree.leafPages, counts.overflow == tree.overflowPages,
                counts.entries == tree.entries
            else {
                throw Damage(
                    "database `\(name)` records \(tree.branchPages)/\(tree.leafPages)/\(tree.overflowPages) branch/leaf/overflow pages and \(tree.entries) entries, its pages hold \(counts.branch)/\(counts.leaf)/\(counts.overflow) and \(counts.entries)"
                )
            }
        }

        private mutating func walkPage(
            _ number: UInt64, level: Int, depth: Int, low: [UInt8]?, high: [UInt8]?, tree: String, integerKeys: Bool,
            readValues: Bool, counts: inout Counts, visit: Visit
        ) throws(Damage) {
            let page = try claim(number, tree: tree)
            let here = "page \(number) of database `\(tree)`"
            let flags = page.u16(10)
            let isLeaf = level == depth
            guard flags == (isLeaf ? DatabaseStructure.leafPage : DatabaseStructure.branchPage) else {
                throw Damage(
                    "\(here) has flags 0x\(String(flags, radix: 16)), not those of a \(isLeaf ? "leaf" : "branch") at level \(level) of \(depth)")
            }
            let lower = Int(page.u16(12))
            let upper = Int(page.u16(14))
            guard lower >= DatabaseStructure.headerSize, lower <= upper, upper <= pageSize, (lower - DatabaseStructure.headerSize) % 2 == 0
            else { throw Damage("\(here) has impossible bounds \(lower) and \(upper)") }
            let keys = (lower - DatabaseStructure.headerSize) / 2
            guard keys >= 1 else { throw Damage("\(here) is empty") }
            if isLeaf { counts.leaf += 1 } else { counts.branch += 1 }
            var previous: [UInt8]? = nil
            var children: [(page: UInt64, key: [UInt8])] = []
            for i in 0..<keys {
                let offset = Int(page.u16(DatabaseStructure.headerSize + 2 * i))
                guard offset >= upper, offset & 1 == 0, offset + 8 <= pageSize else {
                    throw Damage("\(here): node \(i) lies at \(offset), outside the page's nodes (\(upper) to \(pageSize))")
                }
                let lo = UInt64(page.u16(offset)), hi = UInt64(page.u16(offset + 2))
                let nodeFlags = page.u16(offset + 4)
                let keySize = Int(page.u16(offset + 6))
                guard offset + 8 + keySize <= pageSize else { throw Damage("\(here): node \(i)'s key runs past the page") }
                let key = page.bytes(offset + 8, keySize)
                if integerKeys, keySize != 8 { throw Damage("\(here): a free-list key is \(keySize) bytes, not 8") }
                // A branch's first key is not compared: its child holds everything below the second.
                if isLeaf || i > 0 {
                    if let previous {
                        guard Self.compare(key, previous, integerKeys) > 0 else {
                            throw Damage("\(here): node \(i)'s key is not above the one before")
                        }
                    } else if let low, Self.compare(key, low, integerKeys) < 0 {
                        throw Damage("\(here): node \(i)'s key is below its parent's key for this page")
                    }
                    if let high, Self.compare(key, high, integerKeys) >= 0 {
                        throw Damage("\(here): node \(i)'s key is not below its parent's next key")
                    }
                    previous = key
                }
                if !isLeaf {
                    children.append((lo | hi << 16 | UInt64(nodeFlags) << 32, key))
                    continue
                }
                counts.entries += 1
                guard nodeFlags & ~(DatabaseStructure.bigData | DatabaseStructure.subDatabase) == 0 else {
                    throw Damage("\(here): node \(i) has flags 0x\(String(nodeFlags, radix: 16)) evindex never writes")
                }
                let size = Int(lo | hi << 16)
                var value: [UInt8] = []
                if nodeFlags & DatabaseStructure.bigData != 0 {
                    guard offset + 8 + keySize + 8 <= pageSize else { throw Damage("\(here): node \(i) runs past the page") }
                    let first = page.u64(offset + 8 + keySize)
                    value = try overflow(first, size: size, tree: tree, read: readValues, counts: &counts)
                } else {
                    guard offset + 8 + keySize + size <= pageSize else {
                        throw Damage("\(here): node \(i)'s value of \(size) bytes runs past the page")
                    }
                    if readValues { value = page.bytes(offset + 8 + keySize, size) }
                }
                try visit(key, value, nodeFlags)
            }
            for (i, child) in children.enumerated() {
                try walkPage(
                    child.page, level: level + 1, depth: depth, low: i == 0 ? low : child.key,
                    high: i + 1 < children.count ? children[i + 1].key : high, tree: tree, integerKeys: integerKeys,
                    readValues: readValues, counts: &counts, visit: visit)
            }
        }

        /// An overflow run: its first page says how many pages it spans, which must be as
        /// many as the value needs; its bytes are read only when asked.
        private mutating func overflow(
            _ first: UInt64, size: Int, tree: String, read: Bool, counts: inout Counts
        ) throws(Damage) -> [UInt8] {
            let head = try claim(first, tree: tree)
            let here = "overflow page \(first) of database `\(tree)`"
            guard head.u16(10) == DatabaseStructure.overflowPage else { throw Damage("\(here) lacks the overflow flag") }
            let pages = UInt64(head.u32(12))
            let needed = UInt64((DatabaseStructure.headerSize - 1 + size) / pageSize + 1)
            guard pages == needed else { throw Damage("\(here) spans \(pages) pages, its value of \(size) bytes needs \(needed)") }
            guard first + pages - 1 <= newest.lastPage else { throw Damage("\(here) runs past the last page") }
            for page in (first + 1)..<(first + pages) {
                guard !isUsed(page) else { throw Damage("page \(page) of database `\(tree)` is used twice") }
                markUsedUnchecked(page)
            }
            counts.overflow += pages
            guard read else { return [] }
            var value = [UInt8](repeating: 0, count: size)
            let n = value.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress, size, off_t(first * UInt64(pageSize)) + off_t(DatabaseStructure.headerSize))
            }
            guard n == size else { throw Damage("\(here) cannot be read") }
            return value
        }

        // MARK: Pages

        /// Reads page `number`, which must be within the commit and not used before.
        private mutating func claim(_ number: UInt64, tree: String) throws(Damage) -> Page {
            guard number >= 2, number <= newest.lastPage else {
                throw Damage("database `\(tree)` points to page \(number), outside pages 2 to \(newest.lastPage)")
            }
            guard !isUsed(number) else { throw Damage("page \(number) of database `\(tree)` is used twice") }
            markUsedUnchecked(number)
            var page = Page(bytes: [UInt8](repeating: 0, count: pageSize))
            let n = page.bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, pageSize, off_t(number * UInt64(pageSize))) }
            guard n == pageSize else { throw Damage("page \(number) cannot be read: \(String(cString: strerror(errno)))") }
            guard page.u64(0) == number else { throw Damage("page \(number) of database `\(tree)` says it is page \(page.u64(0))") }
            return page
        }

        private func isUsed(_ page: UInt64) -> Bool { used[Int(page / 64)] & (1 << (page % 64)) != 0 }

        private mutating func markUsedUnchecked(_ page: UInt64) {
            used[Int(page / 64)] |= 1 << (page % 64)
            usedCount += page < 2 ? 0 : 1
        }

        /// LMDB's order: bytes as unsigned, a prefix first; the free list's keys as native integers.
        private static func compare(_ a: [UInt8], _ b: [UInt8], _ integers: Bool) -> Int {
            if integers, a.count == 8, b.count == 8 {
                let x = a.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let y = b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                return x < y ? -1 : x == y ? 0 : 1
            }
            let n = min(a.count, b.count)
            let c = n == 0 ? 0 : a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, n) } }
            if c != 0 { return Int(c) }
            return a.count < b.count ? -1 : a.count == b.count ? 0 : 1
        }

        private static func text(_ key: [UInt8]) -> String { String(decoding: key, as: UTF8.self) }
    }

    struct Page {
        var bytes: [UInt8]
        func u16(_ at: Int) -> UInt16 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) } }
        func u32(_ at: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
        func u64(_ at: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) } }
        func bytes(_ at: Int, _ count: Int) -> [UInt8] { Array(bytes[at..<(at + count)]) }
    }
}
