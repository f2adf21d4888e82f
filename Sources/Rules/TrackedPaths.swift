/// The paths git tracks in a work tree, read from its index (`.git/index`, versions 2 to 4).
///
/// Rule: git's ignore rules apply to untracked files only: a tracked file is never
/// ignored, and a directory holding one is entered (its untracked entries stay ignored by
/// the rule that ignores the directory). Index format (gitformat-index): a 12-byte header
/// `DIRC`, version, entry count; each entry 40 bytes of stat data, the object id (20
/// bytes, 32 in a SHA-256 repository), 16 bits of flags (and 16 more in version 3 and
/// later when the extended bit is set), then the path (a submodule, mode 0o160000, is a
/// directory of the work tree): NUL-terminated and padded with NULs
/// to a multiple of 8 bytes in versions 2 and 3; in version 4, a varint of how many bytes
/// to drop from the previous path, then the NUL-terminated rest, unpadded. Motivation:
/// `git add -f build/keep.txt` keeps that file in git's eyes, and it vanished from the
/// index.
struct TrackedPaths: Sendable {
    /// Tracked paths relative to the top of the work tree.
    private let files: Set<[UInt8]>
    /// Every directory above a tracked path (a sparse index's directory entries too).
    private let directories: Set<[UInt8]>

    /// Parses an index file; nil when it is not one this reader knows or is damaged (then
    /// nothing is taken as tracked, as before this reader existed).
    ///
    /// - Parameter idLength: 20 (SHA-1), or 32 in a repository whose config says
    ///   `extensions.objectFormat = sha256`.
    init?(index bytes: [UInt8], idLength: Int = 20) {
        guard bytes.count >= 12, bytes.starts(with: Array("DIRC".utf8)) else { return nil }
        func u32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        let version = u32(4), count = u32(8)
        guard (2...4).contains(version) else { return nil }
        var files: Set<[UInt8]> = [], directories: Set<[UInt8]> = []
        do {
            var at = 12
            var previous: [UInt8] = []
            var sound = true
            for _ in 0..<count {
                let start = at
                guard at + 40 + idLength + 2 <= bytes.count else { sound = false; break }
                let mode = u32(at + 24)
                at += 40 + idLength
                let flags = Int(bytes[at]) << 8 | Int(bytes[at + 1])
                at += 2
                if version >= 3 && flags & 0x4000 != 0 { at += 2 }
                var path: [UInt8]
                if version == 4 {
                    var drop = 0
                    guard at < bytes.count else { sound = false; break }
                    var c = Int(bytes[at])
                    at += 1
                    drop = c & 0x7F
                    while c & 0x80 != 0 {
                        // git's decode_varint refuses what would overflow.
                        guard at < bytes.count, drop < Int.max >> 8 else { sound = false; break }
                        c = Int(bytes[at])
                        at += 1
                        drop = ((drop + 1) << 7) | (c & 0x7F)
                    }
                    guard sound, drop <= previous.count, let end = bytes[at...].firstIndex(of: 0) else { sound = false; break }
                    path = Array(previous[..<(previous.count - drop)]) + bytes[at..<end]
                    at = end + 1
                } else {
                    guard at < bytes.count, let end = bytes[at...].firstIndex(of: 0) else { sound = false; break }
                    path = Array(bytes[at..<end])
                    at = start + ((end + 1 - start + 7) / 8) * 8
                    // The padding is NULs: a wrong id length shows here.
                    guard at <= bytes.count, bytes[end..<at].allSatisfy({ $0 == 0 }) else { sound = false; break }
                }
                guard !path.isEmpty, path.first != UInt8(ascii: "/") else { sound = false; break }
                previous = path
                if path.last == UInt8(ascii: "/") || mode & 0o170000 == 0o160000 {
                    // A sparse index's directory (everything below is tracked), or a submodule.
                    if path.last == UInt8(ascii: "/") { path.removeLast() }
                    directories.insert(path)
                } else {
                    files.insert(path)
                }
                var cut = path
                while let slash = cut.lastIndex(of: UInt8(ascii: "/")) {
                    cut.removeSubrange(slash...)
                    if !directories.insert(cut).inserted { break }
                }
            }
            guard sound else { return nil }
        }
        self.files = files
        self.directories = directories
    }

    var isEmpty: Bool { files.isEmpty && directories.isEmpty }

    /// Whether the entry at `path` (relative to the top) is tracked: a tracked file, or a
    /// directory with a tracked path below it.
    func contains(_ path: [UInt8], isDirectory: Bool) -> Bool {
        isDirectory ? directories.contains(path) : files.contains(path)
    }
}
