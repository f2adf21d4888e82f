#if canImport(Glibc)
    import Glibc
#endif

/// Absolute paths of PATH_MAX bytes or more, reached one component at a time.
///
/// Rule: a system call given a path of PATH_MAX (4096) bytes or more fails with
/// ENAMETOOLONG, though such paths exist (the walk reaches them by descriptor, and the
/// index holds them). A path that long is followed from `/` with `openat`, one component
/// at a time (symlinks and `..` on the way resolved by the kernel, as a path lookup
/// would), and the call is made on its last component relative to its parent; a shorter
/// path goes to the call unchanged, so the common case costs nothing. Motivation: `ls` and
/// `du` took a deep directory that `run` refused ("File name too long").
public enum LongPath {
    /// `O_PATH` (Linux's 010000000; Glibc hides it behind _GNU_SOURCE): a descriptor to look
    /// names up from, which needs search permission only, as a path lookup does.
    private static let pathOnly: Int32 = 0o10000000

    /// Calls `body` with a directory descriptor and a name that together stand for the
    /// absolute path `path` (NUL-terminated): `AT_FDCWD` and `path` itself when it is
    /// shorter than PATH_MAX, else the descriptor of its parent, open only during `body`.
    public static func at<R>(_ path: UnsafePointer<CChar>, _ body: (Int32, UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
        let length = strlen(path)
        if length < Int(PATH_MAX) { return try body(AT_FDCWD, path) }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(path).assumingMemoryBound(to: UInt8.self), count: length)
        guard bytes.first == UInt8(ascii: "/"), let slash = bytes.lastIndex(of: UInt8(ascii: "/")), slash + 1 < length else {
            throw Errno.nameTooLong
        }
        let parent = try openDirectory(components: bytes[..<slash].split(separator: UInt8(ascii: "/")))
        defer { close(parent) }
        return try body(parent, path + slash + 1)
    }

    /// The absolute, symlink-free form of `path` (absolute, or relative to the working
    /// directory), resolved component by component: `realpath(3)` for a path of any
    /// length. Nil when it cannot be resolved; `errno` says why.
    public static func resolved(_ path: [UInt8]) -> [UInt8]? {
        var start = path
        if path.first != UInt8(ascii: "/") {
            guard let cwd = getcwd(nil, 0) else { return nil }
            defer { free(cwd) }
            start = Array(UnsafeRawBufferPointer(start: cwd, count: strlen(cwd))) + [UInt8(ascii: "/")] + path
        }
        var pending = start.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init).reversed() as [[UInt8]]
        var resolved: [[UInt8]] = []
        // The directory `resolved` names, one descriptor: it holds no symlink, so `..` from
        // it is its parent in the path too.
        var current = open("/", pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { return nil }
        defer { close(current) }
        func move(to next: Int32) -> Bool {
            guard next >= 0 else { return false }
            close(current)
            current = next
            return true
        }
        var symlinks = 0
        var lastIsDirectory = true
        while let name = pending.popLast() {
            if name == [UInt8(ascii: ".")] { continue }
            if !lastIsDirectory {
                errno = ENOTDIR
                return nil
            }
            if name == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                if !resolved.isEmpty {
                    resolved.removeLast()
                    guard move(to: openat(current, "..", pathOnly | O_DIRECTORY | O_CLOEXEC)) else { return nil }
                }
                continue
            }
            var st = stat()
            let rc = (name + [0]).withUnsafeBufferPointer { n in
                n.withMemoryRebound(to: CChar.self) { fstatat(current, $0.baseAddress!, &st, AT_SYMLINK_NOFOLLOW) }
            }
            guard rc == 0 else { return nil }
            if st.st_mode & S_IFMT == S_IFLNK {
                symlinks += 1
                guard symlinks <= 40, let target = readLink(current, name) else {
                    if symlinks > 40 { errno = ELOOP }
                    return nil
                }
                if target.first == UInt8(ascii: "/") {
                    guard move(to: open("/", pathOnly | O_DIRECTORY | O_CLOEXEC)) else { return nil }
                    resolved.removeAll()
                }
                pending.append(contentsOf: target.split(separator: UInt8(ascii: "/")).map(Array.init).reversed())
                continue
            }
            resolved.append(name)
            lastIsDirectory = st.st_mode & S_IFMT == S_IFDIR
            if lastIsDirectory {
                let next = (name + [0]).withUnsafeBufferPointer { n in
                    n.withMemoryRebound(to: CChar.self) { openat(current, $0.baseAddress!, pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                }
                guard move(to: next) else { return nil }
            }
        }
        if resolved.isEmpty { return [UInt8(ascii: "/")] }
        var result: [UInt8] = []
        for name in resolved {
            result.append(UInt8(ascii: "/"))
            result.append(contentsOf: name)
        }
        return result
    }

    /// The directory the components name below `/`, opened for use as a `dirfd`.
    private static func openDirectory(components: [ArraySlice<UInt8>]) throws(Errno) -> Int32 {
        var fd = open("/", pathOnly | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw Errno.current }
        var name: [CChar] = []
        for component in components {
            name.removeAll(keepingCapacity: true)
            for b in component { name.append(CChar(bitPattern: b)) }
            name.append(0)
            let next = openat(fd, name, pathOnly | O_DIRECTORY | O_CLOEXEC)
            let failure = Errno.current
            close(fd)
            if next < 0 { throw failure }
            fd = next
        }
        return fd
    }

    /// The target of the symlink `name` in directory `fd`.
    private static func readLink(_ fd: Int32, _ name: [UInt8]) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = (name + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in
                buffer.withUnsafeMutableBufferPointer {
                    readlinkat(fd, c.baseAddress!, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count)
                }
            }
        }
        return n < 0 ? nil : Array(buffer[..<n])
    }
}
