import CLinux

#if canImport(Glibc)
    import Glibc
#endif

/// A POSIX error number. The name of the C constant is kept in the text.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    public static let tooManySymbolicLinkLevels = Errno(rawValue: ELOOP)
    public static let ioError = Errno(rawValue: EIO)
    public static let nameTooLong = Errno(rawValue: ENAMETOOLONG)

    /// `strerror` text, e.g. "Permission denied".
    public var description: String { String(cString: strerror(rawValue)) }

    /// The C name when known, e.g. "EACCES".
    public var name: String {
        switch rawValue {
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case ENOTDIR: "ENOTDIR"
        case ELOOP: "ELOOP"
        case EIO: "EIO"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case ENOMEM: "ENOMEM"
        case EISDIR: "EISDIR"
        case ESTALE: "ESTALE"
        default: "errno \(rawValue)"
        }
    }

    /// The calling thread's `errno`.
    public static var current: Errno { Errno(rawValue: errno) }
}

/// What `fstatat` tells about one entry, in the units evindex records.
public struct EntryStat: Sendable, Hashable {
    public var mode: UInt32
    public var inode: UInt64
    public var device: UInt64
    public var size: UInt64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    /// Birth time; 0 when the filesystem does not keep one. Tells a renamed file (same
    /// inode, same birth) from a new file that was given a freed inode back.
    public var btimeNs: Int64
    /// 512-byte blocks allocated (`st_blocks`).
    public var blocks: UInt64
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(
        mode: UInt32, inode: UInt64, device: UInt64, size: UInt64, mtimeNs: Int64, ctimeNs: Int64, btimeNs: Int64 = 0,
        blocks: UInt64 = 0, nlink: UInt32 = 1, uid: UInt32 = 0, gid: UInt32 = 0
    ) {
        self.mode = mode; self.inode = inode; self.device = device; self.size = size
        self.mtimeNs = mtimeNs; self.ctimeNs = ctimeNs; self.btimeNs = btimeNs
        self.blocks = blocks; self.nlink = nlink; self.uid = uid; self.gid = gid
    }

    init(_ st: evindex_stat) {
        self.init(
            mode: st.mode, inode: st.inode, device: st.device, size: st.size,
            mtimeNs: st.mtime_ns, ctimeNs: st.ctime_ns, btimeNs: st.btime_ns,
            blocks: st.blocks, nlink: st.nlink, uid: st.uid, gid: st.gid)
    }

    public var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
    public var isRegularFile: Bool { mode & S_IFMT == S_IFREG }
    public var isSymlink: Bool { mode & S_IFMT == S_IFLNK }
}

/// An open directory: a file descriptor the walker reads and opens children relative to.
public struct DirectoryHandle: Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }
}

/// The filesystem capability the walker reads through.
///
/// Every call the walk makes is relative to an open directory (no full-path lookups on the
/// hot path); only the rules' look above the root takes absolute paths. Tests wrap
/// `PosixFileSystem` to inject EACCES, ENOENT races, EIO and the like.
public protocol FileSystem: Sendable {
    /// Opens the root of a walk. Follows a symlink at the root itself, as `find -H` does.
    func openRoot(_ path: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle
    /// Opens `name` inside `parent` as a directory, never following a symlink.
    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle
    /// Reads every name of `directory` (without "." and ".."), passing each with its length.
    /// Names delivered before an error stay delivered.
    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno)
    /// `lstat` of `name` inside `directory` (statx, with the birth time when known).
    func stat(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> EntryStat
    /// `fstat` of an open directory.
    func stat(_ directory: DirectoryHandle) throws(Errno) -> EntryStat
    func close(_ directory: DirectoryHandle)
    /// The contents of the regular file `name` (a path relative to `directory`), not
    /// following a symlink at its end: how `.gitignore` files are read.
    func readFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8]
    /// The same, following a symlink at its end: how git reads a repository's own files
    /// (`info/exclude`, `config`, the excludes file a config names).
    func readFileFollowingSymlink(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8]
    /// `lstat` of an absolute path. Only the rules' look above the root (the top of the git
    /// work tree the root lies in, the ignore files on the way down) asks for one, once per
    /// walk, before the walk reads anything.
    func stat(atPath path: UnsafePointer<CChar>) throws(Errno) -> EntryStat
    /// The contents of the regular file at an absolute path, not following a symlink at its
    /// end: the rules files above the root.
    func readFile(atPath path: UnsafePointer<CChar>) throws(Errno) -> [UInt8]
}

