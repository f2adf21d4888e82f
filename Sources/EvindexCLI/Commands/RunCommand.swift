import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Rules
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Index a tree: walk it and append what changed to the event log.",
        discussion: """
            The first run of a path records every entry; later runs of it record only what
            changed. Symlinks are recorded, never followed; the walk stays on the root's
            filesystem. Entries that cannot be read are recorded as NonCriticalError
            events, counted in the summary, and the run goes on. Only one run at a time
            may write a database; a second is refused at once.

            Ctrl-C (SIGINT) or SIGTERM pauses the run at its next directory: it writes
            JobPaused and a snapshot of its state and exits 130. The next `evindex run` of
            the same path resumes it, as it does a run cut off by a crash or failed on a
            full disk; --restart starts a new run instead.

            Rules (Docs/RULES.md) choose what is indexed; every rejected path is recorded
            as a PathRejected event naming its rule (`evindex why PATH`), and a rejected
            directory is not entered. A run records its rules in its JobStarted event; a
            rescan with other rules says so, and records only what the change of rules
            changed. Rules files come first, then presets, then the flags.

            Examples:
              evindex run ~/Documents
              evindex run /srv/share --db /var/lib/evindex --json
              evindex run ~/code --gitignore --reject node_modules
              evindex run ~/Pictures --preset only-images --no-hidden
              evindex run ~ --rules ~/.config/evindex/home.rules
            """
    )

    @Option(
        name: .customLong("reject"),
        help: ArgumentHelp(
            "Do not index entries matching this glob (repeatable). No '/': the name; leading '/': the absolute path; else the path below the root.",
            valueName: "glob"))
    var rejectGlobs: [String] = []

    @Option(
        name: .customLong("accept"),
        help: ArgumentHelp(
            "Index only files (not directories) matching one of these globs (repeatable).", valueName: "glob"))
    var acceptGlobs: [String] = []

    @Option(
        name: .customLong("require-child"),
        help: ArgumentHelp(
            "Index files only inside a directory that has this child directory, or below one (repeatable: all are required).",
            valueName: "name"))
    var requireChildren: [String] = []

    @Option(
        name: .customLong("reject-if-child"),
        help: ArgumentHelp(
            "Do not index a directory that has this child directory (repeatable: any one rejects).", valueName: "name"))
    var rejectIfChildren: [String] = []

    @Flag(
        inversion: .prefixedNo,
        help: "Apply .gitignore files, .git/info/exclude and git's global excludes file inside git work trees, as git does (default: off).")
    var gitignore: Bool?

    @Flag(inversion: .prefixedNo, help: "Index entries whose name starts with a dot (default: on).")
    var hidden: Bool?

    @Option(
        name: .customLong("max-depth"),
        help: ArgumentHelp(
            "Do not enter directories at this depth (the root's children are at depth 1); they are still indexed.",
            valueName: "n"))
    var maxDepth: Int?

    @Option(
        name: .customLong("preset"),
        help: ArgumentHelp(
            "A named rule set (repeatable): \(RuleSet.presets.map(\.name).joined(separator: ", ")).", valueName: "name"))
    var presets: [String] = []

    @Option(
        name: .customLong("rules"),
        help: ArgumentHelp(
            "Read rules from this file (format: Docs/RULES.md; repeatable).",
            valueName: "file"))
    var rulesFiles: [String] = []

    @Argument(help: ArgumentHelp("The directory to index.", valueName: "path"))
    var path: String

    @OptionGroup var database: DatabaseOption

    @Flag(name: .long, help: "Print the summary as one JSON object.")
    var json = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Read every directory, even one whose inode, mtime and ctime are unchanged since the last run.",
            discussion:
                "By default such a directory's names are taken from the index (its entries are still stat'ed) when its ctime is more than 2 s older than the start of the last completed run of this tree."
        ))
    var fullListing = false

    @Flag(name: .long, help: "Start a new run even if an earlier run of this path was paused, cut off or failed (by default it is resumed).")
    var restart = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Threads reading directories (default: the number of cores). The events written are the same for any count.",
            valueName: "n"))
    var threads: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "What a crash of the machine may take: commit (default: nothing committed), batch (the last commit).",
            discussion:
                "evindex commits every 10,000 events or 100 ms. With commit, each commit is on disk before the next begins. With batch, a commit's meta page is flushed with the next one: a power loss or kernel crash can undo the last commit (the next run resumes from the one before), never damage the database. A crash of evindex alone loses nothing committed either way.",
            valueName: "level"))
    var durability: Durability = .commit

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Progress on stderr: auto (a live line on a terminal, nothing otherwise), json (one object every 0.2 s), none.",
            valueName: "mode"))
    var progress: ProgressDisplay.Mode = .auto

    func run() throws {
        var options = RunOptions(root: rawArgument(path), databaseDirectory: database.directory)
        options.trustDirectoryTimes = !fullListing
        options.restart = restart
        options.durability = durability
        options.rules = try ruleSet()
        if let threads {
            guard threads >= 1 && threads <= 256 else { throw CommandFailure(message: "--threads must be between 1 and 256, not \(threads)") }
            options.threads = threads
        }
        StopSignals.catchThem()
        let display = ProgressDisplay(progress: options.progress, mode: progress)
        display.start()
        let summary: RunSummary
        do {
            summary = try IndexJob.run(options, fileSystem: PosixFileSystem())
        } catch {
            display.stop()
            throw error
        }
        display.stop()
        let c = summary.counts
        var out = Output()
        if json {
            var o = JSONObject()
            o.add("run", summary.run)
            o.addPath("root", summary.root)
            o.add("status", summary.status.name)
            countsFields(&o, c)
            o.add("first_seq", summary.firstSequence)
            o.add("last_seq", summary.lastSequence)
            o.addRaw("seconds", String(format3(summary.seconds)))
            out.line(o.json)
        } else {
            out.line(
                "indexed \(displayPath(summary.root)): \(counted(c.entries, "entry")) (\(counted(c.directories, "dir")), \(counted(c.files, "file")), \(counted(c.symlinks, "symlink")), \(c.others) other), \(humanSize(c.bytes))"
            )
            out.line(
                "run \(summary.run): \(c.created) created, \(c.updated) updated, \(c.removed) removed, \(c.moved) moved, \(counted(c.errors, "error")); events \(summary.firstSequence)–\(summary.lastSequence); \(format3(summary.seconds)) s"
            )
        }
        out.flush()
        if let abandoned = summary.abandonedForRules {
            printError("note: run \(abandoned) was unfinished with other rules; it was abandoned and this run started over")
        }
        if let (run, text) = summary.previousRules {
            printError("note: the rules differ from run \(run)'s: \(describeRules(text)) before, \(describeRules(options.rules.canonicalText)) now")
        }
        if summary.status == .paused {
            printError(
                "paused run \(summary.run) of \(displayPath(summary.root)) after \(counted(c.entries, "entry")); run `evindex run \(path)` to go on, or add --restart to start over"
            )
            exitProcess(130)
        }
    }
}

