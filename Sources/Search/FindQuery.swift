import Events

#if canImport(Glibc)
    import Glibc
#endif

/// Why a `find` could not be asked: one line for the user.
public enum FindError: Error, CustomStringConvertible, Sendable {
    case badPattern(String)
    case badFilter(String)

    public var description: String {
        switch self {
        case let .badPattern(message), let .badFilter(message): message
        }
    }
}

/// The question `evindex find` asks of every indexed entry: a name pattern and filters,
/// all of which must hold.
///
/// Rule: filters are fd's. `kinds` and `extensions` match any of theirs; a size filter
/// holds only for regular files (a directory has no size of its own to compare); times are
/// the entry's mtime; depth counts from the searched directory (its children are depth 1).
public struct FindQuery: Sendable {
    public var pattern: NamePattern?
    /// Match `pattern` against the whole path instead of the name.
    public var fullPath = false
    public var kinds: Set<EntryKind> = []
    /// Lower-cased extensions without the dot; a name matches one when it ends in `.ext`
    /// (compared without case), so `tar.gz` works as fd's does.
    public var extensions: [[UInt8]] = []
    public var minSize: UInt64?
    public var maxSize: UInt64?
    /// mtime at least / at most, in nanoseconds since the epoch.
    public var changedAfterNs: Int64?
    public var changedBeforeNs: Int64?
    /// fd's `--owner`: the entry's uid and gid must be these (an entry recorded before
    /// schema 3, without an owner, matches neither).
    public var uid: UInt32?
    public var gid: UInt32?
    public var maxDepth: Int?

    public init() {}

    /// Whether the entry's metadata passes every filter but the pattern and the depth.
    @inline(__always)
    func admits(_ m: EntryMetadata) -> Bool {
        if !kinds.isEmpty && !kinds.contains(m.kind) { return false }
        if minSize != nil || maxSize != nil {
            guard m.kind == .file else { return false }
            if let minSize, m.size < minSize { return false }
            if let maxSize, m.size > maxSize { return false }
        }
        if let changedAfterNs, m.mtimeNs < changedAfterNs { return false }
        if let changedBeforeNs, m.mtimeNs > changedBeforeNs { return false }
        if uid != nil || gid != nil {
            guard m.hasOwnership else { return false }
            if let uid, m.uid != uid { return false }
            if let gid, m.gid != gid { return false }
        }
        return true
    }

    /// Whether `name` ends in one of `extensions`.
    func hasExtension(_ name: UnsafeRawBufferPointer) -> Bool {
        guard !extensions.isEmpty else { return true }
        for ext in extensions where name.count > ext.count {
            let dot = name.count - ext.count - 1
            guard name[dot] == UInt8(ascii: ".") else { continue }
            var same = true
            for (i, e) in ext.enumerated() {
                let b = name[dot + 1 + i]
                if (b &- 0x41 < 26 ? b | 0x20 : b) != e { same = false; break }
            }
            if same { return true }
        }
        return false
    }
}

/// fd's size argument: `+N` at least N, `-N` at most N, `N` exactly, with units b, k, m, g,
/// t (powers of 1000) and ki, mi, gi, ti (powers of 1024), any case; no unit is bytes.
public enum SizeFilter {
    public enum Bound: Sendable, Equatable { case atLeast(UInt64), atMost(UInt64), exactly(UInt64) }

    public static func parse(_ text: String) throws(FindError) -> Bound {
        var s = Substring(text.lowercased())
        let sign = s.first
        if sign == "+" || sign == "-" { s = s.dropFirst() }
        let digits = s.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
        let unit = s.dropFirst(digits.count)
        let multipliers: [Substring: Double] = [
            "": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
            "ki": 1024, "kib": 1024, "mi": 1_048_576, "mib": 1_048_576, "gi": 1_073_741_824, "gib": 1_073_741_824,
            "ti": 1_099_511_627_776, "tib": 1_099_511_627_776,
        ]
        guard let number = Double(digits), let multiplier = multipliers[unit], number >= 0,
            number * multiplier < 1.8e19
        else {
            throw FindError.badFilter(
                "invalid size \(text): want +N, -N or N with a unit b, k, m, g, t (powers of 1000) or ki, mi, gi, ti (powers of 1024), e.g. +10m")
        }
        let bytes = UInt64((number * multiplier).rounded())
        switch sign {
        case "+": return .atLeast(bytes)
        case "-": return .atMost(bytes)
        default: return .exactly(bytes)
        }
    }
}

