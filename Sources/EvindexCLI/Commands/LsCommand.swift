import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Projections
import Search

struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List what the index holds at a path.",
        discussion: """
            Lists the children of an indexed directory in name (byte) order, from the
            index, not from the disk. With -R, everything below it, depth first.

            Each line: the kind (- file, d dir, l symlink, ? other), the size in bytes
            (st_size), the modification time (UTC) and the path; with -s, first the bytes
            the entry itself takes on disk (st_blocks × 512, as `ls -s --block-size=1`).
            A ! after the kind (with --json, "stale":true) marks an entry that may be
            older than the disk: the last listing of its directory, or of one above it,
            met an error (a directory that became unreadable keeps its old entries).

            Examples:
              evindex ls ~/Photos
              evindex ls ~/Photos -s
              evindex ls ~/Photos -R --json | jq -r .path
            """
    )

    @Argument(help: ArgumentHelp("An indexed directory or entry.", valueName: "path"))
    var path: String

    @Flag(name: [.customShort("R"), .customLong("recursive")], help: "List every entry below the path.")
    var recursive = false

    @Flag(name: [.customShort("s"), .customLong("disk-usage")], help: "Show the bytes each entry takes on disk (st_blocks × 512) first.")
    var diskUsage = false

    @Flag(
        name: .long,
        help:
            "One JSON object per entry: path (path_b64 when not UTF-8), kind, size, inode, dev, mode, mtime_ns, ctime_ns, btime_ns, blocks, nlink, uid, gid (the last four when recorded)."
    )
    var json = false

    @Flag(name: .long, help: "Read the views rebuilt by the last `evindex replay` (e.g. `replay --to SEQ`: the index as it was just after SEQ).")
    var replayed = false

    @OptionGroup var past: PastOption

    @OptionGroup var database: DatabaseOption

    func run() throws {
        if replayed && past.at != nil { throw CommandFailure(message: "--at and --replayed cannot be combined") }
        let index = try ReadOnlyIndex(database, replayed: replayed, at: try past.point())
        var out = Output()
        try index.read { snapshot in
            let (path, location) = try index.locate(snapshot, path)
            switch location {
            case let .entry(parent, _, m):
                var stale = try StaleListings(snapshot)
                let isStale = try stale.entriesAreStale(in: parent, snapshot)
                path.withUnsafeBytes { print($0, m, stale: isStale, &out) }
            case let .directory(dirID, _):
                // `find` with no question: the same walk, in the same order.
                var query = FindQuery()
                if !recursive { query.maxDepth = 1 }
                var finder = Finder(query: query)
                _ = try finder.find(snapshot, below: dirID, at: path) { entryPath, m, stale in
                    print(entryPath, m, stale: stale, &out)
                    return true
                }
            }
        }
        out.flush()
    }

    private func print(_ path: UnsafeRawBufferPointer, _ m: EntryMetadata, stale: Bool, _ out: inout Output) {
        if json {
            out.object { o in
                o.addPath("path", path)
                metadataFields(&o, "", m, withDirID: false)
                if stale { o.add("stale", true) }
            }
        } else {
            out.entryLine(path, m, diskUsage: diskUsage, stale: stale)
        }
    }
}
