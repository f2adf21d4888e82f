/// Which entries a run indexes: Spacedrive's rule kinds plus hidden names, a maximum
/// depth and git's ignore files. Docs/RULES.md gives the precedence with examples.
///
/// A rule set is written and read as a rules file (one rule per line); its canonical text
/// (presets expanded, one rule per line, in a fixed order) is what a run records in its
/// `JobStarted` event, so two runs have the same rules exactly when the texts are equal.
public struct RuleSet: Sendable, Hashable {
    /// Entries matching any of these are rejected.
    public var rejectGlobs: [String] = []
    /// When not empty, a non-directory must match one of these to be indexed.
    public var acceptGlobs: [String] = []
    /// Files are indexed only inside a directory (the root included) that has all of these
    /// child directories, or below one.
    public var requireChildren: [String] = []
    /// A directory that has any of these child directories is rejected.
    public var rejectIfChildren: [String] = []
    /// Apply `.gitignore`, `.git/info/exclude` and the user's excludes file inside git work trees.
    public var gitignore = false
    /// Index entries whose name starts with a dot.
    public var hidden = true
    /// Directories at this depth (the root's children are at depth 1) are indexed but not entered.
    public var maxDepth: Int?

    public init() {}

    public var isEmpty: Bool { self == RuleSet() }

    /// The canonical rules-file text; empty for no rules.
    public var canonicalText: String {
        var lines: [String] = []
        if gitignore { lines.append("gitignore on") }
        if !hidden { lines.append("hidden off") }
        if let maxDepth { lines.append("max-depth \(maxDepth)") }
        for g in rejectGlobs { lines.append("reject \(g)") }
        for g in acceptGlobs { lines.append("accept \(g)") }
        for c in requireChildren { lines.append("require-child \(c)") }
        for c in rejectIfChildren { lines.append("reject-if-child \(c)") }
        return lines.joined(separator: "\n")
    }

    /// The named default sets (`--preset`), as Spacedrive ships them.
    public static let presets: [(name: String, summary: String, rules: String)] = [
        (
            "no-system", "no OS-protected or system paths (/proc, /sys, /dev, /run, lost+found, trash folders)",
            """
            reject /proc
            reject /sys
            reject /dev
            reject /run
            reject /boot
            reject /snap
            reject lost+found
            reject .Trash-*
            reject .Trashes
            reject $RECYCLE.BIN
            reject System Volume Information
            """
        ),
        ("no-hidden", "no entries whose name starts with a dot", "hidden off"),
        (
            "no-git", "no git folders or git's own files",
            """
            reject .git
            reject .gitignore
            reject .gitattributes
            reject .gitmodules
            reject .gitkeep
            """
        ),
        (
            "only-git-repos", "only files inside git repositories (directories with a .git child directory)",
            "require-child .git"
        ),
        (
            "only-images", "only image files (by extension)",
            ([
                "avif", "bmp", "gif", "heic", "heif", "ico", "jpeg", "jpg", "png", "svg", "tif", "tiff", "webp",
                "raw", "cr2", "nef", "arw", "dng",
            ].flatMap { ["accept *.\($0)", "accept *.\($0.uppercased())"] })
            .joined(separator: "\n")
        ),
    ]

