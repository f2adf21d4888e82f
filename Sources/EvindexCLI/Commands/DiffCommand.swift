import ArgumentParser
import EventStore
import Events
import History
import JSONFormat
import Projections
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare what two runs learned, path by path.",
        discussion: """
            A run learned the index as of its last event (the fold of the log up to it)
            and its own errors, rejections and options. Two runs are compared by path
            below their roots, never by sequence, run id, time, dir id or event order:
            entries only in A or only in B, metadata that differs (kind, inode, mode,
            size, mtime_ns, btime_ns; not ctime_ns or dev unless --compare), paths
            rejected in one and indexed in the other, errors in one only, and different
            options (rules), shown first. The first divergence is the shallowest directory
            whose listing differs, with the first event of each run that concerns it.

            RUN is a run id, or ID@SEQ: that run up to sequence SEQ.

            Exit status: 0 the runs are equivalent, 1 they differ, 2 bad input.

            Examples:
              evindex diff 1 2
              evindex diff 3@1500 3 --limit 50
              evindex diff --logs ~/.local/share/evindex /tmp/theirs 4 2 --json
            """
    )

    @Flag(name: .long, help: "Compare runs of two databases: DB_A DB_B RUN_A RUN_B.")
    var logs = false

    @Argument(help: ArgumentHelp("RUN_A RUN_B, or with --logs DB_A DB_B RUN_A RUN_B.", valueName: "args"))
    var arguments: [String] = []

    @Option(
        name: .long, help: ArgumentHelp("Show at most this many differences (default 20; 0: the summary only). --json shows all.", valueName: "n"))
    var limit: Int = 20

    @Option(name: .long, help: ArgumentHelp("Also compare these fields (ctime_ns, dev; comma-separated).", valueName: "fields"))
    var compare: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Do not compare these fields (kind, inode, mode, size, mtime_ns, btime_ns; comma-separated).", valueName: "fields"))
    var ignore: String?

    @Flag(name: .long, help: "One JSON object per difference, then first_divergence and summary objects.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if logs && arguments.count != 4 { throw ValidationError("diff --logs takes DB_A DB_B RUN_A RUN_B") }
        if !logs && arguments.count != 2 { throw ValidationError("diff takes two runs: RUN_A RUN_B (or --logs DB_A DB_B RUN_A RUN_B)") }
        for spec in arguments.suffix(2) where RunSpec(spec) == nil {
            throw ValidationError("\(spec) is not a run: give ID or ID@SEQ")
        }
        _ = try fields()
    }

    func fields() throws -> MetadataFields {
        var f = MetadataFields.standard
        for (option, list, adding) in [("--compare", compare, true), ("--ignore", ignore, false)] {
            for name in (list ?? "").split(separator: ",").map({ $0.trimmingSpaces }) where !name.isEmpty {
                guard let field = MetadataFields.names.first(where: { $0.0 == name })?.1 else {
                    throw ValidationError("\(option) \(name): not a field (\(MetadataFields.names.map(\.0).joined(separator: ", ")))")
                }
                if adding { f.insert(field) } else { f.remove(field) }
            }
        }
        return f
    }

    struct RunSpec {
        var run: UInt32
        var through: UInt64?
        init?(_ text: String) {
            let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            guard let run = UInt32(parts[0]) else { return nil }
            self.run = run
            if parts.count == 2 {
                guard let seq = UInt64(parts[1]) else { return nil }
                through = seq
            }
        }
    }

    /// One side, opened: its database, run, facts and learned index.
    struct Opened {
        var index: ReadOnlyIndex
        var directory: String
        var run: RunRecord
        var through: UInt64
        var facts: RunFacts
        var learned: LearnedIndex
    }

    func open(_ db: String, _ specText: String, reuse: Opened?) throws -> Opened {
        let spec = RunSpec(specText)!
        var option = DatabaseOption()
        option.db = db
        let index = try ReadOnlyIndex(option)
        return try index.read { snapshot in
            let run = try index.run(snapshot, id: spec.run)
            let through = spec.through ?? run.lastSequence
            guard through >= run.firstSequence && through <= run.lastSequence else {
                throw CommandFailure(message: "\(specText): run \(run.id) holds events \(run.firstSequence)-\(run.lastSequence) in \(db)")
            }
            let facts: RunFacts
            do {
                facts = try RunFacts.read(snapshot, run: run, through: through)
            } catch let error as DecodeError {
                throw CommandFailure(message: "\(error) in \(db)", exitCode: 1)
            }
            let learned: LearnedIndex
            if let reuse, reuse.directory == db, reuse.through == through {
                learned = reuse.learned
            } else {
                do {
                    learned = try LearnedIndex.at(through, log: index.log, live: index.views)
                } catch let error as DecodeError {
                    throw CommandFailure(message: "\(error) in \(db)", exitCode: 1)
                }
            }
            return Opened(index: index, directory: db, run: run, through: through, facts: facts, learned: learned)
        }
    }

    func run() throws {
        let dbA = logs ? arguments[0] : database.directory
        let dbB = logs ? arguments[1] : database.directory
        let a = try open(dbA, arguments[arguments.count - 2], reuse: nil)
        let b = try open(dbB, arguments[arguments.count - 1], reuse: a)
        let fields = try fields()
        var out = Output()
        let differ = try IndexSnapshot.read([a.learned.reader(log: a.index.log), b.learned.reader(log: b.index.log)]) { snapshots in
            try report(
                a, b, sideA: DiffSide(snapshots[0], facts: a.facts), sideB: DiffSide(snapshots[1], facts: b.facts),
                fields: fields, &out)
        }
        out.flush()
        if differ { exitProcess(1) }
    }

    // MARK: - Report

    func report(
        _ a: Opened, _ b: Opened, sideA: DiffSide, sideB: DiffSide,
        fields: MetadataFields, _ out: inout Output
    ) throws -> Bool {
        let optionsDiffer = a.facts.options != b.facts.options
        // Header.
        if json {
            var o = JSONObject()
            o.add("type", "runs")
            o.addRaw("a", sideJSON(a))
            o.addRaw("b", sideJSON(b))
            out.line(o.json)
            if optionsDiffer {
                var p = JSONObject()
                p.add("type", "options")
                p.add("a", a.facts.options)
                p.add("b", b.facts.options)
                out.line(p.json)
            }
        } else {
            out.line("A: " + sideLine(a))
            out.line("B: " + sideLine(b))
            if optionsDiffer {
                out.line("options differ:")
                out.line("  A: " + describeRules(a.facts.options))
                out.line("  B: " + describeRules(b.facts.options))
            }
        }

        // Entries, directory by directory.
        var shown: [String] = []
        var shownDifferences = 0
        var hidden = 0
        let others = try RunComparison.compare(sideA, sideB)
        var diff = TreeDiff(fields: fields, listSubtreeContents: json)
        diff.unreadableA = others.unreadableA
        diff.unreadableB = others.unreadableB
        let summary = try diff.compare(sideA, sideB) { dir, differences in
            if json {
                for d in differences { out.line(differenceJSON(d)) }
                return
            }
            var heading = false
            for d in differences where !d.insideSubtree {
                if shownDifferences >= limit {
                    hidden += 1
                    continue
                }
                shownDifferences += 1
                if !heading { shown.append(dir.isEmpty ? "./" : displayPath(dir) + "/"); heading = true }
                shown.append("  " + differenceLine(d, dir: dir))
            }
        }
        let divergence = try RunComparison.firstDivergence(summary.divergingDirectories + others.divergingDirectories, sideA, sideB)
        let differ = optionsDiffer || !summary.isEmpty || !others.isEmpty
        if json {
            for (which, list) in [("a", others.errorsOnlyInA), ("b", others.errorsOnlyInB)] {
                for e in list {
                    var o = JSONObject()
                    o.add("type", "error")
                    o.add("only_in", which)
                    o.addPath("path", e.path)
                    o.add("errno", e.errno)
                    o.add("error", Errno(rawValue: e.errno).name)
                    o.add("operation", e.operation.name)
                    out.line(o.json)
                }
            }
            for r in others.rejections {
                var o = JSONObject()
                o.add("type", "rejection")
                o.addPath("path", r.path)
                if let rule = r.ruleA { o.addPath("rule_a", rule) }
                if let rule = r.ruleB { o.addPath("rule_b", rule) }
                o.add("indexed_a", r.indexedInA)
                o.add("indexed_b", r.indexedInB)
                out.line(o.json)
            }
            if let divergence {
                var o = JSONObject()
                o.add("type", "first_divergence")
                o.addPath("path", divergence.path)
                var resolverA = PathResolver(), resolverB = PathResolver()
                o.addRaw("event_a", try divergence.eventA.map { try eventJSON($0, sideA.snapshot, &resolverA) } ?? "null")
                o.addRaw("event_b", try divergence.eventB.map { try eventJSON($0, sideB.snapshot, &resolverB) } ?? "null")
                out.line(o.json)
            }
            var o = JSONObject()
            o.add("type", "summary")
            o.add("equivalent", !differ)
            o.add("options_differ", optionsDiffer)
            o.add("only_in_a", summary.onlyInA)
            o.add("only_in_b", summary.onlyInB)
            o.add("changed", summary.changed)
            o.add("inside_subtrees", summary.insideSubtrees)
            o.add("missing_listings", summary.missingListings)
            o.add("errors_only_in_a", others.errorsOnlyInA.count)
            o.add("errors_only_in_b", others.errorsOnlyInB.count)
            o.add("rejections", others.rejections.count)
            out.line(o.json)
            return differ
        }

        if let divergence {
            var resolverA = PathResolver(), resolverB = PathResolver()
            out.line("first divergence: " + (divergence.path.isEmpty ? "./" : displayPath(divergence.path) + "/"))
            out.line(
                "  A: " + (try divergence.eventA.map { try eventLine($0, sideA.snapshot, &resolverA) } ?? "no event of run \(a.run.id) concerns it"))
            out.line(
                "  B: " + (try divergence.eventB.map { try eventLine($0, sideB.snapshot, &resolverB) } ?? "no event of run \(b.run.id) concerns it"))
        }
        for line in shown { out.line(line) }
        if hidden > 0 { out.line("… \(hidden) more differences (--limit \(limit + hidden) shows them, --json all)") }
        for (which, list) in [("A", others.errorsOnlyInA), ("B", others.errorsOnlyInB)] where !list.isEmpty {
            out.line("errors only in \(which):")
            var groups: [String: [[UInt8]]] = [:]
            for e in list { groups["\(Errno(rawValue: e.errno).name) \(e.operation.name)", default: []].append(e.path) }
            for key in groups.keys.sorted() {
                let paths = groups[key]!
                let first = paths.prefix(3).map { displayPath($0) }.joined(separator: ", ")
                out.line("  \(key) (\(paths.count)): \(first)\(paths.count > 3 ? ", …" : "")")
            }
        }
        if !others.rejections.isEmpty {
            out.line("rejections:")
            for r in others.rejections.prefix(max(limit, 1)) {
                func state(_ rule: [UInt8]?, _ indexed: Bool) -> String {
                    if let rule { return "rejected by \(displayPath(rule))" }
                    return indexed ? "indexed" : "absent"
                }
                out.line("  \(displayPath(r.path)): A \(state(r.ruleA, r.indexedInA)), B \(state(r.ruleB, r.indexedInB))")
            }
        }
        var parts: [String] = []
        if optionsDiffer { parts.append("options differ") }
        if summary.onlyInA > 0 { parts.append("\(summary.onlyInA) only in A") }
        if summary.onlyInB > 0 { parts.append("\(summary.onlyInB) only in B") }
        if summary.changed > 0 { parts.append("\(summary.changed) changed") }
        if summary.missingListings > 0 { parts.append("\(summary.missingListings) listings on one side only") }
        if summary.insideSubtrees > 0 { parts.append("\(summary.insideSubtrees) more inside those subtrees") }
        if !others.errorsOnlyInA.isEmpty { parts.append("\(counted(others.errorsOnlyInA.count, "error")) only in A") }
        if !others.errorsOnlyInB.isEmpty { parts.append("\(counted(others.errorsOnlyInB.count, "error")) only in B") }
        if !others.rejections.isEmpty { parts.append("\(others.rejections.count) rejections differ") }
        out.line(differ ? "differ: " + parts.joined(separator: ", ") : "equivalent")
        return differ
    }

    func sideLine(_ s: Opened) -> String {
        let upTo =
            s.through == s.run.lastSequence
            ? "events \(s.run.firstSequence)-\(s.run.lastSequence)" : "events \(s.run.firstSequence)-\(s.through) (of \(s.run.lastSequence))"
        let source: String
        switch s.learned.source {
        case .live: source = "the live index"
        case .replayed: source = "the replayed views"
        case let .folded(events): source = "\(counted(events, "event")) folded"
        }
        return "run \(s.run.id) of \(displayPath(s.facts.root)), \(s.run.status.name), \(upTo); index: \(source)" + (logs ? "; \(s.directory)" : "")
    }

    func sideJSON(_ s: Opened) -> String {
        var o = JSONObject()
        o.add("db", s.directory)
        o.add("run", s.run.id)
        o.addPath("root", s.facts.root)
        o.add("status", s.run.status.name)
        o.add("first_seq", s.run.firstSequence)
        o.add("through", s.through)
        o.add("options", s.facts.options)
        switch s.learned.source {
        case .live: o.add("index", "live")
        case .replayed: o.add("index", "replayed")
        case let .folded(events): o.add("index", "folded"); o.add("folded_events", events)
        }
        return o.json
    }

    func differenceJSON(_ d: EntryDifference) -> String {
        var o = JSONObject()
        o.add("type", "entry")
        o.add("difference", d.kind.rawValue)
        o.addPath("path", d.path)
        if !d.fields.isEmpty || d.kind == .changed {
            o.addRaw("fields", "[" + d.fields.map { "\"\($0)\"" }.joined(separator: ",") + "]")
        }
        if let m = d.a { var x = JSONObject(); metadataFields(&x, "", m, withDirID: false); o.addRaw("a", x.json) }
        if let m = d.b { var x = JSONObject(); metadataFields(&x, "", m, withDirID: false); o.addRaw("b", x.json) }
        if d.isListing { o.add("listing", true) }
        if let s = d.subtree { o.add("subtree_entries", s.entries); o.add("subtree_bytes", s.bytes) }
        if d.insideSubtree { o.add("inside_subtree", true) }
        return o.json
    }

    func differenceLine(_ d: EntryDifference, dir: [UInt8]) -> String {
        let name = displayPath(dir.isEmpty || d.path.count <= dir.count ? d.path : Array(d.path[(dir.count + 1)...]))
        func describe(_ m: EntryMetadata) -> String {
            m.kind == .directory ? "dir" : "\(m.kind.name), \(m.size) bytes"
        }
        switch d.kind {
        case .onlyInA, .onlyInB:
            let side = d.kind == .onlyInA ? "A" : "B"
            if d.isListing, let s = d.subtree {
                return
                    "\(dir.isEmpty ? "." : displayPath(dir))/ (\(counted(s.entries, "entry")), \(counted(s.bytes, "byte"))) only in \(side): \(side == "A" ? "B" : "A") could not read it"
            }
            let m = (d.a ?? d.b)!
            if let s = d.subtree { return "\(name)/ (\(counted(s.entries, "entry")), \(counted(s.bytes, "byte"))) only in \(side)" }
            return "\(name) (\(describe(m))) only in \(side)"
        case .changed:
            let (x, y) = (d.a!, d.b!)
            let changes = d.fields.map { f -> String in
                switch f {
                case "kind": return "kind \(x.kind.name) -> \(y.kind.name)"
                case "inode": return "inode \(x.inode) -> \(y.inode)"
                case "dev": return "dev \(x.device) -> \(y.device)"
                case "mode": return "mode \(String(x.mode, radix: 8)) -> \(String(y.mode, radix: 8))"
                case "size": return "size \(x.size) -> \(y.size)"
                case "mtime_ns": return "mtime \(nsTime(x.mtimeNs)) -> \(nsTime(y.mtimeNs))"
                case "ctime_ns": return "ctime \(nsTime(x.ctimeNs)) -> \(nsTime(y.ctimeNs))"
                default: return "btime \(nsTime(x.btimeNs)) -> \(nsTime(y.btimeNs))"
                }
            }
            var line =
                "\(name)\(x.kind == .directory ? "/" : ""): "
                + (changes.isEmpty ? "directory not entered on one side" : changes.joined(separator: ", "))
            if let s = d.subtree { line += "; below it \(counted(s.entries, "entry")), \(counted(s.bytes, "byte")) on one side only" }
            return line
        }
    }
}

/// 2020-12-10 08:49:56.123456789 (UTC) from nanoseconds since the epoch.
func nsTime(_ ns: Int64) -> String {
    let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
    let fraction = String(ns - seconds * 1_000_000_000)
    return timestamp(seconds: seconds) + "." + String(repeating: "0", count: 9 - fraction.count) + fraction
}
