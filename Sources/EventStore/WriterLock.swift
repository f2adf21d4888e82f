#if canImport(Glibc)
    import Glibc
#endif

/// The one-`run`-at-a-time lock of a database: `flock` on `DIR/run.lock`, which holds a
/// line naming the holder. The kernel drops the lock when the holder dies, so a crash
/// never leaves the database locked.
public final class WriterLock {
    private let fd: Int32

    /// Takes the lock or fails at once, naming the holder.
    ///
    /// - Parameter holder: a line describing this process (pid and root), stored for others.
    public init(directory: String, holder: String) throws {
        let path = directory + "/run.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw StoreError(.notWritable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let other = Self.readHolder(fd)
            close(fd)
            throw StoreError(
                .locked,
                "another evindex run holds the database \(directory) (\(other.isEmpty ? "holder unknown" : other)); wait for it to finish or stop it")
        }
        _ = ftruncate(fd, 0)
        let line = Array((holder + "\n").utf8)
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)
    }

    private static func readHolder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "" }
        return String(decoding: buffer[0..<n], as: UTF8.self).trimmingSuffix()
    }
}

private extension String {
    func trimmingSuffix() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s.removeLast() }
        return String(s)
    }
}
