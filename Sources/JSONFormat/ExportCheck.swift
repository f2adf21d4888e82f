import Events
import History

/// The line numbers of an export's base entries and events, in order.
struct ExportLines {
    var base: [Int] = []
    var events: [Int] = []
}

/// What an export must not hold, checked before anything is written.
///
/// Rule: a root is an absolute path without NUL and without `.` or `..` components; a name
/// is one component (not empty, not `.` or `..`, no `/`, no NUL); every parent an entry,
/// rejection or event names is a directory the export has given (the run's root, a base
/// directory, or one an earlier event created or moved there). Motivation: `import` took
/// `a/b`, `..` and relative roots, and the index it wrote then claimed paths outside its
/// root.
enum ExportCheck {
    static func name(_ name: [UInt8]) throws {
        guard !name.isEmpty else { throw ImportFormatError("an empty name") }
        guard name != [0x2E], name != [0x2E, 0x2E] else { throw ImportFormatError("the name \"\(String(decoding: name, as: UTF8.self))\"") }
        guard !name.contains(0x2F), !name.contains(0) else {
            throw ImportFormatError("the name \"\(String(decoding: name, as: UTF8.self))\" holds a / or a NUL")
        }
    }

    static func root(_ root: [UInt8]) throws {
        let text = String(decoding: root, as: UTF8.self)
        guard root.first == 0x2F else { throw ImportFormatError("the root \"\(text)\" is not an absolute path") }
        guard !root.contains(0) else { throw ImportFormatError("the root \"\(text)\" holds a NUL") }
        for component in root.split(separator: 0x2F) where component.elementsEqual([0x2E]) || component.elementsEqual([0x2E, 0x2E]) {
            throw ImportFormatError("the root \"\(text)\" holds a . or .. component")
        }
    }

    static func namesAndRoot(_ event: Event) throws {
        switch event {
        case let .jobStarted(root, _, _, _, _): try Self.root(root)
        case let .pathRejected(_, n, _), let .entryCreated(_, n, _), let .entryUpdated(_, n, _, _), let .entryRemoved(_, n):
            try name(n)
        case let .entryMoved(_, from, _, to, _):
            try name(from)
            try name(to)
        case let .nonCriticalError(_, n, _, _) where !n.isEmpty: try name(n)
        default: break
        }
    }

    /// The first line naming a parent the export has not given, and why.
    static func parents(_ exported: ExportedRun, _ lines: ExportLines) -> (Int, String)? {
        var known: Set<UInt64> = [exported.run.rootDirID]
        for entry in exported.base where entry.rule == nil && entry.metadata.kind == .directory { known.insert(entry.metadata.dirID) }
        for (entry, line) in zip(exported.base, lines.base) where !known.contains(entry.parent) {
            return (line, "parent \(entry.parent) is no directory of the export")
        }
        for (record, line) in zip(exported.events, lines.events) {
            var named: [UInt64] = []
            switch record.event {
            case let .jobStarted(_, rootDirID, _, _, _): known.insert(rootDirID)
            case let .directoryListed(dirID, _): named = [dirID]
            case let .pathRejected(parent, _, _), let .entryRemoved(parent, _): named = [parent]
            case let .entryCreated(parent, _, m), let .entryUpdated(parent, _, _, m):
                named = [parent]
                if m.kind == .directory { known.insert(m.dirID) }
            case let .entryMoved(from, _, to, _, m):
                named = [from, to]
                if m.kind == .directory { known.insert(m.dirID) }
            default: break
            }
            if let missing = named.first(where: { !known.contains($0) }) {
                return (line, "parent \(missing) is no directory of the export")
            }
        }
        return nil
    }
}
