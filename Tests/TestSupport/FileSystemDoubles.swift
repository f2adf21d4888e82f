import Foundation
import Traversal

/// A test double of the filesystem capability that passes every call to the real one: a
/// double implements only the calls it changes.
public protocol PassThroughFileSystem: FileSystem {
    var real: PosixFileSystem { get }
}

extension PassThroughFileSystem {
    public func openRoot(_ path: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle { try real.openRoot(path) }
    public func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        try real.openDirectory(parent, name)
    }
    public func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        try real.readDirectory(directory, body)
    }
    public func stat(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> EntryStat { try real.stat(directory, name) }
    public func stat(_ directory: DirectoryHandle) throws(Errno) -> EntryStat { try real.stat(directory) }
    public func close(_ directory: DirectoryHandle) { real.close(directory) }
    public func readFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8] { try real.readFile(directory, name) }
    public func stat(atPath path: UnsafePointer<CChar>) throws(Errno) -> EntryStat { try real.stat(atPath: path) }
    public func readFile(atPath path: UnsafePointer<CChar>) throws(Errno) -> [UInt8] { try real.readFile(atPath: path) }
}

/// A filesystem that fails chosen calls, so faults are tested without root or races.
public struct FaultyFileSystem: PassThroughFileSystem {
    public let real = PosixFileSystem()
    /// Failures by (operation, entry name).
    public let faults: [String: Errno]
    /// Names of directories opened, by descriptor, so `readDirectory` can fail by name.
    public let opened = OpenedNames()

    public init(faults: [String: Errno]) { self.faults = faults }

    public final class OpenedNames: @unchecked Sendable {
        // @unchecked: every access holds `lock`.
        private let lock = NSLock()
        private var names: [Int32: String] = [:]
        public subscript(fd: Int32) -> String? {
            get { lock.lock(); defer { lock.unlock() }; return names[fd] }
            set { lock.lock(); names[fd] = newValue; lock.unlock() }
        }
    }

    public func fault(_ operation: String, _ name: UnsafePointer<CChar>) -> Errno? { faults[operation + ":" + String(cString: name)] }

    public func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        if let e = fault("open", name) { throw e }
        let handle = try real.openDirectory(parent, name)
        opened[handle.fd] = String(cString: name)
        return handle
    }

    public func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        if let name = opened[directory.fd], let e = faults["read:" + name] {
            // Fail part-way, as a disk error would: one name is delivered first.
            var first = true
            try real.readDirectory(directory) { n, l in if first { body(n, l); first = false } }
            throw e
        }
        try real.readDirectory(directory, body)
    }

    public func stat(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> EntryStat {
        if let e = fault("stat", name) { throw e }
        return try real.stat(directory, name)
    }

    public func close(_ directory: DirectoryHandle) {
        opened[directory.fd] = nil
        real.close(directory)
    }
}
