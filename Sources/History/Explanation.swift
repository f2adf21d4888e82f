import Events
import Projections

/// Why a path is or is not in the index, read from the views and the log (`evindex why`).
///
/// Rule: the path is followed down from its indexed root one component at a time, and the
/// first component the index cannot follow decides: a non-directory, a directory not
/// entered, a rejection, a listing that met errors, or a name absent when last listed.
/// The answer then names the last event about that component of the kind that made it
/// true. Motivation: a user asking "why is this missing" needs the one place where the
/// walk stopped, not every rule that might apply; the index already knows it.
public struct Explanation: Sendable {
    public enum Reason: Sendable, Equatable {
        /// The path is an indexed root.
        case root
        case indexed(EntryKind, size: UInt64)
        /// A component above the path is not a directory.
        case notADirectory(EntryKind)
        /// A directory above (or at) the path is indexed but was not entered.
        case notEntered
        /// The component (the path itself when `at` is the path) was rejected by `rule`.
        case rejected(rule: [UInt8])
        /// The listing of `at`'s parent met errors and does not hold it.
        case listingIncomplete
        /// `at`'s parent had no such name when last listed.
        case absent
    }

    public var reason: Reason
    /// The path the answer concerns: the path asked about, or the component above it that
    /// decides.
    public var at: [UInt8]
    /// The last event about `at` of the kind that made the answer true, if the log has one.
    public var event: EventRecord?
    /// For an indexed path: the first directory on the way down whose last listing met an
    /// error, so the answer may be older than the disk (`StaleListings`).
    public var staleAt: [UInt8]?

    public var isIndexed: Bool {
        switch reason {
        case .root, .indexed: true
        default: false
        }
    }

    /// Explains `path` (absolute); nil when it is under no indexed root.
    public static func explain(_ snapshot: IndexSnapshot, path target: [UInt8]) throws -> Explanation? {
        guard let root = try snapshot.root(containing: target) else { return nil }
        var dirID = root.dirID
        var here = root.path
        let components = target[root.path.count...].split(separator: UInt8(ascii: "/")).map(Array.init)
        if components.isEmpty { return Explanation(reason: .root, at: here) }
        var staleAt: [UInt8]?
        for (i, name) in components.enumerated() {
            let isLast = i == components.count - 1
            if staleAt == nil, try snapshot.isListingIncomplete(dirID) { staleAt = here }
            here = PathBytes.joined(here, name)
            let reason: Reason
            if let m = try snapshot.entry(parent: dirID, name: name) {
                if isLast {
                    reason = .indexed(m.kind, size: m.size)
                } else if m.kind != .directory {
                    reason = .notADirectory(m.kind)
                } else if m.dirID == 0 {
                    reason = .notEntered
                } else {
                    dirID = m.dirID
                    continue
                }
            } else if let rule = try snapshot.rejection(parent: dirID, name: name) {
                reason = .rejected(rule: rule)
            } else if try snapshot.isListingIncomplete(dirID) {
                reason = .listingIncomplete
            } else {
                reason = .absent
            }
            var answer = Explanation(reason: reason, at: here)
            if answer.isIndexed { answer.staleAt = staleAt }
            answer.event = try lastEvent(snapshot, parent: dirID, name: name, kinds: answer.evidence(isTarget: isLast))
            return answer
        }
        return Explanation(reason: .root, at: here)
    }

    /// The event types that can have made the answer true: a rejection for a rejection, an
    /// entry event for an entry; the removal of a since-rejected entry is not it.
    private func evidence(isTarget: Bool) -> Set<EventType> {
        if case .rejected = reason { return [.pathRejected] }
        return isIndexed || !isTarget ? [.entryCreated, .entryUpdated, .entryMoved] : [.entryRemoved, .nonCriticalError, .entryMoved]
    }

    /// The last event of `kinds` about the name `name` in directory `parent`.
    private static func lastEvent(_ snapshot: IndexSnapshot, parent: UInt64, name: [UInt8], kinds: Set<EventType>) throws -> EventRecord? {
        var found: EventRecord?
        try snapshot.forEachRecord { record in
            guard kinds.contains(record.event.type) else { return true }
            switch record.event {
            case let .entryCreated(p, n, _), let .entryUpdated(p, n, _, _), let .entryRemoved(p, n),
                let .pathRejected(p, n, _), let .nonCriticalError(p, n, _, _):
                if p == parent && n == name { found = record }
            case let .entryMoved(_, _, p, n, _):
                if p == parent && n == name { found = record }
            default:
                break
            }
            return true
        }
        return found
    }
}
