/// The `--reject` or `--accept` globs of a run, compiled once into a set.
///
/// A glob with no `/` matches an entry's name; one that starts with `/` matches its
/// absolute path; any other with a `/` matches its path relative to the root. Plain names
/// are found by hash and `*suffix` globs by their last byte, so the cost per entry does
/// not grow with the number of such globs; the rest are matched one by one.
struct GlobSet: Sendable {
    private enum Scope: Sendable { case name, relative, absolute }
    private struct Glob: Sendable {
        var text: String
        var bytes: [UInt8]
        var scope: Scope
    }
    private let globs: [Glob]
    private let literalByHash: [UInt64: [Int]]
    private let suffixByLastByte: [UInt8: [(Int, [UInt8])]]
    private let others: [Int]
    private let needsPath: Bool

    init(_ texts: [String]) {
        var globs: [Glob] = []
        var literal: [UInt64: [Int]] = [:]
        var suffix: [UInt8: [(Int, [UInt8])]] = [:]
        var others: [Int] = []
        for text in texts {
            let bytes = Array(text.utf8)
            let scope: Scope = bytes.first == UInt8(ascii: "/") ? .absolute : bytes.contains(UInt8(ascii: "/")) ? .relative : .name
            let index = globs.count
            globs.append(Glob(text: text, bytes: scope == .absolute ? Array(bytes.dropFirst()) : bytes, scope: scope))
            if scope == .name && !bytes.contains(where: IgnoreFile.isSpecial) {
                literal[fnv1a(bytes), default: []].append(index)
            } else if scope == .name, bytes.count > 1, bytes[0] == UInt8(ascii: "*"), !bytes[1...].contains(where: IgnoreFile.isSpecial) {
                suffix[bytes.last!, default: []].append((index, Array(bytes[1...])))
            } else {
                others.append(index)
            }
        }
        self.globs = globs
        self.literalByHash = literal
        self.suffixByLastByte = suffix
        self.others = others
        self.needsPath = globs.contains { $0.scope != .name }
    }

    var isEmpty: Bool { globs.isEmpty }

    /// The first glob (in the order given) that matches the entry, if any.
    func firstMatch(name: UnsafeRawBufferPointer, relativeTo directory: [UInt8], root: [UInt8]) -> String? {
        var best = Int.max
        if let hits = literalByHash[fnv1a(name)] {
            for i in hits where i < best && globs[i].bytes.elementsEqual(name) { best = i }
        }
        if let last = name.last, let hits = suffixByLastByte[last] {
            for (i, s) in hits where i < best && name.count >= s.count && name.suffix(s.count).elementsEqual(s) { best = i }
        }
        if !others.isEmpty {
            var relative: [UInt8] = []
            if needsPath {
                relative = directory
                if !relative.isEmpty { relative.append(UInt8(ascii: "/")) }
                relative.append(contentsOf: name)
            }
            // The absolute path without its leading slash, as such globs are stored; built
            // once per entry, and only if an absolute glob is reached.
            var absolute: [UInt8]?
            for i in others where i < best {
                let g = globs[i]
                let hit: Bool
                switch g.scope {
                case .name: hit = g.bytes.withUnsafeBytes { Wildmatch.matches($0, name, pathname: false) }
                case .relative: hit = Wildmatch.matches(g.bytes, relative, pathname: true)
                case .absolute:
                    if absolute == nil {
                        var a = root == [UInt8(ascii: "/")] ? [] : Array(root.dropFirst())
                        if !a.isEmpty { a.append(UInt8(ascii: "/")) }
                        absolute = a + relative
                    }
                    hit = Wildmatch.matches(g.bytes, absolute!, pathname: true)
                }
                if hit { best = i; break }
            }
        }
        return best == .max ? nil : globs[best].text
    }
}

@inline(__always)
func fnv1a<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
