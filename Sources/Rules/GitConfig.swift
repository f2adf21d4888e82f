/// What git's config files say to the ignore rules: `core.excludesFile` and
/// `core.ignoreCase`.
///
/// Rule: read as git's own parser reads them: `[section]` and `[section "subsection"]`
/// headers (only `[core]` itself is core: `[core "x"]` and `[core.x]` are not), keys in
/// any case, values with double quotes, `\"` `\\` `\n` `\t` `\b` escapes, `;` and `#`
/// comments and backslash-newline continuations; `[include] path = P` and
/// `[includeIf "gitdir:PATTERN"] path = P` read P in place (relative to the file that
/// names it, `~/` expanded, ten levels deep at most); the last value wins, and an empty
/// `excludesFile =` means none. The files: `$GIT_CONFIG_GLOBAL`, else
/// `$XDG_CONFIG_HOME/git/config` then `~/.gitconfig`, then the repository's `config`;
/// the system file is not read (git with `GIT_CONFIG_NOSYSTEM`). Without
/// `core.excludesFile`, the excludes file is `$XDG_CONFIG_HOME/git/ignore`.
/// Motivation: a subsection, an include or a continued line read as plain lines made
/// evindex apply an excludes file git does not, or miss the one it does.
struct GitConfig: Sendable {
    /// `core.excludesFile` as set (nil: never set; empty: set to nothing).
    var excludesFile: [UInt8]?
    var ignoreCase = false
    /// `extensions.objectFormat`: object ids of 32 bytes (sha256) instead of 20.
    var sha256 = false

    /// The global config files, in the order git reads them.
    static func globalFiles(environment: [String: String]) -> [[UInt8]] {
        if let global = environment["GIT_CONFIG_GLOBAL"], !global.isEmpty { return [Array(global.utf8)] }
        var files: [[UInt8]] = []
        if let xdg = xdgConfigHome(environment) { files.append(Array((xdg + "/git/config").utf8)) }
        if let home = home(environment) { files.append(Array((home + "/.gitconfig").utf8)) }
        return files
    }

    /// The excludes file git reads when `core.excludesFile` is not set.
    static func defaultExcludesFile(environment: [String: String]) -> [UInt8]? {
        xdgConfigHome(environment).map { Array(($0 + "/git/ignore").utf8) }
    }

    private static func home(_ environment: [String: String]) -> String? {
        environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
    }

    private static func xdgConfigHome(_ environment: [String: String]) -> String? {
        environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home(environment).map { $0 + "/.config" }
    }

    /// Reads one config file's text into this config.
    ///
    /// - Parameters:
    ///   - source: the file's absolute path (includes are relative to its directory).
    ///   - gitDir: the repository's directory, absolute, for `includeIf "gitdir:…"`; nil
    ///     matches no condition.
    ///   - readFile: reads a file by absolute path.
    mutating func read(
        _ text: [UInt8], source: [UInt8], gitDir: [UInt8]?, environment: [String: String], readFile: ([UInt8]) -> [UInt8]?,
        depth: Int = 0
    ) {
        var parser = Parser(text)
        while let entry = parser.next() {
            switch (entry.section, entry.subsection, entry.key) {
            case ("core", nil, "excludesfile"):
                guard let value = entry.value else { continue }  // git: "missing value"
                excludesFile = expandingHome(value, environment)
            case ("core", nil, "ignorecase"):
                ignoreCase = Self.bool(entry.value)
            case ("extensions", nil, "objectformat"):
                sha256 = entry.value.map { String(decoding: $0, as: UTF8.self).lowercased() == "sha256" } ?? false
            case ("include", nil, "path"), ("includeif", _, "path"):
                guard let value = entry.value, !value.isEmpty, depth < 10 else { continue }
                if entry.section == "includeif" {
                    guard let condition = entry.subsection, let gitDir,
                        Self.gitDirCondition(condition, matches: gitDir, source: source, environment: environment)
                    else { continue }
                }
                var path = expandingHome(value, environment)
                if path.first != UInt8(ascii: "/") { path = directory(of: source) + [UInt8(ascii: "/")] + path }
                if let included = readFile(path) {
                    read(included, source: path, gitDir: gitDir, environment: environment, readFile: readFile, depth: depth + 1)
                }
            default:
                continue
            }
        }
    }

