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

/// Where git finds the user's excludes file: `core.excludesFile` in the global config
/// (`$GIT_CONFIG_GLOBAL`, else `$XDG_CONFIG_HOME/git/config` then `~/.gitconfig`, the later
/// winning), else `$XDG_CONFIG_HOME/git/ignore` (`~/.config/git/ignore`).
enum GitConfig {
    static func excludesFile(environment: [String: String], readFile: ([UInt8]) -> [UInt8]?) -> [UInt8]? {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        let xdg = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home.map { $0 + "/.config" }
        var configs: [String] = []
        if let global = environment["GIT_CONFIG_GLOBAL"], !global.isEmpty {
            configs = [global]
        } else {
            if let xdg { configs.append(xdg + "/git/config") }
            if let home { configs.append(home + "/.gitconfig") }
        }
        var found: [UInt8]?
        for config in configs {
            if let text = readFile(Array(config.utf8)), let value = excludesFile(in: text, environment: environment) { found = value }
        }
        if let found { return found }
        return xdg.map { Array(($0 + "/git/ignore").utf8) }
    }

    /// `core.excludesFile` in one config file's text (the last one set), `~/` expanded.
    static func excludesFile(in text: [UInt8], environment: [String: String]) -> [UInt8]? {
        var inCore = false
        var value: [UInt8]?
        for rawLine in text.split(separator: UInt8(ascii: "\n")) {
            var line = String(decoding: rawLine, as: UTF8.self)
            line = String(line.drop(while: { $0 == " " || $0 == "\t" }))
            if line.hasPrefix("[") {
                let section = line.dropFirst().prefix(while: { $0 != "]" && $0 != " " && $0 != "\"" })
                inCore = section.lowercased() == "core"
                continue
            }
            guard inCore, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingBlanks().lowercased()
            guard key == "excludesfile" else { continue }
            var v = line[line.index(after: eq)...].trimmingBlanks()
            if v.hasPrefix("\""), let close = v.dropFirst().firstIndex(of: "\"") {
                v = String(v[v.index(after: v.startIndex)..<close])
            } else if let comment = v.firstIndex(where: { $0 == ";" || $0 == "#" }) {
                // An unquoted ';' or '#' starts a comment.
                v = v[..<comment].trimmingBlanks()
            }
            if v.hasPrefix("~/"), let home = environment["HOME"] { v = home + v.dropFirst() }
            value = v.isEmpty ? nil : Array(v.utf8)
        }
        return value
    }
}

extension StringProtocol {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
