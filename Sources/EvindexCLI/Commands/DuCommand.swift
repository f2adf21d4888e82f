import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Search

struct DuCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Directory sizes from the index, biggest first, as a bar chart.",
        discussion: """
            For each directory, what du counts: its disk usage (st_blocks × 512 of the
            directory and every entry below it, directories and symlinks included, each
            inode once however many hard links it has), the same as `du -sx -B1 DIR`; with
            --apparent-size, st_size summed by the same rule, as `du -sx --apparent-size
            -B1 DIR`. Beside it: files (regular files below it) and dirs (directories
            below it, itself not counted). Read from the directory-size view: no walk of
            the disk.

            On the terminal: the path, then the --top biggest directories within --depth
            levels below it, each with a bar scaled to the path's size. With --json: every
            directory within --depth, in tree order, unsorted and unlimited, each with
            disk_bytes and apparent_bytes (du's two figures) and size (st_size of the
            regular files below it, each name counted: what earlier versions showed).

            With --since RUN|DATE|DURATION: what changed since the end of that run (a
            date or a duration like 7d: since the end of the last run that ended by
            then), from the history the index keeps, not from a second fold: each
            directory's growth (now minus then; a directory new since then grew from 0),
            the --top biggest changes, largest growth first and largest shrinkage last,
            and the names created and removed below it since. With --json, every
            directory within --depth adds disk_delta, apparent_delta, created and
            removed.

            A ! between a size and its bar (with --json, "stale":true) marks totals
            that may be older than the disk: the last listing of that directory, of one
            above it or of one below it met an error (a directory that became
            unreadable keeps its old entries). `evindex why PATH` says which.

            Examples:
              evindex du ~/Photos
              evindex du ~/Photos --depth 3 --top 10 --bytes
              evindex du ~/Photos --apparent-size
              evindex du ~/Photos --since 7d
              evindex du ~/Photos --since 3 --depth 2 --json
              evindex du ~/Photos --depth 3 --json
            """
    )

    @Argument(help: ArgumentHelp("An indexed directory.", valueName: "path"))
    var path: String

    @Option(name: .long, help: ArgumentHelp("How many levels below the path to include (0: the path only).", valueName: "n"))
    var depth: Int = 1

    @Option(name: .long, help: ArgumentHelp("Show the K biggest directories (not with --json, which lists all).", valueName: "k"))
    var top: Int = 20

    @Flag(name: .long, help: "Exact sizes in bytes instead of 1.2G-style sizes.")
    var bytes = false

    @Flag(name: .long, help: "Apparent sizes (st_size, each inode once) instead of disk usage, as du's --apparent-size.")
    var apparentSize = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Show what changed since the end of run N, or of the last run that ended by a date (2026-11-01) or a duration ago (7d, 12h).",
            valueName: "run|date|duration"))
    var since: String?

    @Flag(name: .long, help: "One JSON object per directory: path, disk_bytes, apparent_bytes, size, files, dirs.")
    var json = false

    @Flag(name: .long, help: "Read the views rebuilt by the last `evindex replay` (e.g. `replay --to SEQ`: the index as it was just after SEQ).")
    var replayed = false

    @OptionGroup var past: PastOption

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if depth < 0 { throw ValidationError("--depth must be 0 or more") }
        if top < 0 { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        if replayed && past.at != nil { throw CommandFailure(message: "--at and --replayed cannot be combined") }
        if since != nil && (past.at != nil || replayed) {
            throw CommandFailure(message: "--since compares with the live index: it cannot be combined with --at or --replayed")
        }
        let point = try past.point()
        var out = Output()
        // The end of a run is in the directory-size history: no fold needed.
        if let point, let rows = try rowsAtStop(point) {
            if json { jsonRows(rows, &out) } else { chart(rows, &out) }
            out.flush()
            return
        }
        let index = try ReadOnlyIndex(database, replayed: replayed, at: point)
        try index.read { snapshot in
            let (path, location) = try index.locate(snapshot, path)
            guard case let .directory(dirID, _) = location else {
                throw CommandFailure(message: "\(displayPath(path)) is not a directory")
            }
            var stale = try StaleListings(snapshot)
            if json && since == nil && depth > 2 {
                // Every directory's line as the walk of the rows reaches it: no row kept.
                try forEachRow(snapshot, dirID, path) { rowPath, id, record in
                    let isStale = try stale.totalsAreStale(of: id, snapshot)
                    out.object { o in
                        o.addPath("path", rowPath)
                        fields(&o, record)
                        if isStale { o.add("stale", true) }
                    }
                }
                return
            }
            var rows: [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)] = []
            if depth > 2 {
                try forEachRow(snapshot, dirID, path) { rows.append((Array($0), $1, $2)) }
            } else {
                try collect(snapshot, dirID, path, level: 0, into: &rows)
            }
            var staleRows: Set<UInt64> = []
            for row in rows where try stale.totalsAreStale(of: row.dirID, snapshot) { staleRows.insert(row.dirID) }
            if let since {
                let (_, epoch) = try stop(snapshot, since)
                let growth = try Growth.growth(snapshot, since: epoch, of: rows.map { ($0.dirID, $0.record) })
                let changed = zip(rows, growth).map { (path: $0.path, growth: $1, stale: staleRows.contains($0.dirID)) }
                if json {
                    for row in changed {
                        out.object { o in
                            o.addPath("path", row.path)
                            fields(&o, row.growth.now)
                            o.add("disk_delta", row.growth.diskDelta)
                            o.add("apparent_delta", row.growth.apparentDelta)
                            o.add("created", row.growth.created)
                            o.add("removed", row.growth.removed)
                            if row.stale { o.add("stale", true) }
                        }
                    }
                } else {
                    growthChart(changed, &out)
                }
            } else if json {
                jsonRows(rows, stale: staleRows, &out)
            } else {
                chart(rows, stale: staleRows, &out)
            }
        }
        out.flush()
    }

    /// The directory and those below it within `depth`, in tree order.
    private func collect(
        _ snapshot: IndexSnapshot, _ dirID: UInt64, _ path: [UInt8], level: Int,
        into rows: inout [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)]
    ) throws {
        guard let row = try snapshot.directory(dirID) else {
            throw CommandFailure(message: "\(displayPath(path)) has no row in the directory-size view", exitCode: 1)
        }
        rows.append((path, dirID, row))
        guard level < depth else { return }
        var children: [([UInt8], UInt64)] = []
        try snapshot.forEachChild(of: dirID) { name, m in
            if m.kind == .directory && m.dirID != 0 { children.append((joinPath(path, name), m.dirID)) }
            return true
        }
        for (childPath, id) in children { try collect(snapshot, id, childPath, level: level + 1, into: &rows) }
    }

    /// `collect`'s rows, in its order, from the directory-size view alone: what a deep `du`
    /// asks of every directory below, without reading the entries of each (a million
    /// entries' metadata for 172,000 directories' rows). `visit` gets each row's path
    /// (valid only during the call, built in one buffer as the walk goes), id and row.
    private func forEachRow(
        _ snapshot: IndexSnapshot, _ top: UInt64, _ path: [UInt8],
        _ visit: (UnsafeRawBufferPointer, UInt64, borrowing DirectoryRecord) throws -> Void
    ) throws {
        // Rows in id order; each parent's children found by position (no dictionary of
        // 172,000 ids), listed together as in a compressed sparse row. Names also back to
        // back in one buffer, so sorting siblings compares bytes without touching a row.
        var ids: [UInt64] = [], records: [DirectoryRecord] = []
        var names: [UInt8] = [], nameStarts: [Int] = []
        try snapshot.forEachDirectory { id, row in
            ids.append(id)
            nameStarts.append(names.count)
            names.append(contentsOf: row.name)
            records.append(row)
        }
        nameStarts.append(names.count)
        func position(_ id: UInt64) -> Int? {
            var low = 0, high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] < id { low = mid + 1 } else { high = mid }
            }
            return low < ids.count && ids[low] == id ? low : nil
        }
        guard let topPosition = position(top) else {
            throw CommandFailure(message: "\(displayPath(path)) has no row in the directory-size view", exitCode: 1)
        }
        let parents = records.map { $0.parent == 0 ? -1 : position($0.parent) ?? -1 }
        var starts = [Int](repeating: 0, count: ids.count + 1)
        for p in parents where p >= 0 { starts[p + 1] += 1 }
        for i in 0..<ids.count { starts[i + 1] += starts[i] }
        var children = [Int](repeating: 0, count: starts[ids.count])
        var filled = starts
        for (i, p) in parents.enumerated() where p >= 0 {
            children[filled[p]] = i
            filled[p] += 1
        }
        // Depth first, each directory's children in name order, as `collect` walks them;
        // a child's path is its parent's (the buffer cut back to it) and its name.
        var buffer = path
        buffer.reserveCapacity(4096)
        try names.withUnsafeBufferPointer { bytes in
            func name(_ i: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[nameStarts[i]..<nameStarts[i + 1]]) }
            var stack: [(position: Int, parentLength: Int, level: Int)] = [(topPosition, -1, 0)]
            while let (at, parentLength, level) = stack.popLast() {
                if parentLength >= 0 {
                    buffer.removeSubrange(parentLength...)
                    if buffer.last != UInt8(ascii: "/") { buffer.append(UInt8(ascii: "/")) }
                    buffer.append(contentsOf: name(at))
                }
                try buffer.withUnsafeBytes { try visit($0, ids[at], records[at]) }
                guard level < depth, starts[at] < starts[at + 1] else { continue }
                children[starts[at]..<starts[at + 1]].sort { name($0).lexicographicallyPrecedes(name($1)) }
                for child in children[starts[at]..<starts[at + 1]].reversed() { stack.append((child, buffer.count, level + 1)) }
            }
        }
    }

    /// The path's line, then the biggest directories with bars relative to the path's size.
    private func jsonRows(_ rows: [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)], stale: Set<UInt64> = [], _ out: inout Output) {
        for row in rows {
            out.object { o in
                o.addPath("path", row.path)
                fields(&o, row.record)
                if stale.contains(row.dirID) { o.add("stale", true) }
            }
        }
    }

    /// The line under a chart that shows a stale row.
    private static let staleNote = "(! these totals may be older than the disk: a listing in them met an error; `evindex why PATH` says which)"

    /// The rows `--at` asks for, read from the directory-size history when the point is
    /// the stop of a run (the rows as they were then, by id, and their names then); nil
    /// when it is not one (another sequence, a run cut off): then the log is folded.
    private func rowsAtStop(_ point: PastPoint) throws -> [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)]? {
        let index = try ReadOnlyIndex(database)
        return try index.read { snapshot in
            let through: UInt64
            do { through = try point.sequence(snapshot) } catch let error as HistoryError { throw CommandFailure(message: error.message) }
            guard let epoch = try snapshot.sizeEpoch(at: through) else { return nil }
            let then = try PastDirectories(snapshot, at: epoch)
            let wanted = absolutePath(rawArgument(self.path))
            guard let id = then.locate(wanted) else {
                throw CommandFailure(message: "\(displayPath(wanted)) was not a directory in the index at that point")
            }
            var rows: [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)] = []
            then.forEach(from: id, path: wanted, depth: depth) { rows.append(($0, $1, $2)) }
            return rows
        }
    }

    private func fields(_ o: inout JSONObject, _ r: borrowing DirectoryRecord) {
        o.add("disk_bytes", r.duDiskBytes)
        o.add("apparent_bytes", r.duApparentBytes)
        o.add("size", r.totals.size)
        o.add("files", r.totals.files)
        o.add("dirs", r.totals.directories)
    }

    /// The stop `--since` names: a run id, a date, or a duration before now.
    private func stop(_ snapshot: IndexSnapshot, _ text: String) throws -> (RunRecord, SizeEpoch) {
        do {
            if let id = UInt32(text) { return try Growth.stop(snapshot, run: id) }
            let ns: Int64
            do { ns = try TimeFilter.parse(text, nowNs: TimeFilter.nowNs()) } catch {
                throw CommandFailure(message: "--since \(text): want a run number, a date like 2026-11-01 or a duration like 7d", exitCode: 2)
            }
            return try Growth.stop(snapshot, atOrBefore: ns / 1_000_000, named: text)
        } catch let error as HistoryError {
            throw CommandFailure(message: error.message)
        }
    }

    /// The path's change, then the biggest changes below it (growth first), bars scaled to
    /// the largest change shown: █ growth, ▒ shrinkage.
    private func growthChart(_ rows: [(path: [UInt8], growth: DirectoryGrowth, stale: Bool)], _ out: inout Output) {
        guard let first = rows.first else { return }
        func delta(_ g: DirectoryGrowth) -> Int64 { apparentSize ? g.apparentDelta : g.diskDelta }
        func size(_ v: Int64) -> String {
            (v > 0 ? "+" : v < 0 ? "-" : " ") + (bytes ? String(v.magnitude) : humanSize(v.magnitude))
        }
        let changed = rows.dropFirst().filter { delta($0.growth) != 0 || $0.growth.created != 0 || $0.growth.removed != 0 }
        let biggest = changed.sorted { abs(delta($0.growth)) > abs(delta($1.growth)) }.prefix(top).sorted { delta($0.growth) > delta($1.growth) }
        let scale = max(([first] + biggest).map { abs(delta($0.growth)) }.max() ?? 1, 1)
        let width = 30
        let sizeWidth = ([first] + biggest).map { size(delta($0.growth)).count }.max() ?? 0
        func line(_ row: (path: [UInt8], growth: DirectoryGrowth, stale: Bool)) -> String {
            let d = delta(row.growth)
            let s = size(d)
            let filled = Int((Double(abs(d)) / Double(scale) * Double(width)).rounded())
            let bar = String(repeating: d >= 0 ? "█" : "▒", count: min(width, filled)) + String(repeating: "░", count: max(0, width - filled))
            let new = row.growth.then == nil ? " (new)" : ""
            return String(repeating: " ", count: sizeWidth - s.count) + s + (row.stale ? "!" : " ") + bar + "  "
                + "+\(row.growth.created) -\(row.growth.removed) names  \(displayPath(row.path))\(new)"
        }
        out.line(line(first))
        for row in biggest { out.line(line(row)) }
        let hidden = changed.count - biggest.count
        if hidden > 0 { out.line("(\(hidden) smaller changes not shown; --top \(changed.count) shows all)") }
        if changed.isEmpty && delta(first.growth) == 0 { out.line("(nothing changed below it)") }
        if first.stale || biggest.contains(where: { $0.stale }) { out.line(Self.staleNote) }
    }

    private func chart(_ rows: [(path: [UInt8], dirID: UInt64, record: DirectoryRecord)], stale: Set<UInt64> = [], _ out: inout Output) {
        guard let first = rows.first else { return }
        func measure(_ r: DirectoryRecord) -> UInt64 { apparentSize ? r.duApparentBytes : r.duDiskBytes }
        let whole = max(measure(first.record), 1)
        let width = 30
        func size(_ v: UInt64) -> String { bytes ? String(v) : humanSize(v) }
        let biggest = rows.dropFirst().sorted { measure($0.record) > measure($1.record) }.prefix(top)
        let sizeWidth = ([first] + biggest).map { size(measure($0.record)).count }.max() ?? 0
        func line(_ row: (path: [UInt8], dirID: UInt64, record: DirectoryRecord)) -> String {
            let v = measure(row.record)
            let s = size(v)
            let filled = Int((Double(v) / Double(whole) * Double(width)).rounded())
            let bar = String(repeating: "█", count: min(width, filled)) + String(repeating: "░", count: max(0, width - filled))
            let percent = Int((Double(v) / Double(whole) * 100).rounded())
            let p = String(percent)
            return String(repeating: " ", count: sizeWidth - s.count) + s + (stale.contains(row.dirID) ? "!" : " ") + bar + " "
                + String(repeating: " ", count: max(0, 3 - p.count)) + p + "%  "
                + "\(counted(row.record.totals.files, "file")), \(counted(row.record.totals.directories, "dir"))  \(displayPath(row.path))"
        }
        out.line(line(first))
        for row in biggest { out.line(line(row)) }
        let hidden = rows.count - 1 - biggest.count
        if hidden > 0 { out.line("(\(hidden) smaller directories not shown; --top \(rows.count - 1) shows all)") }
        if ([first] + biggest).contains(where: { stale.contains($0.dirID) }) { out.line(Self.staleNote) }
    }
}