    /// Git's `git_config_bool`: no value is true; true/yes/on and non-zero numbers are
    /// true; anything else false.
    static func bool(_ value: [UInt8]?) -> Bool {
        guard let value else { return true }
        let text = String(decoding: value, as: UTF8.self).lowercased()
        if ["true", "yes", "on"].contains(text) { return true }
        if let n = Int(text) { return n != 0 }
        return false
    }

    /// `gitdir:PATTERN` (or `gitdir/i:`, case-insensitive) against the repository's
    /// directory, as git's `include_by_gitdir`: `~/` expanded, `./` relative to the config
    /// file's directory, a relative pattern made `**/PATTERN`, a trailing `/` made `/**`.
    static func gitDirCondition(_ condition: [UInt8], matches gitDir: [UInt8], source: [UInt8], environment: [String: String]) -> Bool {
        let caseInsensitive: Bool
        var pattern: [UInt8]
        if condition.starts(with: Array("gitdir:".utf8)) {
            (caseInsensitive, pattern) = (false, Array(condition.dropFirst(7)))
        } else if condition.starts(with: Array("gitdir/i:".utf8)) {
            (caseInsensitive, pattern) = (true, Array(condition.dropFirst(9)))
        } else {
            return false  // onbranch:, hasconfig:: nothing the ignore rules depend on
        }
        pattern = GitConfig().expandingHome(pattern, environment)
        if pattern.starts(with: Array("./".utf8)) {
            pattern = directory(of: source) + pattern.dropFirst(1)
        } else if pattern.first != UInt8(ascii: "/") {
            pattern = Array("**/".utf8) + pattern
        }
        if pattern.last == UInt8(ascii: "/") { pattern += Array("**".utf8) }
        return Wildmatch.matches(pattern, gitDir, pathname: true, casefold: caseInsensitive)
    }

    private func expandingHome(_ value: [UInt8], _ environment: [String: String]) -> [UInt8] {
        guard value.starts(with: Array("~/".utf8)), let home = environment["HOME"] else { return value }
        return Array(home.utf8) + value.dropFirst(1)
    }

    /// One `key = value` of a config file, with the section it is in.
    struct Entry {
        /// Lower case.
        var section: String
        /// As written (quoted form), or lower case in the old `[section.sub]` form.
        var subsection: [UInt8]?
        /// Lower case.
        var key: String
        /// Nil for a key without `=` (a boolean true).
        var value: [UInt8]?
    }

    /// Git's config syntax, entry by entry; a malformed line ends the file (git refuses
    /// the whole file then).
    struct Parser {
        private let text: [UInt8]
        private var i = 0
        private var section = ""
        private var subsection: [UInt8]?

        init(_ text: [UInt8]) {
            // git reads CR LF as LF everywhere (a backslash before it continues the line).
            var plain: [UInt8] = []
            plain.reserveCapacity(text.count)
            for (k, c) in text.enumerated() where !(c == 0x0D && k + 1 < text.count && text[k + 1] == 0x0A) { plain.append(c) }
            self.text = plain
            if plain.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        }

        /// Git's own `isspace`: space, tab, CR, LF (not VT or FF).
        private func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D }
        private func isLetter(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
        private func isKeyByte(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "-")
        }

