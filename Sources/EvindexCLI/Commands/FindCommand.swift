import ArgumentParser
import Events
import JSONFormat
import Projections
import Search

#if canImport(Glibc)
    import Glibc
#endif

struct FindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "find",
        abstract: "Find entries in the index by name, kind, size and time, as fd does on disk.",
        discussion: """
            Searches the index, never the disk: every indexed root, or only below the
            PATHs given. PATTERN matches the entry's name as a substring; with no PATTERN
            every entry matches (a first argument with a slash, as `evindex find
            ~/Photos`, is a PATH, since no name holds one). Smart case: PATTERN without an
            upper-case letter ignores case, one with an upper-case letter does not (-s and
            -i force either). Filters combine; an entry is printed when it passes all of
            them. Entries below a PATH are printed, not PATH itself; a directory's
            children in name order, then each child directory's.

            --size keeps regular files only: +N at least, -N at most, N exactly; units b,
            k, m, g, t are powers of 1000, ki, mi, gi, ti powers of 1024 (fd's). Times are
            the entry's modification time: a duration before now (30d, 2h, 90min, 1w,
            1d12h) or a date (2026-11-01, 2026-11-01T08:00:00Z, UTC).

            Exit status: 0 when something matched, 1 when nothing did (as grep), 2 on bad
            input.

            Examples:
              evindex find notes                      names containing "notes", any case
              evindex find -e jpg -S +5m ~/Photos     JPEGs of 5 MB or more below ~/Photos
              evindex find -g '*.log' --changed-within 2d
              evindex find -t d node_modules --max-depth 3 ~/code
              evindex find --owner www-data:adm -t f /srv
              evindex find --regex '^IMG_[0-9]{4}\\.' -0 | xargs -0 ls -l
            """
    )

    @Argument(help: ArgumentHelp("What names must contain (a glob with -g, a regular expression with --regex).", valueName: "pattern"))
    var pattern: String?

    @Argument(help: ArgumentHelp("Indexed directories to search below (default: every indexed root).", valueName: "path"))
    var paths: [String] = []

    @Flag(name: [.customShort("g"), .long], help: "PATTERN is a glob on the name (git's wildmatch: *, ?, [...]).")
    var glob = false

    @Flag(name: .long, help: "PATTERN is a regular expression (Swift's syntax; names that are not UTF-8 are matched as decoded with U+FFFD).")
    var regex = false

    @Flag(name: [.customShort("s"), .customLong("case-sensitive")], help: "Match case exactly.")
    var caseSensitive = false

    @Flag(name: [.customShort("i"), .customLong("ignore-case")], help: "Ignore case.")
    var ignoreCase = false

    @Flag(name: [.customShort("p"), .customLong("full-path")], help: "Match PATTERN against the whole path, not only the name.")
    var fullPath = false

    @Option(
        name: [.customShort("t"), .long],
        help: ArgumentHelp("Only entries of this kind: f (file), d (directory), l (symlink), o (other); repeatable.", valueName: "kind"))
    var type: [String] = []

    @Option(name: [.customShort("e"), .customLong("ext")], help: ArgumentHelp("Only names ending in .EXT (any case); repeatable.", valueName: "ext"))
    var extensions: [String] = []

    // Unconditional: "-4ki" is a value here, not an option.
    @Option(
        name: [.customShort("S"), .long], parsing: .unconditionalSingleValue,
        help: ArgumentHelp("Only files of this size: +N at least, -N at most, N exactly (e.g. +10m, -4ki).", valueName: "size"))
    var size: [String] = []

    @Option(
        name: .customLong("changed-within"),
        help: ArgumentHelp("Only entries modified since then: a duration (2d, 12h) or a date.", valueName: "time"))
    var changedWithin: String?

    @Option(
        name: .customLong("changed-before"), help: ArgumentHelp("Only entries modified before then: a duration (30d) or a date.", valueName: "time"))
    var changedBefore: String?

    @Option(
        name: [.customShort("o"), .customLong("owner")],
        help: ArgumentHelp("Only entries of this user and/or group (names or numbers; USER:GROUP, USER or :GROUP).", valueName: "user:group"))
    var owner: String?

    @Option(
        name: [.customShort("d"), .customLong("max-depth")],
        help: ArgumentHelp("Descend at most N levels below each PATH (1: its children).", valueName: "n"))
    var maxDepth: Int?

    @Flag(name: [.customShort("0"), .customLong("print0")], help: "Print the exact path bytes, each followed by NUL.")
    var print0 = false

    @Flag(
        name: .long,
        help: "One JSON object per entry, as `ls --json`: path (path_b64 when not UTF-8), kind, size, inode, dev, mode, mtime_ns, ctime_ns, btime_ns."
    )
    var json = false

    @Option(name: .long, help: ArgumentHelp("Stop after N entries.", valueName: "n"))
    var limit: Int?

    @Flag(name: [.customShort("c"), .long], help: "Print only the number of matching entries.")
    var count = false

    @Flag(name: .long, help: "Read the views rebuilt by the last `evindex replay` (e.g. `replay --to SEQ`: the index as it was just after SEQ).")
    var replayed = false

    @OptionGroup var past: PastOption

    @OptionGroup var database: DatabaseOption

    func run() throws {
        // Checked here, not in validate(): the parser would add its usage lines.
        if glob && regex { throw CommandFailure(message: "--glob and --regex cannot be combined") }
        if caseSensitive && ignoreCase { throw CommandFailure(message: "--case-sensitive and --ignore-case cannot be combined") }
        if [print0, json, count].filter({ $0 }).count > 1 { throw CommandFailure(message: "choose one of --print0, --json and --count") }
        if let limit, limit < 1 { throw CommandFailure(message: "--limit must be at least 1") }
        if let maxDepth, maxDepth < 1 { throw CommandFailure(message: "--max-depth must be at least 1") }
        // A name never holds a slash: without --full-path, a PATTERN with one is a PATH.
        var pattern = self.pattern, paths = self.paths
        if let given = pattern, given.contains("/"), !fullPath {
            paths.insert(given, at: 0)
            pattern = nil
        }
        let query = try makeQuery(pattern)
        if replayed && past.at != nil { throw CommandFailure(message: "--at and --replayed cannot be combined") }
        let index = try ReadOnlyIndex(database, replayed: replayed, at: try past.point())
        var out = Output()
        var matched = 0
        var finder = Finder(query: query)
        try index.read { snapshot in
            var places: [(path: [UInt8], location: Views.Location)] = []
            if paths.isEmpty {
                // A root inside another root is searched as part of it, once.
                let roots = try snapshot.roots()
                for root in roots where !roots.contains(where: { $0.path != root.path && PathBytes.isSameOrBelow(root.path, $0.path) }) {
                    places.append((root.path, .directory(dirID: root.dirID, metadata: nil)))
                }
            } else {
                for given in paths { places.append(try index.locate(snapshot, given)) }
            }
            let emit: (UnsafeRawBufferPointer, EntryMetadata, Bool) throws -> Bool = { path, m, stale in
                matched += 1
                if print0 {
                    out.write(path, terminator: 0)
                } else if json {
                    out.object { o in
                        o.addPath("path", path)
                        metadataFields(&o, "", m, withDirID: false)
                        if stale { o.add("stale", true) }
                    }
                } else if !count {
                    out.pathLine(path)
                }
                return limit.map { matched < $0 } ?? true
            }
            for place in places {
                switch place.location {
                case let .directory(dirID, _):
                    guard try finder.find(snapshot, below: dirID, at: place.path, emit) else { return }
                case let .entry(parent, name, m):
                    // A PATH that is not a directory: itself, if it matches.
                    let matches = place.path.withUnsafeBytes { finder.matches(path: $0, nameStart: $0.count - name.count, m) }
                    var stale = try StaleListings(snapshot)
                    let isStale = try stale.entriesAreStale(in: parent, snapshot)
                    if matches, try !place.path.withUnsafeBytes({ try emit($0, m, isStale) }) { return }
                }
            }
        }
        if count { out.line(String(matched)) }
        out.flush()
        if matched == 0 { throw CommandFailure(message: "", exitCode: 1) }
    }

    private func makeQuery(_ pattern: String?) throws -> FindQuery {
        var query = FindQuery()
        do {
            if let pattern {
                let syntax: NamePattern.Syntax = glob ? .glob : regex ? .regex : .substring
                query.pattern = try NamePattern(pattern, syntax: syntax, caseSensitive: caseSensitive ? true : ignoreCase ? false : nil)
            }
            query.fullPath = fullPath
            for t in type {
                switch t {
                case "f", "file": query.kinds.insert(.file)
                case "d", "dir", "directory": query.kinds.insert(.directory)
                case "l", "symlink": query.kinds.insert(.symlink)
                case "o", "other": query.kinds.insert(.other)
                default: throw CommandFailure(message: "invalid --type \(t): want f, d, l or o")
                }
            }
            query.extensions = extensions.map { Array($0.drop(while: { $0 == "." }).lowercased().utf8) }
            for s in size {
                switch try SizeFilter.parse(s) {
                case let .atLeast(n): query.minSize = max(query.minSize ?? 0, n)
                case let .atMost(n): query.maxSize = min(query.maxSize ?? .max, n)
                case let .exactly(n): query.minSize = n; query.maxSize = n
                }
            }
            let nowNs = TimeFilter.nowNs()
            if let changedWithin { query.changedAfterNs = try TimeFilter.parse(changedWithin, nowNs: nowNs) }
            if let changedBefore { query.changedBeforeNs = try TimeFilter.parse(changedBefore, nowNs: nowNs) }
            if let owner { (query.uid, query.gid) = try OwnerFilter.parse(owner) }
            query.maxDepth = maxDepth
        } catch let error as FindError {
            throw CommandFailure(message: error.description)
        }
        return query
    }
}
