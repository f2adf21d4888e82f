import Foundation
import Testing

/// What `find` sees below a root: the independent oracle for `ls` and `du`.
public struct FindEntry: Hashable {
    public var path: [UInt8]
    public var kind: String
    public var size: UInt64
    public var inode: UInt64
    public var mtimeNs: Int64

    public init(path: [UInt8], kind: String, size: UInt64, inode: UInt64, mtimeNs: Int64) {
        self.path = path; self.kind = kind; self.size = size; self.inode = inode; self.mtimeNs = mtimeNs
    }
}

public enum FindOracle {
    /// Every entry below `root` (not the root itself), as `find -printf` reports it.
    public static func entries(_ root: String) throws -> [FindEntry] {
        let r = try Support.run(["/usr/bin/find", root, "-mindepth", "1", "-printf", "%p\\0%y\\0%s\\0%i\\0%T@\\0"])
        #expect(r.status == 0, "find failed: \(r.stderr)")
        let fields = r.stdout.split(separator: 0, omittingEmptySubsequences: false)
        var result: [FindEntry] = []
        var i = 0
        while i + 5 <= fields.count {
            let kind: String
            switch String(decoding: fields[i + 1], as: UTF8.self) {
            case "f": kind = "file"
            case "d": kind = "dir"
            case "l": kind = "symlink"
            default: kind = "other"
            }
            result.append(
                FindEntry(
                    path: Array(fields[i]), kind: kind,
                    size: UInt64(String(decoding: fields[i + 2], as: UTF8.self))!,
                    inode: UInt64(String(decoding: fields[i + 3], as: UTF8.self))!,
                    mtimeNs: nanoseconds(String(decoding: fields[i + 4], as: UTF8.self))))
            i += 5
        }
        return result
    }

    /// "1600000000.1234567890" → nanoseconds, exactly (no floating point).
    public static func nanoseconds(_ text: String) -> Int64 {
        let parts = text.split(separator: ".")
        let seconds = Int64(parts[0])!
        var fraction = parts.count > 1 ? String(parts[1]) : ""
        fraction = String((fraction + "000000000").prefix(9))
        return seconds * 1_000_000_000 + Int64(fraction)!
    }

    /// For every directory (root included): (size of regular files below, files, dirs).
    public static func totals(root: [UInt8], entries: [FindEntry]) -> [[UInt8]: (Int64, Int64, Int64)] {
        var totals: [[UInt8]: (Int64, Int64, Int64)] = [root: (0, 0, 0)]
        for e in entries where e.kind == "dir" { totals[e.path] = (0, 0, 0) }
        for e in entries {
            var dir = e.path
            while dir.count > root.count {
                dir = Array(dir[..<dir.lastIndex(of: UInt8(ascii: "/"))!])
                guard var t = totals[dir] else { break }
                if e.kind == "file" { t.0 += Int64(e.size); t.1 += 1 }
                if e.kind == "dir" { t.2 += 1 }
                totals[dir] = t
            }
        }
        return totals
    }
}

/// An entry's identity on disk: a rename keeps it, a new file given a freed inode does not.
public struct Identity: Hashable {
    public var inode: UInt64
    public var birth: String
}

public struct IdentifiedEntry {
    public var path: [UInt8]
    public var kind: String
    public var size: UInt64
    public var mtime: String
    public var identity: Identity
}

/// Net changes between two `find` listings of one tree.
public struct NetChanges: CustomStringConvertible {
    public var created = 0, removed = 0, movedFiles = 0, movedDirs = 0, modifiedFiles = 0
    public var description: String {
        "created \(created), removed \(removed), moved files \(movedFiles), moved dirs \(movedDirs), modified files \(modifiedFiles)"
    }
}

extension FindOracle {
    /// Every entry below `root` with its identity: inode and birth time to the
    /// nanosecond, from coreutils `stat` (statx; this `find` cannot print birth times).
    public static func identities(_ root: String) throws -> [IdentifiedEntry] {
        let script = "find \"$1\" -mindepth 1 -print0 | xargs -0 stat --printf '%n\\0%F\\0%s\\0%i\\0%.9Y\\0%w\\0'"
        let r = try Support.run(["/bin/sh", "-c", script, "sh", root])
        #expect(r.status == 0, "\(r.stderr)")
        let f = r.stdout.split(separator: 0, omittingEmptySubsequences: false).map { Array($0) }
        var result: [IdentifiedEntry] = []
        var i = 0
        while i + 6 <= f.count {
            let type = String(decoding: f[i + 1], as: UTF8.self)
            let kind = type == "directory" ? "dir" : type.hasPrefix("regular") ? "file" : type
            result.append(
                IdentifiedEntry(
                    path: f[i], kind: kind,
                    size: UInt64(String(decoding: f[i + 2], as: UTF8.self))!,
                    mtime: String(decoding: f[i + 4], as: UTF8.self),
                    identity: Identity(
                        inode: UInt64(String(decoding: f[i + 3], as: UTF8.self))!,
                        birth: String(decoding: f[i + 5], as: UTF8.self))))
            i += 6
        }
        return result
    }

    /// Created, removed, moved (its parent or name changed, not merely an ancestor) and
    /// modified (same place, new size or mtime) entries.
    public static func changes(before: [IdentifiedEntry], after: [IdentifiedEntry]) -> NetChanges {
        func parentAndName(_ entries: [IdentifiedEntry]) -> [Identity: (Identity?, [UInt8])] {
            var byPath: [[UInt8]: Identity] = [:]
            for e in entries { byPath[e.path] = e.identity }
            var result: [Identity: (Identity?, [UInt8])] = [:]
            for e in entries {
                let cut = e.path.lastIndex(of: UInt8(ascii: "/"))!
                result[e.identity] = (byPath[Array(e.path[..<cut])], Array(e.path[(cut + 1)...]))
            }
            return result
        }
        let old = parentAndName(before), new = parentAndName(after)
        let oldByIdentity = Dictionary(before.map { ($0.identity, $0) }, uniquingKeysWith: { a, _ in a })
        var net = NetChanges()
        for e in after {
            guard let o = oldByIdentity[e.identity] else { net.created += 1; continue }
            let (op, on) = old[e.identity]!, (np, nn) = new[e.identity]!
            if op != np || on != nn {
                if e.kind == "dir" { net.movedDirs += 1 } else { net.movedFiles += 1 }
            } else if e.kind == "file" && (o.size != e.size || o.mtime != e.mtime) {
                net.modifiedFiles += 1
            }
        }
        let afterIdentities = Set(after.map(\.identity))
        net.removed = before.filter { !afterIdentities.contains($0.identity) }.count
        return net
    }
}
