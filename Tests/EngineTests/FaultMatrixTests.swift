import Foundation
import TestSupport
import Testing

/// Trees that break naive walkers: depth past PATH_MAX, a very wide directory, names at
/// NAME_MAX, and a real EACCES as an unprivileged user.
@Suite(.serialized)
struct FaultMatrixTests {
    /// A 2,000-deep chain: its paths pass PATH_MAX (4096), walked by descriptor.
    @Test func chainDeeperThanPathMax() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            // Built by descriptor too: the full path is too long for one mkdir.
            var fd = open(root, O_RDONLY | O_DIRECTORY)
            for _ in 0..<2_000 {
                #expect(mkdirat(fd, "deep", 0o755) == 0)
                let next = openat(fd, "deep", O_RDONLY | O_DIRECTORY)
                close(fd)
                fd = next
            }
            let file = openat(fd, "bottom.txt", O_WRONLY | O_CREAT, 0o644)
            #expect(write(file, "x", 1) == 1)
            close(file)
            close(fd)
            // Under 256 descriptors: a directory's descriptor closes once its last
            // subdirectory is open, whether or not listers read ahead down the chain.
            for threads in ["1", "3"] {
                let db = db + threads
                let r = try Support.run([
                    "/usr/bin/prlimit", "--nofile=256:256", Support.evindex, "run", root, "--db", db,
                    "--threads", threads, "--json",
                ])
                #expect(r.status == 0, "\(r.stderr)")
                let s = try Support.objects(r.stdout)[0]
                #expect(s["dirs"] as? Int == 2_000 && s["files"] as? Int == 1 && s["errors"] as? Int == 0, "threads \(threads): \(s)")
                let du = try Support.objects(try Support.evindex(["du", root, "--depth", "0", "--json", "--db", db]).stdout)[0]
                #expect(du["size"] as? Int == 1 && du["dirs"] as? Int == 2_000)
                #expect(try Support.evindex(["verify", "--db", db]).status == 0)
            }
        }
    }

    /// A root whose path is longer than PATH_MAX (given through a symlink, so resolving it
    /// takes the component-by-component path too) is indexed, listed and rescanned as any
    /// other ("File name too long" before); the entries equal a Python walk by descriptor.
    @Test func aRootLongerThanPathMax() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            let chain = Array(repeating: String(repeating: "d", count: 40), count: 120).joined(separator: "/")
            // Python builds the chain and the tree at its end by descriptor, and walks it.
            let build = """
                import os, sys
                fd = os.open(sys.argv[1], os.O_RDONLY)
                for name in sys.argv[2].split('/'):
                    os.mkdir(name, dir_fd=fd); nfd = os.open(name, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd
                for d in ['a', 'a/b', 'c']: os.mkdir(d, dir_fd=fd)
                for f, n in [('top.txt', 3), ('a/one', 10), ('a/b/two', 2000), ('c/three', 0)]:
                    g = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd); os.write(g, b'x' * n); os.close(g)
                """
            try FileManager.default.createDirectory(atPath: tmp + "/tree", withIntermediateDirectories: true)
            #expect(try Support.run(["/usr/bin/python3", "-c", build, tmp + "/tree", chain]).status == 0)
            try FileManager.default.createSymbolicLink(atPath: tmp + "/link", withDestinationPath: "tree")
            let given = tmp + "/link/" + chain, root = tmp + "/tree/" + chain
            #expect(root.utf8.count > Int(PATH_MAX))
            let walk = """
                import os, sys
                fd = os.open('/', os.O_RDONLY)
                for name in sys.argv[1].strip('/').split('/'):
                    nfd = os.open(name, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd
                for top, dirs, files, dfd in os.fwalk('.', dir_fd=fd):
                    for n in dirs + files:
                        st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
                        print(os.path.normpath(os.path.join(top, n)), st.st_size, st.st_ino)
                """
            func oracle() throws -> Set<String> {
                Set(try Support.run(["/usr/bin/python3", "-c", walk, root]).text.split(separator: "\n").map(String.init))
            }
            func listed() throws -> Set<String> {
                let objects = try Support.objects(try Support.evindex(["ls", root, "-R", "--json", "--db", db]).stdout)
                return Set(
                    objects.map { o in
                        "\((o["path"] as? String ?? "").dropFirst(root.count + 1)) \(o["size"] as? Int ?? -1) \(o["inode"] as? Int ?? -1)"
                    })
            }
            let first = try Support.evindex(["run", given, "--db", db, "--json"])
            #expect(first.status == 0, "\(first.stderr.prefix(300))")
            #expect(try Support.objects(first.stdout).first?["entries"] as? Int == 7)
            let expected = try oracle()
            #expect(try listed() == expected && expected.count == 7)
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            #expect(runs.first?["root"] as? String == root, "the root is resolved through the symlink")
            // The same root by an absolute symlink and a `..` past it: one root, resolved alike.
            try FileManager.default.createSymbolicLink(atPath: tmp + "/absolute", withDestinationPath: tmp + "/tree")
            let winding = tmp + "/absolute/" + chain + "/a/../" + ".//"
            let again1 = try Support.evindex(["run", winding, "--db", db, "--json"])
            #expect(again1.status == 0, "\(again1.stderr.prefix(300))")
            #expect(try Support.objects(again1.stdout).first?["root"] as? String == root)
            // A change at the bottom, then a rescan by the resolved path.
            let grow =
                "import os, sys\nfd = os.open('/', os.O_RDONLY)\nfor n in (sys.argv[1].strip('/') + '/a/one').split('/')[:-1]:\n    nfd = os.open(n, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd\ng = os.open('one', os.O_WRONLY | os.O_APPEND, dir_fd=fd); os.write(g, b'more'); os.close(g)\n"
            #expect(try Support.run(["/usr/bin/python3", "-c", grow, root]).status == 0)
            let again = try Support.evindex(["run", root, "--db", db, "--json"])
            let updated = try Support.objects(again.stdout).first?["updated"] as? Int
            #expect(again.status == 0 && updated ?? 0 >= 1, "\(again.stderr.prefix(300))")
            let after = try oracle()
            #expect(try listed() == after)
            let du = try Support.objects(try Support.evindex(["du", root, "--depth", "0", "--json", "--db", db]).stdout).first ?? [:]
            #expect(du["size"] as? Int == 3 + 14 + 2000 && du["files"] as? Int == 4 && du["dirs"] as? Int == 3, "\(du)")
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    /// 100,000 entries in one directory, and names of exactly NAME_MAX (255) bytes.
    @Test func wideDirectoryAndLongestNames() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/wide", withIntermediateDirectories: true)
            for i in 0..<100_000 {
                let fd = open(root + "/wide/f\(i)", O_WRONLY | O_CREAT, 0o644)
                close(fd)
            }
            let longName = String(repeating: "n", count: 250) + ".long"
            #expect(longName.utf8.count == 255)
            try Data(count: 42).write(to: URL(fileURLWithPath: root + "/" + longName))
            let r = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Support.objects(r.stdout)[0]["entries"] as? Int == 100_002)
            try Checks.expectViewsMatchDisk(root, db)
            let again = try Support.objects(try Support.evindex(["run", root, "--db", db, "--json"]).stdout)[0]
            #expect(again["created"] as? Int == 0 && again["removed"] as? Int == 0)
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    /// As an unprivileged user (CI runs as root, where chmod denies nothing), an unreadable
    /// directory is one EACCES NonCriticalError and the rest is indexed.
    @Test func realPermissionDeniedAsAnUnprivilegedUser() throws {
        // Not root: chmod alone denies, and the engine tests cover EACCES by injection.
        guard getuid() == 0 else { return }
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) is needed to drop privileges")
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/closed/inner", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/open", withIntermediateDirectories: true)
            try Data(count: 5).write(to: URL(fileURLWithPath: root + "/open/f"))
            try Data(count: 6).write(to: URL(fileURLWithPath: root + "/closed/inner/g"))
            _ = try Support.run(["/bin/chmod", "-R", "a+rwX", tmp])
            _ = try Support.run(["/bin/chmod", "000", root + "/closed"])
            let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Support.evindex]
            let r = try Support.run(nobody + ["run", root, "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let s = try Support.objects(r.stdout).first ?? [:]
            #expect(s["errors"] as? Int == 1 && s["files"] as? Int == 1, "\(s)")
            let errors = try Support.objects(try Support.run(nobody + ["log", "--json", "--db", db]).stdout)
                .filter { $0["type"] as? String == "NonCriticalError" }
            #expect(errors.count == 1)
            #expect(errors.first?["error"] as? String == "EACCES")
            #expect(errors.first?["operation"] as? String == "opendir")
            #expect(errors.first?["path"] as? String == root + "/closed")
            _ = try Support.run(["/bin/chmod", "755", root + "/closed"])
        }
    }

    /// A directory that became unreadable keeps its old entries (a failed read proves
    /// nothing was removed), marked stale: in `ls -R --json` exactly the entries `find`
    /// lists below it, in `du --json` the directories above, at and below it, and in
    /// `why`; `ls` prints `!` after the kind. Readable again, nothing is stale. As root,
    /// which drops to nobody for the denial.
    @Test func aDirectoryThatBecameUnreadableIsMarkedStale() throws {
        guard getuid() == 0 else { return }
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 600, seed: 21)
            _ = try Support.run(["/bin/chmod", "-R", "a+rwX", tmp])
            // A directory two levels down that has subdirectories of its own.
            let dirs = try Support.run(["/usr/bin/find", root, "-mindepth", "2", "-maxdepth", "2", "-type", "d"]).text.split(separator: "\n").map(
                String.init
            ).sorted()
            let closed = try #require(
                dirs.first { d in
                    !d.contains("/awkward")
                        && (try? Support.run(["/usr/bin/find", d, "-mindepth", "2", "-type", "d"]).text.isEmpty == false) ?? false
                })
            let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Support.evindex]
            #expect(try Support.run(nobody + ["run", root, "--db", db]).status == 0)
            let below = Set(try Support.run(["/usr/bin/find", closed, "-mindepth", "1"]).text.split(separator: "\n").map(String.init))
            let dirsBelow = Set(
                try Support.run(["/usr/bin/find", closed, "-mindepth", "1", "-type", "d"]).text.split(separator: "\n").map(String.init))
            _ = try Support.run(["/bin/chmod", "000", closed])
            defer { _ = try? Support.run(["/bin/chmod", "755", closed]) }
            #expect(try Support.run(nobody + ["run", root, "--db", db]).status == 0)

            let listed = try Support.objects(try Support.run(nobody + ["ls", root, "-R", "--json", "--db", db]).stdout)
            let stale = Set(listed.filter { $0["stale"] as? Bool == true }.compactMap { $0["path"] as? String })
            #expect(!below.isEmpty && stale == below, "stale: \(stale.count), below \(closed): \(below.count)")
            let human = try Support.run(nobody + ["ls", root, "-R", "--db", db]).text.split(separator: "\n")
            #expect(human.filter { $0.dropFirst().first == "!" }.count == below.count)
            var above: Set<String> = [root]
            var at = closed
            while at != root {
                above.insert(at)
                at = (at as NSString).deletingLastPathComponent
            }
            let rows = try Support.objects(try Support.run(nobody + ["du", root, "--depth", "64", "--json", "--db", db]).stdout)
            let staleRows = Set(rows.filter { $0["stale"] as? Bool == true }.compactMap { $0["path"] as? String })
            #expect(
                staleRows == above.union(dirsBelow),
                "\(staleRows.subtracting(above.union(dirsBelow))) \(above.union(dirsBelow).subtracting(staleRows))")
            let file = try #require(below.sorted().first)
            let why = try Support.objects(try Support.run(nobody + ["why", file, "--json", "--db", db]).stdout).first ?? [:]
            #expect(why["stale"] as? Bool == true && why["stale_at"] as? String == closed, "\(why)")
            #expect(try Support.run(nobody + ["verify", "--db", db]).status == 0)

            _ = try Support.run(["/bin/chmod", "755", closed])
            #expect(try Support.run(nobody + ["run", root, "--db", db]).status == 0)
            #expect(!(try Support.run(nobody + ["ls", root, "-R", "--json", "--db", db]).text.contains("\"stale\"")))
            #expect(!(try Support.run(nobody + ["du", root, "--depth", "64", "--json", "--db", db]).text.contains("\"stale\"")))
        }
    }

    /// The read commands open the database read-only: on a read-only filesystem, and as
    /// another user who cannot write its lock file, they answer as the owner's do ("not a
    /// usable evindex database: Read-only file system" before). As root only.
    @Test func aDatabaseThatCannotBeWrittenCanBeRead() throws {
        guard getuid() == 0 else { return }
        try Support.withTemporaryDirectory { tmp in
            let mnt = tmp + "/mnt", root = tmp + "/mnt/tree", db = tmp + "/mnt/db"
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            try #require(try Support.run(["/bin/mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt]).status == 0)
            defer { _ = try? Support.run(["/bin/umount", mnt]) }
            try Support.makeTree(root, entries: 200, seed: 6)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let readers = [
                ["ls", root, "-R"], ["du", root, "--json"], ["runs", "--json"], ["log", "--json"], ["find", "a"], ["ls", root, "--at", "1"],
            ]
            var answers: [Data] = []
            for command in readers { answers.append(try Support.evindex(command + ["--db", db]).stdout) }
            _ = try Support.run(["/bin/chmod", "-R", "a+rX", tmp])
            let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Support.evindex]
            for (command, answer) in zip(readers, answers) {
                let r = try Support.run(nobody + command + ["--db", db])
                #expect(r.status == 0 && r.stdout == answer, "as another user, \(command): \(r.status) \(r.stderr)")
            }
            try #require(try Support.run(["/bin/mount", "-o", "remount,ro", mnt]).status == 0)
            for (command, answer) in zip(readers, answers) {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 0 && r.stdout == answer, "read-only filesystem, \(command): \(r.status) \(r.stderr)")
            }
            let run = try Support.evindex(["run", root, "--db", db])
            #expect(run.status == 2 && run.stderr.split(separator: "\n").count == 1, "\(run.status) \(run.stderr)")
        }
    }
}