/// A point in time given as a duration before now (`30d`, `2h`, `90min`, `1w`, `45s`, units
/// combined as `1d12h`) or as a date (`2026-11-01`, `2026-11-01T08:00:00Z`, UTC).
public enum TimeFilter {
    /// The wall clock, in nanoseconds since the epoch: what durations count back from.
    public static func nowNs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Nanoseconds since the epoch.
    public static func parse(_ text: String, nowNs: Int64) throws(FindError) -> Int64 {
        if let ms = parseDate(text) { return ms * 1_000_000 }
        let units: [(String, Int64)] = [
            ("weeks", 604_800), ("week", 604_800), ("w", 604_800), ("days", 86_400), ("day", 86_400), ("d", 86_400),
            ("hours", 3_600), ("hour", 3_600), ("h", 3_600), ("minutes", 60), ("minute", 60), ("min", 60), ("m", 60),
            ("seconds", 1), ("second", 1), ("sec", 1), ("s", 1),
        ]
        var rest = Substring(text.lowercased())
        var seconds: Int64 = 0
        var parsedAny = false
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            rest = rest.dropFirst(digits.count)
            guard let n = Int64(digits), let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else {
                throw FindError.badFilter("invalid time \(text): want a duration like 30d, 2h, 90min, 1w or a date like 2026-11-01")
            }
            rest = rest.dropFirst(unit.count)
            seconds += n * scale
            parsedAny = true
        }
        guard parsedAny else { throw FindError.badFilter("invalid time \(text): want a duration like 30d or a date like 2026-11-01") }
        return nowNs - seconds * 1_000_000_000
    }

    /// Milliseconds since the epoch from `2026-11-30` or `2026-11-30T05:00:00.250Z` (seconds,
    /// fraction and `Z` or `+00:00` optional; UTC); nil for anything else. The one date
    /// parser: `find`'s times and `log --since/--until`.
    public static func parseDate(_ text: String) -> Int64? {
        var s = Substring(text)
        if s.hasSuffix("Z") || s.hasSuffix("z") {
            s = s.dropLast()
        } else if s.hasSuffix("+00:00") {
            s = s.dropLast(6)
        }
        let parts = s.split(maxSplits: 1, whereSeparator: { $0 == "T" || $0 == "t" || $0 == " " })
        guard let date = parts.first else { return nil }
        let d = date.split(separator: "-", omittingEmptySubsequences: false)
        guard d.count == 3, let year = Int64(d[0]), let month = Int64(d[1]), let day = Int64(d[2]),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var secondsOfDay: Int64 = 0, millis: Int64 = 0
        if parts.count == 2 {
            let t = parts[1].split(separator: ":", omittingEmptySubsequences: false)
            guard t.count == 2 || t.count == 3, let h = Int64(t[0]), let m = Int64(t[1]), (0...23).contains(h), (0...59).contains(m)
            else { return nil }
            var sec: Int64 = 0
            if t.count == 3 {
                let whole = t[2].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                guard let v = Int64(whole[0]), (0...60).contains(v) else { return nil }
                sec = v
                if whole.count == 2 {
                    guard whole[1].allSatisfy({ $0.isASCII && $0.isNumber }), let ms = Int64(String((whole[1] + "000").prefix(3)))
                    else { return nil }
                    millis = ms
                }
            }
            secondsOfDay = h * 3600 + m * 60 + sec
        }
        return (daysFromCivil(year, month, day) * 86_400 + secondsOfDay) * 1000 + millis
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// fd's `--owner USER[:GROUP]`: a user and a group by name or number, either left out
/// (`USER`, `:GROUP`, `USER:`); names are looked up in this machine's user and group
/// databases.
public enum OwnerFilter {
    public static func parse(_ text: String) throws(FindError) -> (uid: UInt32?, gid: UInt32?) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let user = parts[0], group = parts.count > 1 ? parts[1] : ""
        guard !(user.isEmpty && group.isEmpty) else {
            throw FindError.badFilter("invalid owner \(text): want USER, USER:GROUP or :GROUP")
        }
        var uid: UInt32?, gid: UInt32?
        if !user.isEmpty {
            if let n = UInt32(user) {
                uid = n
            } else if let entry = getpwnam(user) {
                uid = entry.pointee.pw_uid
            } else {
                throw FindError.badFilter("no user \(user) on this machine")
            }
        }
        if !group.isEmpty {
            if let n = UInt32(group) {
                gid = n
            } else if let entry = getgrnam(group) {
                gid = entry.pointee.gr_gid
            } else {
                throw FindError.badFilter("no group \(group) on this machine")
            }
        }
        return (uid, gid)
    }
}
