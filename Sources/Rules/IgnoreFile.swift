/// One line of a `.gitignore`-style file, parsed as git's `add_pattern` does.
public struct IgnorePattern: Sendable {
    /// The glob, without its `!`, its trailing `/`, and (when anchored) its leading `/`.
    var glob: [UInt8]
    /// `!pattern`: a match re-includes.
    var negated: Bool
    /// `pattern/`: matches directories only.
    var directoryOnly: Bool
    /// No `/` but a trailing one: matches the last component at any depth. Otherwise the
    /// path relative to the file's directory.
    var basenameOnly: Bool
    /// The line as written (what `git check-ignore -v` prints).
    public var text: [UInt8]
    /// 1-based line number in its file.
    public var line: Int
    /// The glob is a plain name (no special byte): compared, not matched.
    var literal: Bool
    /// `*` followed by a plain suffix (`*.log`): a suffix comparison.
    var suffix: [UInt8]?
    /// How many leading bytes hold no wildcard (git's `nowildcardlen`): an anchored
    /// pattern compares them first and matches the rest from there, so a `**` right after
    /// them counts as leading (`d/a**/x` matches `d/a/b/x`, as in git).
    var literalPrefix: Int
}

/// The patterns of one ignore file: a `.gitignore`, `.git/info/exclude` or the user's
/// excludes file. `base` is the directory the file applies to, relative to the work
/// tree's top (empty at the top); patterns with a `/` are anchored there.
public final class IgnoreFile: Sendable {
    public let source: [UInt8]
    let base: [UInt8]
    let patterns: [IgnorePattern]
    /// Indices of patterns by what an entry must have for them to match, so an entry is
    /// tried only against the few that can (as ripgrep's `ignore` groups its globs):
    /// literal basename patterns by name; `*suffix` patterns by their last byte; other
    /// basename patterns that start with literal bytes (`name*`, `ab?c[0-9]`) in a trie of
    /// those bytes; anchored patterns whose directories are literal (`/src/gen/*.c`) by that
    /// directory. Letters are folded in every key; the match itself decides case.
    private let literalNames: [UInt64: [Int]]
    private let suffixesByLastByte: [UInt8: [Int]]
    private let byNamePrefix: PrefixTrie
    private let byDirectory: [UInt64: [Int]]
    /// The other patterns, in file order.
    private let others: [Int]

    public var isEmpty: Bool { patterns.isEmpty }

    /// Parses `contents` as git does: a UTF-8 BOM is skipped, lines end at `\n` (a `\r`
    /// before it is dropped), `#` starts a comment, a NUL ends the line's pattern (git reads
    /// each line as a C string), unescaped trailing spaces are trimmed.
    public init(source: [UInt8], base: [UInt8], contents: [UInt8]) {
        self.source = source
        self.base = base
        var patterns: [IgnorePattern] = []
        var start = 0
        if contents.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        var lineNumber = 0
        var i = start
        while i <= contents.count {
            if i == contents.count || contents[i] == UInt8(ascii: "\n") {
                lineNumber += 1
                var end = i
                if end > start && contents[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end > start && contents[start] != UInt8(ascii: "#") {
                    var raw = Array(contents[start..<end])
                    if let nul = raw.firstIndex(of: 0) { raw.removeSubrange(nul...) }
                    if let p = Self.parse(raw, line: lineNumber) { patterns.append(p) }
                }
                start = i + 1
            }
            i += 1
        }
        self.patterns = patterns
        var literalNames: [UInt64: [Int]] = [:]
        var suffixes: [UInt8: [Int]] = [:]
        var byNamePrefix = PrefixTrie()
        var byDirectory: [UInt64: [Int]] = [:]
        var others: [Int] = []
        for (index, p) in patterns.enumerated() {
            if p.basenameOnly && p.literal {
                literalNames[foldedHash(p.glob), default: []].append(index)
            } else if p.basenameOnly, let s = p.suffix, let last = s.last {
                suffixes[folded(last), default: []].append(index)
            } else if p.basenameOnly && p.literalPrefix >= 1 {
                byNamePrefix.insert(p.glob[..<p.literalPrefix], index)
            } else if let directory = Self.literalDirectory(p, base: base) {
                byDirectory[foldedHash(directory), default: []].append(index)
            } else {
                others.append(index)
            }
        }
        self.literalNames = literalNames
        self.suffixesByLastByte = suffixes
        self.byNamePrefix = byNamePrefix
        self.byDirectory = byDirectory
        self.others = others
    }

    /// For an anchored pattern whose wildcards are all in its last component (and no `**`
    /// there, which would cross directories): the one directory, relative to the top, its
    /// matches can be in.
    static func literalDirectory(_ p: IgnorePattern, base: [UInt8]) -> [UInt8]? {
        guard !p.basenameOnly else { return nil }
        let slash = p.glob.lastIndex(of: UInt8(ascii: "/"))
        if let slash, p.literalPrefix <= slash { return nil }
        let last = p.glob[(slash.map { $0 + 1 } ?? 0)...]
        if last.starts(with: [UInt8(ascii: "*"), UInt8(ascii: "*")]) || zip(last, last.dropFirst()).contains(where: { $0 == 42 && $1 == 42 }) {
            return nil
        }
        let inFile = slash.map { Array(p.glob[..<$0]) } ?? []
        if base.isEmpty { return inFile }
        return inFile.isEmpty ? base : base + [UInt8(ascii: "/")] + inFile
    }

    static func isSpecial(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "*") || c == UInt8(ascii: "?") || c == UInt8(ascii: "[") || c == UInt8(ascii: "\\")
    }

