import ArgumentParser
import Events
import Indexing
import Traversal

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Index a tree: walk it and append what changed to the event log.",
        discussion: """
            The first run of a path records every entry; later runs of it record only what
            changed. Symlinks are recorded, never followed; the walk stays on the root's
            filesystem. Entries that cannot be read are recorded as NonCriticalError events,
            counted in the summary, and the run goes on. Only one run at a time may write
            a database; a second is refused at once.

            Ctrl-C (SIGINT) or SIGTERM pauses the run at its next directory: it writes
            JobPaused and a snapshot of its state and exits 130. The next `evindex run` of
            the same path resumes it, as it does a run cut off by a crash or failed on a full
            disk; --restart starts a new run instead.

            Examples:
              evindex run ~/Documents
              evindex run /srv/share --db /var/lib/evindex --json
            """
    )

    @Argument(help: ArgumentHelp("The directory to index.", valueName: "path"))
    var path: String

    @OptionGroup var database: DatabaseOption

    @Flag(name: .long, help: "Print the summary as one JSON object.")
    var json = false

    @Flag(name: .long, help: ArgumentHelp(
        "Read every directory, even one whose inode, mtime and ctime are unchanged since the last run.",
        discussion: "By default such a directory's names are taken from the index (its entries are still stat'ed) when its ctime is more than 2 s older than the start of the last completed run of this tree."))
    var fullListing = false

    @Flag(name: .long, help: "Start a new run even if an earlier run of this path was paused, cut off or failed (by default it is resumed).")
    var restart = false

    @Option(name: .long, help: ArgumentHelp(
        "Progress on stderr: auto (a live line on a terminal, nothing otherwise), json (one object every 0.2 s), none.",
        valueName: "mode"))
    var progress: ProgressDisplay.Mode = .auto

    func run() throws {
        var options = RunOptions(root: rawArgument(path), databaseDirectory: database.directory)
        options.trustDirectoryTimes = !fullListing
        options.restart = restart
        IndexJob.pauseOnSignals()
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
            out.line("indexed \(displayPath(summary.root)): \(c.entries) entries (\(c.directories) dirs, \(c.files) files, \(c.symlinks) symlinks, \(c.others) other), \(humanSize(Int64(bitPattern: c.bytes)))")
            out.line("run \(summary.run): \(c.created) created, \(c.updated) updated, \(c.removed) removed, \(c.moved) moved, \(c.errors) errors; events \(summary.firstSequence)–\(summary.lastSequence); \(format3(summary.seconds)) s")
        }
        out.flush()
        if summary.status == .paused {
            printError("paused run \(summary.run) of \(displayPath(summary.root)) after \(c.entries) entries; run `evindex run \(path)` to go on, or add --restart to start over")
            exitProcess(130)
        }
    }
}

func format3(_ v: Double) -> String {
    let ms = Int64((v * 1000).rounded())
    let frac = ms % 1000
    return "\(ms / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
}
