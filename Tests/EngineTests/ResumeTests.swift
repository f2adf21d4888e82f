import EventStore
import Events
import Foundation
import Projections
import TestSupport
import Testing

/// Pause, crash and resume: a run stopped at any moment goes on later without losing or
/// repeating work.
@Suite(.serialized)
struct ResumeTests {
    /// The index of an interrupted-and-resumed run equals that of one uninterrupted run.
    static func expectSameIndex(_ root: String, _ db: String, _ reference: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for command in [["ls", root, "-R", "--json"], ["du", root, "--depth", "1000", "--json"]] {
            let a = try Support.evindex(command + ["--db", db]), b = try Support.evindex(command + ["--db", reference])
            #expect(a.status == 0 && b.status == 0, sourceLocation: sourceLocation)
            #expect(a.stdout == b.stdout, "\(command[0]) differs from an uninterrupted run", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [SIGKILL, SIGINT])
    func interruptedFiveTimesThenFinished(_ signal: Int32) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db", reference = tmp + "/reference"
            try Support.makeTree(root, entries: 200_000, seed: 21)
            let found = try FindOracle.entries(root)
            let started = Date()
            #expect(try Support.evindex(["run", root, "--db", reference]).status == 0)
            let fullRun = Date().timeIntervalSince(started)

            var rng = SystemRandomNumberGenerator()
            var statuses: [Int32] = []
            for i in 0..<5 {
                // Moments spread over the run, so each interruption lands somewhere new.
                let delay = fullRun * (Double(i) + Double.random(in: 0.1...0.9, using: &rng)) / 6
                statuses.append(try Support.interruptedRun(root, db, after: delay, signal: signal))
            }
            if signal == SIGINT {
                #expect(statuses.allSatisfy { $0 == 130 || $0 == 0 }, "\(statuses)")
                #expect(statuses.contains(130))
            }
            let last = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(last.status == 0, "\(last.stderr)")
            // Every interruption resumed run 1; once it completed, later runs were rescans
            // that found nothing to record.
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            #expect(runs.first?["status"] as? String == "completed")
            #expect(
                runs.dropFirst().allSatisfy { $0["created"] as? Int == 0 && $0["status"] as? String == "completed" },
                "\(runs)")

            try Checks.expectEachEntryCreatedOnce(db, entries: found.count)
            try Self.expectSameIndex(root, db, reference)
            try Checks.expectViewsMatchDisk(root, db)
            let scratch = try Support.evindex(["replay", "--verify", "--from-scratch", "--db", db])
            #expect(scratch.status == 0, "\(scratch.stderr)")
            // From a snapshot halfway through the log, the rest folds to the live views too.
            let total = try Support.objects(try Support.evindex(["replay", "--json", "--db", db]).stdout)[0]["last_seq"] as! Int
            _ = try Support.evindex(["replay", "--from-scratch", "--to", String(total / 2), "--db", db])
            let fromSnapshot = try Support.evindex(["replay", "--verify", "--from-snapshot", "--json", "--db", db])
            #expect(fromSnapshot.status == 0, "\(fromSnapshot.stderr)")
            #expect(try Support.objects(fromSnapshot.stdout)[0]["snapshot_seq"] as? Int == total / 2)
        }
    }

    /// `--restart` after a crash starts over and still indexes everything (regression:
    /// directories recorded without their listing were trusted as unchanged).
    @Test func restartAfterACrashIndexesEverything() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 60_000, seed: 24)
            Thread.sleep(forTimeInterval: 2.2)
            _ = try Support.interruptedRun(root, db, after: 0.25, signal: SIGKILL)
            let r = try Support.evindex(["run", root, "--restart", "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            // The new run's counts are its own, not the abandoned run's.
            let summary = try Support.objects(r.stdout).first ?? [:]
            let newRun = summary["run"] as? Int ?? 0
            let created = try Support.objects(try Support.evindex(["log", "--run", String(newRun), "--json", "--db", db]).stdout)
                .filter { $0["type"] as? String == "EntryCreated" }.count
            #expect(summary["created"] as? Int == created)
            try Checks.expectViewsMatchDisk(root, db)
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            #expect(runs.last?["status"] as? String == "completed")
            #expect(runs.dropLast().allSatisfy { $0["status"] as? String == "abandoned" })
        }
    }

    /// A pause in the middle of a rescan after `--mutate`: resumed, the run records the
    /// mutation once, as an uninterrupted rescan would.
    @Test func pausedRescanAfterMutationFinishesTheSame() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 100_000, seed: 22)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let before = try FindOracle.identities(root)
            _ = try Checks.mutate(root, 2000, seed: 22)
            let after = try FindOracle.identities(root)
            var paused = 0
            for delay in [0.15, 0.3] {
                if try Support.interruptedRun(root, db, after: delay, signal: SIGINT) == 130 { paused += 1 }
            }
            #expect(paused > 0, "the rescan finished before it could be paused")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let e = try RescanTests.runEvents(db, run: 2)
            let net = FindOracle.changes(before: before, after: after)
            #expect(
                e.created == net.created && e.removed == net.removed && e.movedFiles == net.movedFiles
                    && e.movedDirs == net.movedDirs && e.updatedFiles == net.modifiedFiles, "\(e) vs \(net)")
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// `replay --to SEQ` rebuilds the views as the live run had them at SEQ; a snapshot of
    /// an unknown version is not read (resume folds the run's events instead).
    @Test func replayToASequenceEqualsTheLiveViewsThenAndOldSnapshotsAreIgnored() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 100_000, seed: 23)
            #expect(try Support.interruptedRun(root, db, after: 0.3, signal: SIGINT) == 130)
            // The live views now are those just after the pause's last event.
            let atPause = try Support.objects(try Support.evindex(["replay", "--json", "--db", db]).stdout)[0]
            let pausedAt = atPause["last_seq"] as! Int

            // Make the run's snapshot unreadable: a version this build does not know.
            let log = try EventLog(directory: db, create: true)
            try log.environment.write { txn in
                _ = try log.latestSnapshot(txn, run: 1) { seq, _ in
                    try log.putSnapshot(txn, run: 1, sequence: seq, state: [JobState.snapshotVersion + 1, 0, 0, 0])
                }
            }
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectEachEntryCreatedOnce(db, entries: try FindOracle.entries(root).count)

            let then = try Support.objects(try Support.evindex(["replay", "--to", String(pausedAt), "--json", "--db", db]).stdout)[0]
            #expect(then["replay_entries_digest"] as? String == atPause["live_entries_digest"] as? String)
            #expect(then["replay_dirs_digest"] as? String == atPause["live_dirs_digest"] as? String)
            // Those views answer ls and du: fewer entries than now, the run being half done.
            let past = try Support.evindex(["ls", root, "-R", "--json", "--replayed", "--db", db])
            let now = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
            #expect(past.status == 0, "\(past.stderr)")
            #expect(try Support.objects(past.stdout).count < (try Support.objects(now.stdout).count))
            #expect(try Support.evindex(["du", root, "--replayed", "--db", db]).status == 0)
            try Checks.expectReplayMatches(db)
        }
    }
}