extension FileSystem {
    public func readFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8] {
        try readRegularFile(directory, name, O_NOFOLLOW)
    }

    public func readFileFollowingSymlink(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8] {
        try readRegularFile(directory, name, 0)
    }

    private func readRegularFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>, _ flags: Int32) throws(Errno) -> [UInt8] {
        // O_NONBLOCK: a FIFO planted where a file is expected must not hang the walk.
        let fd = openat(directory.fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags)
        if fd < 0 { throw Errno.current }
        defer { Glibc.close(fd) }
        return try readAll(fd)
    }
}

/// A whole file by absolute path (config and ignore files; at most 16 MiB).
/// - Parameter followSymlinks: false refuses a symlink at the end of the path, as git
///   does for `.gitignore` files.
public func readWholeFile(_ path: [UInt8], followSymlinks: Bool = true) throws(Errno) -> [UInt8] {
    let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followSymlinks ? 0 : O_NOFOLLOW)
    let fd = (path + [0]).withUnsafeBufferPointer { p in
        open(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), flags)
    }
    if fd < 0 { throw Errno.current }
    defer { Glibc.close(fd) }
    return try readAll(fd)
}

/// Reads a regular file's descriptor to its end (at most 16 MiB: an ignore file is never
/// that big). Anything else (a FIFO, a device, a directory) is refused with EINVAL.
func readAll(_ fd: Int32) throws(Errno) -> [UInt8] {
    var st = Glibc.stat()
    if fstat(fd, &st) != 0 { throw Errno.current }
    guard st.st_mode & S_IFMT == S_IFREG else { throw Errno(rawValue: EINVAL) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while result.count < 16 << 20 {
        let n = try retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
        if n == 0 { break }
        result.append(contentsOf: chunk[..<n])
    }
    return result
}

/// The real filesystem: openat, getdents64 and statx, each relative to a directory fd.
public struct PosixFileSystem: FileSystem {
    public init() {}

    public func openRoot(_ path: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        try LongPath.at(path) { (parent, name) throws(Errno) in
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { throw Errno.current }
            return DirectoryHandle(fd: fd)
        }
    }

    public func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        DirectoryHandle(fd: try retryingOnInterrupt { openat(parent.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) })
    }

    public func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        // getdents64 straight on the walker's descriptor: no dup, fdopendir or closedir per
        // directory. The buffer is per thread and reused.
        let buffer = Self.readBuffer
        while true {
            let n = try retryingOnInterrupt { evindex_getdents64(directory.fd, buffer, Self.readBufferSize) }
            if n == 0 { return }
            var offset = 0
            while offset < n {
                // struct linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, char d_name[]
                let record = buffer + offset
                let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                let name = (record + 19).assumingMemoryBound(to: CChar.self)
                let nameLength = strlen(name)
                if !(name[0] == 0x2E && (nameLength == 1 || (nameLength == 2 && name[1] == 0x2E))) {
                    body(name, nameLength)
                }
                offset += length
            }
        }
    }

    static let readBufferSize = 128 * 1024

    /// One getdents64 buffer per thread, allocated on first use and kept.
    private static var readBuffer: UnsafeMutableRawPointer {
        if let existing = pthread_getspecific(readBufferKey) { return existing }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: readBufferSize, alignment: 16)
        pthread_setspecific(readBufferKey, buffer)
        return buffer
    }

    private static let readBufferKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { $0?.deallocate() }
        return key
    }()

    public func stat(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> EntryStat {
        var st = evindex_stat()
        _ = try retryingOnInterrupt { evindex_stat(directory.fd, name, &st) }
        return EntryStat(st)
    }

    public func stat(_ directory: DirectoryHandle) throws(Errno) -> EntryStat {
        var st = evindex_stat()
        _ = try retryingOnInterrupt { evindex_stat(directory.fd, "", &st) }
        return EntryStat(st)
    }

    public func close(_ directory: DirectoryHandle) {
        Glibc.close(directory.fd)
    }

    public func stat(atPath path: UnsafePointer<CChar>) throws(Errno) -> EntryStat {
        // An empty path would be the working directory's own stat (AT_EMPTY_PATH).
        guard path[0] != 0 else { throw Errno.noSuchFileOrDirectory }
        // Relative to no directory: an absolute path ignores the descriptor.
        return try LongPath.at(path) { (parent, name) throws(Errno) in try stat(DirectoryHandle(fd: parent), name) }
    }

    public func readFile(atPath path: UnsafePointer<CChar>) throws(Errno) -> [UInt8] {
        try LongPath.at(path) { (parent, name) throws(Errno) in try readFile(DirectoryHandle(fd: parent), name) }
    }
}