    /// One non-comment line to a pattern; nil when nothing is left after trimming.
    static func parse(_ raw: [UInt8], line: Int) -> IgnorePattern? {
        var text = trimTrailingSpaces(raw)
        guard !text.isEmpty else { return nil }
        let written = text
        var negated = false
        if text[0] == UInt8(ascii: "!") {
            negated = true
            text.removeFirst()
        }
        var directoryOnly = false
        if text.last == UInt8(ascii: "/") {
            directoryOnly = true
            text.removeLast()
        }
        let basenameOnly = !text.contains(UInt8(ascii: "/"))
        if !basenameOnly && text.first == UInt8(ascii: "/") { text.removeFirst() }
        guard !text.isEmpty else { return nil }
        let literal = !text.contains(where: isSpecial)
        var suffix: [UInt8]?
        if text.count > 1 && text[0] == UInt8(ascii: "*") && !text[1...].contains(where: isSpecial) {
            suffix = Array(text[1...])
        }
        return IgnorePattern(
            glob: text, negated: negated, directoryOnly: directoryOnly, basenameOnly: basenameOnly,
            text: written, line: line, literal: literal, suffix: suffix,
            literalPrefix: text.firstIndex(where: isSpecial) ?? text.count)
    }

    /// Git's `trim_trailing_spaces`: trailing spaces go unless escaped with a backslash.
    static func trimTrailingSpaces(_ s: [UInt8]) -> [UInt8] {
        var lastSpace: Int?
        var i = 0
        while i < s.count {
            switch s[i] {
            case UInt8(ascii: " "):
                if lastSpace == nil { lastSpace = i }
            case UInt8(ascii: "\\"):
                i += 1
                if i >= s.count { return s }
                lastSpace = nil
            default:
                lastSpace = nil
            }
            i += 1
        }
        if let lastSpace { return Array(s[..<lastSpace]) }
        return s
    }

    /// The last pattern of this file that matches, if any.
    ///
    /// - Parameters:
    ///   - path: the entry's path relative to the work tree's top.
    ///   - nameStart: where its last component starts in `path`.
    ///   - ignoreCase: `core.ignoreCase`: ASCII letters compare in either case.
    func lastMatch(path: UnsafeRawBufferPointer, nameStart: Int, isDirectory: Bool, ignoreCase: Bool = false) -> IgnorePattern? {
        let name = UnsafeRawBufferPointer(rebasing: path[nameStart...])
        var best = -1
        if !literalNames.isEmpty, let hits = literalNames[foldedHash(name)] {
            for i in hits.reversed() where i > best && (!patterns[i].directoryOnly || isDirectory) && same(patterns[i].glob, name, ignoreCase) {
                best = i
                break
            }
        }
        if let last = name.last, let hits = suffixesByLastByte[folded(last)] {
            for i in hits.reversed() where i > best {
                if patterns[i].directoryOnly && !isDirectory { continue }
                let count = patterns[i].suffix!.count
                if name.count >= count && same(patterns[i].suffix!, UnsafeRawBufferPointer(rebasing: name[(name.count - count)...]), ignoreCase) {
                    best = i
                    break
                }
            }
        }
        if !byNamePrefix.isEmpty {
            byNamePrefix.forEachCandidate(name) { i in
                if i > best && matches(patterns[i], path: path, name: name, isDirectory: isDirectory, ignoreCase: ignoreCase) { best = i }
            }
        }
        if !byDirectory.isEmpty, let hits = byDirectory[foldedHash(path[..<max(0, nameStart - 1)])] {
            for i in hits.reversed() where i > best {
                if matches(patterns[i], path: path, name: name, isDirectory: isDirectory, ignoreCase: ignoreCase) {
                    best = i
                    break
                }
            }
        }
        for i in others.reversed() where i > best {
            if matches(patterns[i], path: path, name: name, isDirectory: isDirectory, ignoreCase: ignoreCase) {
                best = i
                break
            }
        }
        return best >= 0 ? patterns[best] : nil
    }

