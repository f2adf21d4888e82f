#if canImport(Glibc)
    import Glibc
#endif

/// The absolute, symlink-free form of `path` (`realpath(3)`), bytes in and out: a name
/// never passes through `String`; a path of PATH_MAX bytes or more is resolved one
/// component at a time (`LongPath`). Nil when it cannot be resolved; `Errno.current` says why.
public func realPath(_ path: [UInt8]) -> [UInt8]? {
    (path + [0]).withUnsafeBufferPointer { p in
        p.withMemoryRebound(to: CChar.self) { c in
            guard let r = realpath(c.baseAddress!, nil) else {
                return errno == ENAMETOOLONG ? LongPath.resolved(path) : nil
            }
            defer { free(r) }
            return Array(UnsafeRawBufferPointer(start: r, count: strlen(r)))
        }
    }
}