extension RunCommand {
    /// The rules of this run: rules files, then presets, then flags. A bad one is one line
    /// naming the file (or flag), the line and the problem, before anything is written.
    func ruleSet() throws -> RuleSet {
        var rules = RuleSet()
        do throws(RuleError) {
            for file in rulesFiles {
                let contents: [UInt8]
                do throws(Errno) { contents = try readWholeFile(rawArgument(file)) } catch {
                    throw RuleError(source: file, message: "cannot read the rules file (\(error))")
                }
                try rules.add(rulesText: contents, source: file)
            }
            for preset in presets { try rules.add(keyword: "preset", argument: preset) }
            func flag(_ name: String, _ keyword: String, _ values: [String]) throws(RuleError) {
                for v in values {
                    do throws(RuleError) { try rules.add(keyword: keyword, argument: v) } catch {
                        throw RuleError(source: "--\(name) \(v)", message: error.message)
                    }
                }
            }
            try flag("reject", "reject", rejectGlobs)
            try flag("accept", "accept", acceptGlobs)
            try flag("require-child", "require-child", requireChildren)
            try flag("reject-if-child", "reject-if-child", rejectIfChildren)
            if let gitignore { rules.gitignore = gitignore }
            if let hidden { rules.hidden = hidden }
            if let maxDepth { try flag("max-depth", "max-depth", [String(maxDepth)]) }
        } catch {
            throw CommandFailure(message: error.description)
        }
        return rules
    }
}

/// A rules text on one line, for notes: "no rules" when empty.
func describeRules(_ text: String) -> String {
    text.isEmpty ? "no rules" : "[" + text.split(separator: "\n").joined(separator: "; ") + "]"
}

func format3(_ v: Double) -> String {
    let ms = Int64((v * 1000).rounded())
    let frac = ms % 1000
    return "\(ms / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
}

extension Durability: ExpressibleByArgument {}
