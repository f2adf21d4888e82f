import Foundation
import TestSupport
import Testing

/// Output that cannot be written is a failure: exit 1 and one line, never exit 0 with a
/// truncated file (issue 21, section 3). A closed pipe (`| head`) stays quiet and exits 0.
@Suite(.serialized)
struct OutputErrorTests {
    @Test func aFullDiskFailsTheCommand() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 300, seed: 4)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            for command in [
                ["ls", root, "-R", "--json"], ["ls", root, "-R"], ["du", root, "--json", "--depth", "9"], ["log"],
                ["log", "--json"], ["export", "1"], ["runs", "--json"],
            ] {
                let args = ([Support.evindex] + command + ["--db", db]).map { "'\($0)'" }.joined(separator: " ")
                let r = try Support.run(["/bin/sh", "-c", args + " > /dev/full"])
                #expect(r.status == 1, "\(command): exit \(r.status)")
                #expect(
                    r.stderr.hasPrefix("evindex: cannot write the output: ") && r.stderr.split(separator: "\n").count == 1,
                    "\(command): \(r.stderr)")
            }
            // A reader that stops early is not a failure.
            let args = [Support.evindex, "ls", root, "-R", "--db", db].map { "'\($0)'" }.joined(separator: " ")
            let closed = try Support.run(["/bin/bash", "-c", "set -o pipefail; " + args + " | head -1 > /dev/null"])
            #expect(closed.status == 0 && closed.stderr.isEmpty, "\(closed.status) \(closed.stderr)")
        }
    }
}