    private func matches(
        _ p: borrowing IgnorePattern, path: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer, isDirectory: Bool, ignoreCase: Bool
    ) -> Bool {
        if p.directoryOnly && !isDirectory { return false }
        return p.glob.withUnsafeBytes { glob in
            if p.basenameOnly {
                return Wildmatch.matches(glob, name, pathname: false, casefold: ignoreCase)
            }
            // Anchored at the file's directory: the path must lie below it.
            var rest = path
            if !base.isEmpty {
                guard path.count > base.count + 1, path[base.count] == UInt8(ascii: "/"),
                    base.withUnsafeBytes({ memcmpEqual($0, UnsafeRawBufferPointer(rebasing: path[..<base.count])) })
                else { return false }
                rest = UnsafeRawBufferPointer(rebasing: path[(base.count + 1)...])
            }
            let prefix = p.literalPrefix
            guard prefix > 0 else { return Wildmatch.matches(glob, rest, pathname: true, casefold: ignoreCase) }
            guard rest.count >= prefix,
                same(UnsafeRawBufferPointer(rebasing: glob[..<prefix]), UnsafeRawBufferPointer(rebasing: rest[..<prefix]), ignoreCase)
            else { return false }
            if prefix == glob.count { return rest.count == prefix }
            return Wildmatch.matches(
                UnsafeRawBufferPointer(rebasing: glob[prefix...]), UnsafeRawBufferPointer(rebasing: rest[prefix...]), pathname: true,
                casefold: ignoreCase)
        }
    }
}

/// Pattern indices by the literal bytes their glob starts with, letters folded: walking a
/// name down the trie meets exactly the patterns whose literal start the name has, however
/// many share a first word.
struct PrefixTrie: Sendable {
    private var children: [[UInt8: Int32]] = [[:]]
    private var indices: [[Int]] = [[]]

    var isEmpty: Bool { children.count == 1 }

    mutating func insert<C: Collection>(_ prefix: C, _ index: Int) where C.Element == UInt8 {
        var node = 0
        for b in prefix {
            let key = folded(b)
            if let next = children[node][key] {
                node = Int(next)
            } else {
                children.append([:])
                indices.append([])
                children[node][key] = Int32(children.count - 1)
                node = children.count - 1
            }
        }
        indices[node].append(index)
    }

    /// Calls `body` with each pattern whose literal start `name` begins with.
    func forEachCandidate(_ name: UnsafeRawBufferPointer, _ body: (Int) -> Void) {
        var node = 0
        for b in name {
            guard let next = children[node][folded(b)] else { return }
            node = Int(next)
            for i in indices[node] { body(i) }
        }
    }
}

/// An ASCII upper-case letter lowered: literal names and suffixes are found by their
/// folded form, then compared exactly or, with `core.ignoreCase`, folded.
@inline(__always)
func folded(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

@inline(__always)
func foldedHash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(folded(b))) &* 0x100_0000_01b3 }
    return h
}

@inline(__always)
func same<A: Collection, B: Collection>(_ a: A, _ b: B, _ ignoreCase: Bool) -> Bool where A.Element == UInt8, B.Element == UInt8 {
    ignoreCase ? a.count == b.count && zip(a, b).allSatisfy { folded($0) == folded($1) } : a.elementsEqual(b)
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    a.count == b.count && a.elementsEqual(b)
}
