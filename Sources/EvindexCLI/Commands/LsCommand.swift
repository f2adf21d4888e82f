import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Projections

struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List what the index holds at a path.",
        discussion: """
            Lists the children of an indexed directory in name (byte) order, from the index,
            not from the disk. With -R, everything below it, depth first.

            Examples:
              evindex ls ~/Photos
              evindex ls ~/Photos -R --json | jq -r .path
            """
    )

    @Argument(help: ArgumentHelp("An indexed directory or entry.", valueName: "path"))
    var path: String

    @Flag(name: [.customShort("R"), .customLong("recursive")], help: "List every entry below the path.")
    var recursive = false

    @Flag(name: .long, help: "One JSON object per entry: path (path_b64 when not UTF-8), kind, size, inode, dev, mode, mtime_ns, ctime_ns, btime_ns.")
    var json = false

    @Flag(name: .long, help: "Read the views rebuilt by the last `evindex replay` (e.g. `replay --to SEQ`: the index as it was just after SEQ).")
    var replayed = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let index = try ReadOnlyIndex(database, replayed: replayed)
        var out = Output()
        try index.read { snapshot in
            let (path, location) = try index.locate(snapshot, path)
            switch location {
            case let .entry(_, _, m):
                print(path, m, &out)
            case let .directory(dirID, _):
                try list(snapshot, dirID, path, &out)
            }
        }
        out.flush()
    }

    private func list(_ snapshot: IndexSnapshot, _ dirID: UInt64, _ dirPath: [UInt8], _ out: inout Output) throws {
        var subdirectories: [([UInt8], UInt64)] = []
        try snapshot.forEachChild(of: dirID) { name, m in
            let path = joinPath(dirPath, name)
            print(path, m, &out)
            if recursive && m.kind == .directory && m.dirID != 0 { subdirectories.append((path, m.dirID)) }
            return true
        }
        for (path, id) in subdirectories { try list(snapshot, id, path, &out) }
    }

    private func print(_ path: [UInt8], _ m: EntryMetadata, _ out: inout Output) {
        if json {
            var o = JSONObject()
            o.addPath("path", path)
            metadataFields(&o, "", m, withDirID: false)
            out.line(o.json)
        } else {
            let kind: String
            switch m.kind {
            case .file: kind = "-"
            case .directory: kind = "d"
            case .symlink: kind = "l"
            case .other: kind = "?"
            }
            let size = String(m.size)
            let pad = String(repeating: " ", count: max(0, 14 - size.count))
            out.line("\(kind) \(pad)\(size)  \(timestamp(seconds: m.mtimeNs / 1_000_000_000))  \(displayPath(path))")
        }
    }
}
