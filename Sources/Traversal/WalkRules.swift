import Rules

#if canImport(Glibc)
    import Glibc
#endif

/// The rules as the walk applies them: which entries of a listing are indexed, after the
/// directory's own `.git` and `.gitignore` are taken into its context.
///
/// Every file the rules look at is reached through the walk's `FileSystem`, above the root
/// too (the top of the git work tree the root lies in, the ignore files on the way down):
/// a test double sees, and can fail, the rules' reads as well as the walk's.
struct WalkRules<FS: FileSystem>: Sendable {
    let compiled: CompiledRules
    let fs: FS

    /// The rules in force at the root, before its own listing is read.
    func rootContext() -> DirectoryRules {
        compiled.rootContext(isDirectory: isDirectory, exists: exists, readFile: readFile, isNotAFile: isNotAFile)
    }

    /// Moves the entries the rules reject from `entries` to `rejected`, after taking this
    /// directory's `.git` and `.gitignore` into its context.
    ///
    /// - Returns: whether a rules file could not be read for lack of descriptors (a lister
    ///   reading ahead holds some): the listing is then read again by the walk.
    func apply(_ listing: inout DirectoryListing, _ handle: DirectoryHandle, _ context: inout DirectoryRules?) -> Bool {
        guard var ctx = context else { return false }
        let rules = compiled
        var outOfDescriptors = false
        listing.names.withUnsafeBytes { names in
            func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            }
            if rules.ruleSet.gitignore {
                var hasGit = false, hasIgnoreFile = false
                for e in listing.entries where e.nameLength == 4 || e.nameLength == 10 {
                    let n = name(e)
                    if n.elementsEqual(dotGitName) { hasGit = isRepository(e.stat, handle, outOfDescriptors: &outOfDescriptors) }
                    if e.stat.isRegularFile && n.elementsEqual(dotGitignoreName) { hasIgnoreFile = true }
                }
                if hasGit || hasIgnoreFile {
                    rules.enter(
                        &ctx, hasGit: hasGit, hasIgnoreFile: hasIgnoreFile,
                        read: { relative, follow in
                            (relative + [0]).withUnsafeBufferPointer { p in
                                readRulesFile(
                                    handle, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), following: follow,
                                    outOfDescriptors: &outOfDescriptors)
                            }
                        },
                        isNotAFile: isNotAFile)
                }
            }
            // Once, where the work tree starts: git refuses an excludes file it cannot read.
            if let path = ctx.unreadableExcludesFile {
                let cause = Errno(rawValue: isDirectory(path + Array("/.".utf8)) ? EISDIR : EINVAL)
                listing.errors.append(WalkError(directoryID: listing.directoryID, name: [], errno: cause, operation: .readExcludesFile))
                ctx.unreadableExcludesFile = nil
            }
            var kept: [ListedEntry] = []
            kept.reserveCapacity(listing.entries.count)
            for var entry in listing.entries {
                let n = name(entry)
                let verdict = rules.classify(n, isDirectory: entry.stat.isDirectory, in: &ctx) { child in
                    // "name/child", relative to this directory: one lstat, no descent.
                    (Array(n) + [UInt8(ascii: "/")] + child + [0]).withUnsafeBufferPointer { p in
                        let path = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
                        return (try? fs.stat(handle, path))?.isDirectory ?? false
                    }
                }
                switch verdict {
                case let .accepted(descend, filesAccepted):
                    if !descend { entry.canDescend = false }
                    entry.filesAccepted = filesAccepted
                    kept.append(entry)
                case let .rejected(rule):
                    listing.rejected.append(RejectedEntry(nameStart: entry.nameStart, nameLength: entry.nameLength, rule: rule))
                }
            }
            listing.entries = kept
        }
        context = ctx
        return outOfDescriptors
    }

    /// A `.gitignore`, `info/exclude` or `.git` file; nil when it cannot be read (git
    /// ignores what it cannot read too), noting when that was for lack of descriptors.
    private func readRulesFile(
        _ handle: DirectoryHandle, _ path: UnsafePointer<CChar>, following: Bool = false, outOfDescriptors: inout Bool
    ) -> [UInt8]? {
        do {
            return try following ? fs.readFileFollowingSymlink(handle, path) : fs.readFile(handle, path)
        } catch {
            if error.rawValue == EMFILE || error.rawValue == ENFILE { outOfDescriptors = true }
            return nil
        }
    }

    /// Whether the entry `.git` of this directory is a repository, as git requires of the
    /// top of a work tree: a directory (or a symlink to one) with `HEAD`, `objects/` and
    /// `refs/`, or a file `gitdir: PATH` (worktrees, submodules).
    private func isRepository(_ st: EntryStat, _ handle: DirectoryHandle, outOfDescriptors: inout Bool) -> Bool {
        func probe(_ path: String, directory: Bool) -> Bool {
            path.withCString { p in
                guard let found = try? fs.stat(handle, p) else { return false }
                return directory ? found.isDirectory : true
            }
        }
        if st.isDirectory || st.isSymlink {
            return probe(".git/HEAD", directory: false) && probe(".git/objects", directory: true) && probe(".git/refs", directory: true)
        }
        guard st.isRegularFile,
            let contents = ".git".withCString({ readRulesFile(handle, $0, outOfDescriptors: &outOfDescriptors) })
        else { return false }
        return contents.starts(with: Array("gitdir: ".utf8))
    }

    // MARK: - Above the root, by absolute path

    private func isDirectory(_ path: [UInt8]) -> Bool {
        withCString(path) { (try? fs.stat(atPath: $0))?.isDirectory ?? false }
    }

    private func exists(_ path: [UInt8]) -> Bool {
        withCString(path) { (try? fs.stat(atPath: $0)) != nil }
    }

    /// Not following a symlink at the end of the path, as git does for `.gitignore` files;
    /// following it for a repository's own files.
    private func readFile(_ path: [UInt8], following: Bool) -> [UInt8]? {
        withCString(path) { p in
            following
                ? try? LongPath.at(p) { (parent, name) throws(Errno) in try fs.readFileFollowingSymlink(DirectoryHandle(fd: parent), name) }
                : try? fs.readFile(atPath: p)
        }
    }

    /// Whether an absolute path is there, through symlinks, as something other than a
    /// regular file (a directory, a FIFO): an excludes file git refuses. A missing file or
    /// one that cannot be opened is not (git passes over those).
    private func isNotAFile(_ path: [UInt8]) -> Bool {
        if isDirectory(path + Array("/.".utf8)) { return true }
        return withCString(path) { p in
            do throws(Errno) {
                _ = try LongPath.at(p) { (parent, name) throws(Errno) in try fs.readFileFollowingSymlink(DirectoryHandle(fd: parent), name) }
                return false
            } catch {
                return error.rawValue == EINVAL  // readAll's word for "not a regular file"
            }
        }
    }

    private func withCString<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (path + [0]).withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
    }
}

private let dotGitName = Array(".git".utf8)
private let dotGitignoreName = Array(".gitignore".utf8)
