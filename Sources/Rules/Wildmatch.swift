/// Git's `wildmatch` over raw bytes: the glob dialect of `.gitignore` files, also used for
/// `--reject` / `--accept` globs.
///
/// `*` matches any run of bytes but `/` (when `pathname` is set), `?` one byte but `/`,
/// `[...]` a class (`!` or `^` negates, ranges, `[:alpha:]` and the other POSIX names,
/// `\` escapes), `\x` the byte x. With `pathname`, `**` between slashes (or at either end)
/// matches any number of directories, zero included; elsewhere it is a `*`. With
/// `casefold` (git's `WM_CASEFOLD`, for `core.ignoreCase`), an upper-case byte of the text
/// or the pattern is lowered before they are compared, exactly where git lowers it: a
/// range also takes the text's upper-case form, `[:upper:]` takes lower case, and a
/// class member or escaped byte is compared as written.
package enum Wildmatch {
    private enum Outcome { case match, noMatch, abortAll, abortToStarStar }

    package static func matches(_ pattern: UnsafeRawBufferPointer, _ text: UnsafeRawBufferPointer, pathname: Bool, casefold: Bool = false) -> Bool {
        dowild(pattern, 0, text, 0, pathname, casefold) == .match
    }

    package static func matches(_ pattern: [UInt8], _ text: [UInt8], pathname: Bool, casefold: Bool = false) -> Bool {
        pattern.withUnsafeBytes { p in text.withUnsafeBytes { t in matches(p, t, pathname: pathname, casefold: casefold) } }
    }

    @inline(__always) private static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
    @inline(__always) private static func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }

    private static let slash = UInt8(ascii: "/")
    private static let backslash = UInt8(ascii: "\\")
    private static let star = UInt8(ascii: "*")

    private static func dowild(
        _ p: UnsafeRawBufferPointer, _ pStart: Int, _ t: UnsafeRawBufferPointer, _ tStart: Int,
        _ pathname: Bool, _ casefold: Bool
    ) -> Outcome {
        var pi = pStart
        var ti = tStart
        while pi < p.count {
            var pc = p[pi]
            if ti >= t.count && pc != star { return .abortAll }
            var tc: UInt8 = ti < t.count ? t[ti] : 0
            if casefold {
                if isUpper(tc) { tc |= 0x20 }
                if isUpper(pc) { pc |= 0x20 }
            }
            switch pc {
            case backslash:
                // A trailing backslash matches nothing.
                pi += 1
                guard pi < p.count else { return .noMatch }
                pc = p[pi]
                if tc != pc { return .noMatch }
            case UInt8(ascii: "?"):
                if pathname && tc == slash { return .noMatch }
            case star:
                var matchSlash: Bool
                pi += 1
                if pi < p.count && p[pi] == star {
                    let before = pi - 2
                    while pi < p.count && p[pi] == star { pi += 1 }
                    let atStart = before < 0 || p[before] == slash
                    let atEnd =
                        pi >= p.count || p[pi] == slash
                        || (p[pi] == backslash && pi + 1 < p.count && p[pi + 1] == slash)
                    if !pathname {
                        matchSlash = true
                    } else if atStart && atEnd {
                        // "**/" also matches no directory at all.
                        if pi < p.count && p[pi] == slash && dowild(p, pi + 1, t, ti, pathname, casefold) == .match { return .match }
                        matchSlash = true
                    } else {
                        matchSlash = false
                    }
                } else {
                    matchSlash = !pathname
                }
                if pi >= p.count {
                    // A trailing star matches the rest, unless that would cross a slash.
                    if !matchSlash {
                        var i = ti
                        while i < t.count { if t[i] == slash { return .abortToStarStar }; i += 1 }
                    }
                    return .match
                }
                if !matchSlash && p[pi] == slash {
                    var i = ti
                    while i < t.count && t[i] != slash { i += 1 }
                    if i >= t.count { return .abortAll }
                    ti = i
                    continue  // p[pi] == '/' is matched against t[ti] == '/' next
                }
                while true {
                    if ti >= t.count { break }
                    let r = dowild(p, pi, t, ti, pathname, casefold)
                    if r != .noMatch {
                        if !matchSlash || r != .abortToStarStar { return r }
                    } else if !matchSlash && t[ti] == slash {
                        return .abortToStarStar
                    }
                    ti += 1
                }
                return .abortAll
            case UInt8(ascii: "["):
                pi += 1
                guard pi < p.count else { return .abortAll }
                var negated = false
                if p[pi] == UInt8(ascii: "!") || p[pi] == UInt8(ascii: "^") {
                    negated = true
                    pi += 1
                }
                var matched = false
                var prev: UInt8 = 0
                var first = true
                while true {
                    guard pi < p.count else { return .abortAll }
                    var c = p[pi]
                    if c == UInt8(ascii: "]") && !first { break }
                    first = false
                    if c == backslash {
                        pi += 1
                        guard pi < p.count else { return .abortAll }
                        c = p[pi]
                        if tc == c { matched = true }
                    } else if c == UInt8(ascii: "-") && prev != 0 && pi + 1 < p.count && p[pi + 1] != UInt8(ascii: "]") {
                        pi += 1
                        var hi = p[pi]
                        if hi == backslash {
                            pi += 1
                            guard pi < p.count else { return .abortAll }
                            hi = p[pi]
                        }
                        if tc <= hi && tc >= prev {
                            matched = true
                        } else if casefold && isLower(tc), tc & ~0x20 <= hi && tc & ~0x20 >= prev {
                            matched = true
                        }
                        c = 0  // a range does not start another range
                    } else if c == UInt8(ascii: "[") && pi + 1 < p.count && p[pi + 1] == UInt8(ascii: ":") {
                        var end = pi + 2
                        while end < p.count && p[end] != UInt8(ascii: "]") { end += 1 }
                        guard end < p.count else { return .abortAll }
                        let nameEnd = end - 1
                        if nameEnd < pi + 2 || p[nameEnd] != UInt8(ascii: ":") {
                            // Not a class name after all: "[" is an ordinary member.
                            if tc == UInt8(ascii: "[") { matched = true }
                        } else {
                            let name = Array(p[(pi + 2)..<nameEnd])
                            guard let member = posixClass(name) else { return .abortAll }
                            if member(tc) || (casefold && isLower(tc) && name.elementsEqual("upper".utf8)) { matched = true }
                            pi = end
                            c = 0
                        }
                    } else if tc == c {
                        matched = true
                    }
                    prev = c
                    pi += 1
                }
                if matched == negated || (pathname && tc == slash) { return .noMatch }
            default:
                if tc != pc { return .noMatch }
            }
            pi += 1
            ti += 1
        }
        return ti >= t.count ? .match : .noMatch
    }

    private static func posixClass(_ name: [UInt8]) -> ((UInt8) -> Bool)? {
        func isAlpha(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        switch String(decoding: name, as: UTF8.self) {
        case "alnum": return { isAlpha($0) || isDigit($0) }
        case "alpha": return isAlpha
        case "blank": return { $0 == 0x20 || $0 == 0x09 }
        case "cntrl": return { $0 < 0x20 || $0 == 0x7F }
        case "digit": return isDigit
        case "graph": return { $0 > 0x20 && $0 < 0x7F }
        case "lower": return { $0 >= 0x61 && $0 <= 0x7A }
        case "print": return { $0 >= 0x20 && $0 < 0x7F }
        case "punct": return { ($0 > 0x20 && $0 < 0x7F) && !isAlpha($0) && !isDigit($0) }
        case "space": return { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        case "upper": return { $0 >= 0x41 && $0 <= 0x5A }
        case "xdigit": return { isDigit($0) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) }
        default: return nil
        }
    }

    /// Whether a pattern is well formed: every `[` closed and every `[:name:]` known. Git
    /// treats a malformed pattern as matching nothing; evindex refuses such a glob given on
    /// the command line or in a rules file.
    static func problem(in pattern: [UInt8]) -> String? {
        var i = 0
        while i < pattern.count {
            let c = pattern[i]
            if c == backslash {
                if i + 1 >= pattern.count { return "ends with an unescaped backslash" }
                i += 2
                continue
            }
            if c == UInt8(ascii: "[") {
                var j = i + 1
                if j < pattern.count && (pattern[j] == UInt8(ascii: "!") || pattern[j] == UInt8(ascii: "^")) { j += 1 }
                if j < pattern.count && pattern[j] == UInt8(ascii: "]") { j += 1 }
                var closed = false
                while j < pattern.count {
                    if pattern[j] == backslash { j += 2; continue }
                    if pattern[j] == UInt8(ascii: "[") && j + 1 < pattern.count && pattern[j + 1] == UInt8(ascii: ":") {
                        var end = j + 2
                        while end < pattern.count && pattern[end] != UInt8(ascii: "]") { end += 1 }
                        if end < pattern.count && end - 1 >= j + 2 && pattern[end - 1] == UInt8(ascii: ":") {
                            let name = Array(pattern[(j + 2)..<(end - 1)])
                            if posixClass(name) == nil {
                                return "unknown character class [:\(String(decoding: name, as: UTF8.self)):]"
                            }
                            j = end + 1
                            continue
                        }
                    }
                    if pattern[j] == UInt8(ascii: "]") { closed = true; break }
                    j += 1
                }
                if !closed { return "unclosed [ at byte \(i + 1)" }
                i = j + 1
                continue
            }
            i += 1
        }
        return nil
    }
}
