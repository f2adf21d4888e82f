#if canImport(Glibc)
    import Glibc
#endif

/// Sorting a listing's names (outside the generic `DirectoryReader`, so that it compiles to
/// specialized code whatever the file system).
///
/// Name order is bytes compared as unsigned, a name before any longer name it begins: the
/// order of the views and of the events. A directory is sorted as it is read, so the log
/// does not depend on the order a filesystem returns names in.
enum NameOrder {
    /// Whether the names at `starts` are in name order already (names from the index are).
    static func isSorted(_ starts: [(Int32, Int32)], _ names: [UInt8]) -> Bool {
        guard starts.count > 1 else { return true }
        return names.withUnsafeBytes { n in
            for i in 1..<starts.count where compareNames(n, starts[i - 1], starts[i]) > 0 { return false }
            return true
        }
    }

    /// A name's place in the sort: its first 8 bytes big-endian (zero after a shorter
    /// name's end: a name holds no NUL), and where it is in the listing.
    private struct SortKey {
        var prefix: UInt64
        var index: Int32
    }

    /// The indices of `starts` in name order. The 8-byte prefixes decide most comparisons
    /// with no `memcmp` and no call; runs of names with the same prefix are then sorted
    /// by their whole names.
    static func indices(_ starts: [(Int32, Int32)], _ names: [UInt8]) -> [Int] {
        names.withUnsafeBytes { n in
            var keys = [SortKey]()
            keys.reserveCapacity(starts.count)
            for (i, (start, length)) in starts.enumerated() {
                var prefix: UInt64 = 0
                let p = n.baseAddress! + Int(start)
                if length >= 8 {
                    prefix = UInt64(bigEndian: p.loadUnaligned(as: UInt64.self))
                } else {
                    for j in 0..<8 { prefix = prefix << 8 | (j < Int(length) ? UInt64(p.load(fromByteOffset: j, as: UInt8.self)) : 0) }
                }
                keys.append(SortKey(prefix: prefix, index: Int32(i)))
            }
            if keys.count <= 16 {
                // Insertion sort: most directories hold a handful of names.
                for i in 1..<max(1, keys.count) {
                    let key = keys[i]
                    var j = i
                    while j > 0 && (keys[j - 1].prefix > key.prefix || (keys[j - 1].prefix == key.prefix && keys[j - 1].index > key.index)) {
                        keys[j] = keys[j - 1]
                        j -= 1
                    }
                    keys[j] = key
                }
            } else {
                keys.sort { $0.prefix != $1.prefix ? $0.prefix < $1.prefix : $0.index < $1.index }
            }
            var runStart = 0
            while runStart < keys.count {
                var runEnd = runStart + 1
                while runEnd < keys.count && keys[runEnd].prefix == keys[runStart].prefix { runEnd += 1 }
                if runEnd - runStart > 1 { sortRun(&keys, runStart..<runEnd, n, starts) }
                runStart = runEnd
            }
            return keys.map { Int($0.index) }
        }
    }

    /// Names with the same first 8 bytes, by their whole names: an insertion sort for a
    /// short run, `sort` for a long one.
    private static func sortRun(_ keys: inout [SortKey], _ run: Range<Int>, _ n: UnsafeRawBufferPointer, _ starts: [(Int32, Int32)]) {
        if run.count > 32 {
            var part = Array(keys[run])
            part.sort { compareNames(n, starts[Int($0.index)], starts[Int($1.index)]) < 0 }
            keys.replaceSubrange(run, with: part)
            return
        }
        for i in run.dropFirst() {
            let key = keys[i]
            var j = i
            while j > run.lowerBound && compareNames(n, starts[Int(keys[j - 1].index)], starts[Int(key.index)]) > 0 {
                keys[j] = keys[j - 1]
                j -= 1
            }
            keys[j] = key
        }
    }

    /// memcmp order, then the shorter first.
    @inline(__always)
    static func compareNames(_ n: UnsafeRawBufferPointer, _ a: (Int32, Int32), _ b: (Int32, Int32)) -> Int {
        let common = Int(min(a.1, b.1))
        if common > 0 {
            let c = memcmp(n.baseAddress! + Int(a.0), n.baseAddress! + Int(b.0), common)
            if c != 0 { return Int(c) }
        }
        return Int(a.1) - Int(b.1)
    }
}
