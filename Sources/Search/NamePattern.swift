import Events
internal import Rules

/// What `find`'s PATTERN asks of a name (or, with `--full-path`, of a whole path).
///
/// Rule: smart case, as fd and ripgrep do: a pattern without an upper-case letter matches
/// regardless of case, one with an upper-case letter matches case exactly; `caseSensitive`
/// overrides either way. An ASCII pattern is compared with the name's bytes (case folded
/// for ASCII letters in place); a pattern with other letters with the name decoded as
/// UTF-8, lower-cased by Unicode and compared by canonical equivalence (a decomposed "é"
/// matches a composed one).
/// Motivation: names are bytes, and almost every name and pattern is ASCII; comparing bytes
/// keeps a million-name scan free of a String per name.
public struct NamePattern: @unchecked Sendable {
    // @unchecked: `regex` is immutable once built and only read.
    public enum Syntax: Sendable { case substring, glob, regex }

    public let syntax: Syntax
    public let ignoresCase: Bool
    /// The pattern's bytes, lower-cased when case is ignored.
    let bytes: [UInt8]
    let asciiOnly: Bool
    private let pattern: String
    private let lowerString: String
    private let regex: Regex<AnyRegexOutput>?

    /// - Parameter caseSensitive: nil for smart case.
    /// - Throws: `FindError.badPattern` for a regular expression that does not compile.
    public init(_ pattern: String, syntax: Syntax, caseSensitive: Bool?) throws(FindError) {
        self.syntax = syntax
        let ignores = caseSensitive.map { !$0 } ?? !pattern.contains(where: { $0.isUppercase })
        ignoresCase = ignores
        asciiOnly = pattern.utf8.allSatisfy { $0 < 0x80 }
        bytes = ignores ? Array(pattern.lowercased().utf8) : Array(pattern.utf8)
        self.pattern = pattern
        lowerString = pattern.lowercased()
        if syntax == .regex {
            do {
                let compiled = try Regex(pattern)
                regex = ignores ? compiled.ignoresCase() : compiled
            } catch {
                throw FindError.badPattern("invalid regular expression \(pattern): \(error)")
            }
        } else {
            regex = nil
        }
    }

    /// Whether `text` (a name, or a whole path) matches. `scratch` is reused between calls.
    public func matches(_ text: UnsafeRawBufferPointer, scratch: inout [UInt8]) -> Bool {
        switch syntax {
        case .regex:
            return String(decoding: text, as: UTF8.self).contains(regex!)
        case .substring:
            if bytes.isEmpty { return true }
            if !asciiOnly {
                // Letters beyond ASCII: Unicode's lower-casing, and canonical equivalence (a
                // decomposed "é" is the same letter as a composed one).
                let name = String(decoding: text, as: UTF8.self)
                return ignoresCase ? name.lowercased().contains(lowerString) : name.contains(pattern)
            }
            if !ignoresCase { return Self.contains(text, bytes) }
            Self.lowerASCII(text, into: &scratch)
            return scratch.withUnsafeBytes { Self.contains($0, bytes) }
        case .glob:
            guard ignoresCase else { return bytes.withUnsafeBytes { Wildmatch.matches($0, text, pathname: false) } }
            if !text.allSatisfy({ $0 < 0x80 }) && !asciiOnly {
                let lowered = Array(String(decoding: text, as: UTF8.self).lowercased().utf8)
                return Wildmatch.matches(bytes, lowered, pathname: false)
            }
            Self.lowerASCII(text, into: &scratch)
            return bytes.withUnsafeBytes { p in scratch.withUnsafeBytes { Wildmatch.matches(p, $0, pathname: false) } }
        }
    }

    static func lowerASCII(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        for b in text { out.append(b &- 0x41 < 26 ? b | 0x20 : b) }
    }

    /// Whether `needle` occurs in `haystack` (bytes, no folding).
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        let n = needle.count, h = haystack.count
        guard n <= h else { return false }
        let first = needle[0]
        var i = 0
        while i <= h - n {
            if haystack[i] == first {
                var j = 1
                while j < n && haystack[i + j] == needle[j] { j += 1 }
                if j == n { return true }
            }
            i += 1
        }
        return false
    }
}