    /// Adds the rules of a rules file (or a preset). Errors name `source`, the line and the problem.
    public mutating func add(rulesText: [UInt8], source: String) throws(RuleError) {
        var lineNumber = 0
        for rawLine in rulesText.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Array(rawLine)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard let text = String(validating: line, as: UTF8.self) else {
                throw RuleError(source: source, line: lineNumber, message: "not valid UTF-8")
            }
            let trimmed = Self.trimmed(text)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let (keyword, argument) = Self.split(trimmed)
            do throws(RuleError) {
                try add(keyword: keyword, argument: argument)
            } catch {
                throw RuleError(source: source, line: lineNumber, message: error.message)
            }
        }
    }

    /// Adds one rule, as a rules-file line's keyword and argument.
    public mutating func add(keyword: String, argument: String) throws(RuleError) {
        func needArgument() throws(RuleError) {
            if argument.isEmpty { throw RuleError(message: "\(keyword) needs an argument") }
        }
        func onOff() throws(RuleError) -> Bool {
            switch argument {
            case "on", "yes", "true": return true
            case "off", "no", "false": return false
            default: throw RuleError(message: "\(keyword) takes on or off, not \"\(argument)\"")
            }
        }
        switch keyword {
        case "reject":
            try needArgument()
            try Self.checkGlob(argument)
            if !rejectGlobs.contains(argument) { rejectGlobs.append(argument) }
        case "accept":
            try needArgument()
            try Self.checkGlob(argument)
            if !acceptGlobs.contains(argument) { acceptGlobs.append(argument) }
        case "require-child":
            try needArgument()
            try Self.checkChildName(argument)
            if !requireChildren.contains(argument) { requireChildren.append(argument) }
        case "reject-if-child":
            try needArgument()
            try Self.checkChildName(argument)
            if !rejectIfChildren.contains(argument) { rejectIfChildren.append(argument) }
        case "gitignore":
            gitignore = try onOff()
        case "hidden":
            hidden = try onOff()
        case "max-depth":
            guard let n = Int(argument), n >= 1 else {
                throw RuleError(message: "max-depth takes a whole number of 1 or more, not \"\(argument)\"")
            }
            maxDepth = n
        case "preset":
            guard let preset = Self.presets.first(where: { $0.name == argument }) else {
                throw RuleError(message: "no preset \"\(argument)\" (there are: \(Self.presets.map(\.name).joined(separator: ", ")))")
            }
            try add(rulesText: Array(preset.rules.utf8), source: "preset \(preset.name)")
        default:
            throw RuleError(
                message:
                    "unknown rule \"\(keyword)\" (expected reject, accept, require-child, reject-if-child, gitignore, hidden, max-depth or preset)")
        }
    }

    static func checkGlob(_ glob: String) throws(RuleError) {
        if let problem = Wildmatch.problem(in: Array(glob.utf8)) {
            throw RuleError(message: "bad glob \"\(glob)\": \(problem)")
        }
        if glob.utf8.contains(0) { throw RuleError(message: "bad glob: it holds a NUL byte") }
    }

    static func checkChildName(_ name: String) throws(RuleError) {
        if name == "." || name == ".." || name.contains("/") || name.utf8.contains(0) {
            throw RuleError(message: "\"\(name)\" is not a directory name (one path component, no slash)")
        }
    }

    private static func trimmed(_ s: String) -> String {
        var scalars = Substring(s)
        while let f = scalars.first, f == " " || f == "\t" { scalars.removeFirst() }
        // Trailing blanks go unless escaped: "\ " keeps a space that ends a glob.
        while let l = scalars.last, l == " " || l == "\t" {
            let beforeLast = scalars.index(before: scalars.endIndex)
            if beforeLast > scalars.startIndex && scalars[scalars.index(before: beforeLast)] == "\\" { break }
            scalars.removeLast()
        }
        return String(scalars)
    }

    private static func split(_ line: String) -> (String, String) {
        guard let blank = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (line, "") }
        var rest = line[blank...]
        while let f = rest.first, f == " " || f == "\t" { rest.removeFirst() }
        return (String(line[..<blank]), String(rest))
    }
}

/// A rule that cannot be used: names the file (or flag), the line and the problem.
public struct RuleError: Error, Sendable, CustomStringConvertible {
    public var source: String?
    public var line: Int?
    public var message: String

    public init(source: String? = nil, line: Int? = nil, message: String) {
        self.source = source; self.line = line; self.message = message
    }

    public var description: String {
        switch (source, line) {
        case let (s?, l?): "\(s):\(l): \(message)"
        case let (s?, nil): "\(s): \(message)"
        default: message
        }
    }
}