        mutating func next() -> Entry? {
            while i < text.count {
                let c = text[i]
                if c == 10 || isSpace(c) {
                    i += 1
                } else if c == UInt8(ascii: "#") || c == UInt8(ascii: ";") {
                    while i < text.count && text[i] != 10 { i += 1 }
                } else if c == UInt8(ascii: "[") {
                    guard header() else { return nil }
                } else if isLetter(c) {
                    var key: [UInt8] = []
                    while i < text.count && isKeyByte(text[i]) {
                        key.append(text[i] | (text[i] >= 0x41 && text[i] <= 0x5A ? 0x20 : 0))
                        i += 1
                    }
                    while i < text.count && isSpace(text[i]) { i += 1 }
                    var value: [UInt8]?
                    if i < text.count && text[i] == UInt8(ascii: "=") {
                        i += 1
                        guard let v = parseValue() else { return nil }
                        value = v
                    } else if i < text.count && text[i] != 10 {
                        return nil  // git: a key without `=` ends its line
                    }
                    return Entry(section: section, subsection: subsection, key: String(decoding: key, as: UTF8.self), value: value)
                } else {
                    return nil
                }
            }
            return nil
        }

        /// `[name]`, `[name "sub"]` or the old `[name.sub]`.
        private mutating func header() -> Bool {
            i += 1
            var name: [UInt8] = []
            while i < text.count, isKeyByte(text[i]) || text[i] == UInt8(ascii: ".") {
                name.append(text[i] | (text[i] >= 0x41 && text[i] <= 0x5A ? 0x20 : 0))
                i += 1
            }
            subsection = nil
            if let dot = name.firstIndex(of: UInt8(ascii: ".")) {
                subsection = Array(name[(dot + 1)...])
                name = Array(name[..<dot])
            }
            if i < text.count && isSpace(text[i]) {
                while i < text.count && isSpace(text[i]) { i += 1 }
                guard i < text.count, text[i] == UInt8(ascii: "\""), subsection == nil else { return false }
                i += 1
                var sub: [UInt8] = []
                while i < text.count && text[i] != UInt8(ascii: "\"") {
                    if text[i] == 10 { return false }
                    if text[i] == UInt8(ascii: "\\") { i += 1 }
                    guard i < text.count else { return false }
                    sub.append(text[i])
                    i += 1
                }
                i += 1
                subsection = sub
            }
            guard i < text.count, text[i] == UInt8(ascii: "]"), !name.isEmpty else { return false }
            i += 1
            section = String(decoding: name, as: UTF8.self)
            return true
        }

        /// Git's `parse_value`: outer blanks dropped, inner runs kept, quotes and escapes
        /// taken, a comment ends the value, a backslash before the newline continues it.
        private mutating func parseValue() -> [UInt8]? {
            var value: [UInt8] = []
            var quoted = false, comment = false
            var pendingSpaces = 0
            while true {
                guard i < text.count else { return quoted ? nil : value }
                let c = text[i]
                i += 1
                if c == 10 {
                    if quoted { return nil }
                    return value
                }
                if comment { continue }
                if isSpace(c) && !quoted {
                    if !value.isEmpty { pendingSpaces += 1 }
                    continue
                }
                if !quoted && (c == UInt8(ascii: ";") || c == UInt8(ascii: "#")) {
                    comment = true
                    continue
                }
                for _ in 0..<pendingSpaces { value.append(0x20) }
                pendingSpaces = 0
                if c == UInt8(ascii: "\\") {
                    guard i < text.count else { return nil }
                    let e = text[i]
                    i += 1
                    switch e {
                    case 10: continue
                    case UInt8(ascii: "t"): value.append(0x09)
                    case UInt8(ascii: "b"): value.append(0x08)
                    case UInt8(ascii: "n"): value.append(0x0A)
                    case UInt8(ascii: "\\"), UInt8(ascii: "\""): value.append(e)
                    default: return nil
                    }
                    continue
                }
                if c == UInt8(ascii: "\"") {
                    quoted.toggle()
                    continue
                }
                value.append(c)
            }
        }
    }
}

/// The directory part of an absolute path ("/" for a file at the top).
func directory(of path: [UInt8]) -> [UInt8] {
    guard let slash = path.lastIndex(of: UInt8(ascii: "/")), slash > 0 else { return [UInt8(ascii: "/")] }
    return Array(path[..<slash])
}
