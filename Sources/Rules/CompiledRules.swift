/// A rule set made ready for the walk: globs compiled into sets, the user's excludes file
/// read. One per run; asked once per listed entry.
public final class CompiledRules: Sendable {
    public let ruleSet: RuleSet
    /// The walk's root, absolute: absolute globs and git sources are built on it.
    let root: [UInt8]
    let rejects: GlobSet
    let accepts: GlobSet
    let requireChildren: [[UInt8]]
    let rejectIfChildren: [[UInt8]]
    /// The global git config files that exist, read once: path and text.
    let globalConfigs: [(path: [UInt8], text: [UInt8])]
    let environment: [String: String]

    /// - Parameters:
    ///   - environment: HOME, XDG_CONFIG_HOME and GIT_CONFIG_GLOBAL decide where git's
    ///     global config and excludes file are.
    ///   - readFile: reads a file by absolute path (nil when it cannot be read).
    public init(_ ruleSet: RuleSet, root: [UInt8], environment: [String: String], readFile: ([UInt8]) -> [UInt8]?) {
        self.ruleSet = ruleSet
        self.root = root
        self.environment = environment
        rejects = GlobSet(ruleSet.rejectGlobs)
        accepts = GlobSet(ruleSet.acceptGlobs)
        requireChildren = ruleSet.requireChildren.map { Array($0.utf8) }
        rejectIfChildren = ruleSet.rejectIfChildren.map { Array($0.utf8) }
        globalConfigs = ruleSet.gitignore ? GitConfig.globalFiles(environment: environment).compactMap { p in readFile(p).map { (p, $0) } } : []
    }

    /// Whether any rule needs the child-directory probe.
    public var probesChildren: Bool { !requireChildren.isEmpty || !rejectIfChildren.isEmpty }

    // MARK: - Directory contexts

    /// The rules in force at the root, before its own listing is read: finds the git work
    /// tree the root lies in (its top may be above the root) and reads the ignore files
    /// between that top and the root.
    ///
    /// - Parameters:
    ///   - isDirectory: whether an absolute path is a directory (for `.git` and required children).
    ///   - readFile: reads a file by absolute path, following a symlink at its end when
    ///     told to (git does for a repository's own files, not for `.gitignore`).
    public func rootContext(
        isDirectory: ([UInt8]) -> Bool, exists: ([UInt8]) -> Bool, readFile: (_ path: [UInt8], _ followingSymlink: Bool) -> [UInt8]?,
        isNotAFile: ([UInt8]) -> Bool
    ) -> DirectoryRules {
        var context = DirectoryRules(depth: 0, relativePath: [], git: nil, filesAccepted: requireChildren.isEmpty)
        if !requireChildren.isEmpty {
            context.filesAccepted = requireChildren.allSatisfy { isDirectory(root + [UInt8(ascii: "/")] + $0) }
        }
        guard ruleSet.gitignore else { return context }
        // The nearest ancestor holding a repository is the top of the work tree holding the root.
        var ancestors: [[UInt8]] = []
        var path = root
        while let slash = path.lastIndex(of: UInt8(ascii: "/")), !path.isEmpty, path != [UInt8(ascii: "/")] {
            path = slash == 0 ? [UInt8(ascii: "/")] : Array(path[..<slash])
            ancestors.append(path)
        }
        // `.git` a directory, or a symlink to one (looked through), or a `gitdir:` file.
        func isRepository(_ dir: [UInt8]) -> Bool {
            let git = join(dir, Self.dotGit)
            if exists(join(git, Array("HEAD".utf8))) && isDirectory(join(git, Array("objects".utf8)))
                && isDirectory(join(git, Array("refs".utf8)))
            {
                return true
            }
            return readFile(git, false).map { $0.starts(with: Self.gitdirPrefix) } ?? false
        }
        // A root that is itself the top of a work tree has its own rules, whatever a
        // repository around it ignores (git asks the nearest repository): its listing
        // brings them.
        if isRepository(root) { return context }
        guard let topIndex = ancestors.firstIndex(where: isRepository) else { return context }
        let top = ancestors[topIndex]
        let readBelowTop = { (p: [UInt8], follow: Bool) in readFile(p.first == UInt8(ascii: "/") ? p : join(top, p), follow) }
        var frame = GitFrame(tree: workTree(top: top, read: readBelowTop, isNotAFile: isNotAFile), pathInTree: [], file: nil, parent: nil)
        context.unreadableExcludesFile = frame.tree.unreadableExcludesFile
        frame = frame.with(file: ignoreFile(in: top, pathInTree: [], read: readFile))
        // Down from the top to the root's parent, then the root itself (read at its
        // listing). A directory on the way that git ignores makes the whole root ignored.
        for dir in ancestors[..<topIndex].reversed() + [root] {
            let pathInTree = Array(dir[(top == [UInt8(ascii: "/")] ? 1 : top.count + 1)...])
            if context.ignoredDirectory == nil {
                let name = Array(dir[(dir.lastIndex(of: UInt8(ascii: "/"))! + 1)...])
                if name == Self.dotGit {
                    context.ignoredDirectory = Array(Self.gitsOwnData.utf8)
                } else if let (file, pattern) = name.withUnsafeBytes({ frame.lastMatch(name: $0, isDirectory: true) }), !pattern.negated {
                    context.ignoredDirectory = Self.rule(file, pattern)
                }
            }
            frame = GitFrame(tree: frame.tree, pathInTree: pathInTree, file: nil, parent: frame)
            if dir != root { frame = frame.with(file: ignoreFile(in: dir, pathInTree: pathInTree, read: readFile)) }
        }
        context.git = frame
        return context
    }

    private func ignoreFile(in dir: [UInt8], pathInTree: [UInt8], read: ([UInt8], Bool) -> [UInt8]?) -> IgnoreFile? {
        let source = join(dir, Array(".gitignore".utf8))
        guard let contents = read(source, false) else { return nil }
        return IgnoreFile(source: source, base: pathInTree, contents: contents)
    }

    /// The files that apply everywhere in the work tree whose top is `top`.
    ///
    /// - Parameter read: reads a path relative to the top (or an absolute one).
    /// - Parameter isNotAFile: whether a path exists (through symlinks) as something other
    ///   than a regular file: an excludes file git refuses.
    private func workTree(top: [UInt8], read: ([UInt8], Bool) -> [UInt8]?, isNotAFile: ([UInt8]) -> Bool) -> GitWorkTree {
        // `.git` is the repository, or (worktrees, submodules) a file naming it; a linked
        // worktree shares its main repository's info/exclude and config (`commondir`).
        var gitDir = Self.dotGit
        if let pointer = read(Self.dotGit, false), pointer.starts(with: Self.gitdirPrefix) {
            var target = Array(pointer.dropFirst(Self.gitdirPrefix.count))
            while let last = target.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") {
                target.removeLast()
            }
            gitDir = target
        }
        var commonDir = gitDir
        if var common = read(join(gitDir, Array("commondir".utf8)), true) {
            while let last = common.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { common.removeLast() }
            commonDir = common.first == UInt8(ascii: "/") ? common : join(gitDir, common)
        }
        commonDir = normalized(commonDir)
        func absolute(_ p: [UInt8]) -> [UInt8] { p.first == UInt8(ascii: "/") ? p : join(top, p) }
        // The user's config, then the repository's: the last `core.excludesFile` wins.
        var config = GitConfig()
        let repositoryDirectory = normalized(absolute(gitDir))
        for global in globalConfigs {
            config.read(global.text, source: global.path, gitDir: repositoryDirectory, environment: environment, readFile: { read($0, true) })
        }
        let configPath = absolute(join(commonDir, Array("config".utf8)))
        if let local = read(configPath, true) {
            config.read(local, source: configPath, gitDir: repositoryDirectory, environment: environment, readFile: { read($0, true) })
        }
        var files: [IgnoreFile] = []
        var unreadable: [UInt8]?
        if let path = config.excludesFile ?? GitConfig.defaultExcludesFile(environment: environment), !path.isEmpty {
            if let contents = read(path, true) {
                files.append(IgnoreFile(source: absolute(path), base: [], contents: contents))
            } else if isNotAFile(absolute(path)) {
                unreadable = absolute(path)
            }
        }
        let exclude = join(commonDir, Array("info/exclude".utf8))
        if let info = read(exclude, true) {
            files.append(IgnoreFile(source: absolute(exclude), base: [], contents: info))
        }
        let tracked = read(join(gitDir, Array("index".utf8)), true).flatMap { TrackedPaths(index: $0, idLength: config.sha256 ? 32 : 20) }
        return GitWorkTree(
            top: top, repositoryFiles: files, ignoreCase: config.ignoreCase, tracked: tracked, unreadableExcludesFile: unreadable)
    }

    static let gitdirPrefix = Array("gitdir: ".utf8)

    /// The absolute path of a directory of the walk.
    public func absolutePath(of context: DirectoryRules) -> [UInt8] {
        context.relativePath.isEmpty ? root : join(root, context.relativePath)
    }

    /// A directory's listing is known: a `.git` in it makes it the top of a work tree (a
    /// nested repository has its own rules), and its `.gitignore` joins the rules.
    ///
    /// - Parameters:
    ///   - hasGit: the listing holds a repository named `.git` (a directory with `HEAD`,
    ///     `objects` and `refs`, or a `gitdir:` file), as git requires of a work tree's top.
    ///   - hasIgnoreFile: the listing holds a regular file named `.gitignore`.
    ///   - read: reads a file by a path relative to this directory (or an absolute one).
    ///   - isNotAFile: whether a path (absolute) exists, through symlinks, as something
    ///     other than a regular file.
    public func enter(
        _ context: inout DirectoryRules, hasGit: Bool, hasIgnoreFile: Bool, read: (_ path: [UInt8], _ followingSymlink: Bool) -> [UInt8]?,
        isNotAFile: ([UInt8]) -> Bool
    ) {
        guard ruleSet.gitignore else { return }
        let here = absolutePath(of: context)
        if hasGit {
            context.git = GitFrame(tree: workTree(top: here, read: read, isNotAFile: isNotAFile), pathInTree: [], file: nil, parent: nil)
            context.ignoredDirectory = nil
            context.unreadableExcludesFile = context.git?.tree.unreadableExcludesFile
        }
        guard let frame = context.git, hasIgnoreFile, let contents = read(Array(".gitignore".utf8), false) else { return }
        context.git = frame.with(file: IgnoreFile(source: join(here, Array(".gitignore".utf8)), base: frame.pathInTree, contents: contents))
    }

    /// The context of a subdirectory the walk enters.
    public func child(of context: DirectoryRules, name: UnsafeRawBufferPointer, filesAccepted: Bool) -> DirectoryRules {
        var child = context
        child.depth += 1
        child.relativePath = context.relativePath.isEmpty ? Array(name) : context.relativePath + [UInt8(ascii: "/")] + Array(name)
        child.filesAccepted = filesAccepted
        child.ignoredDirectory = nil
        child.unreadableExcludesFile = nil
        if let git = context.git {
            let path = git.pathInTree.isEmpty ? Array(name) : git.pathInTree + [UInt8(ascii: "/")] + Array(name)
            child.git = GitFrame(tree: git.tree, pathInTree: path, file: nil, parent: git.file == nil ? git.parent ?? git : git)
            // Entered though ignored: only for what the index tracks below it.
            if let why = context.ignoredDirectory {
                child.ignoredDirectory = why
            } else if !context.keptForTracked.isEmpty {
                child.ignoredDirectory = context.keptForTracked[Array(name)]
            }
            child.keptForTracked = [:]
        }
        return child
    }

    // MARK: - Verdicts

    /// What to do with one entry of a directory whose context is `context` (which notes a
    /// directory kept only for what the index tracks below it).
    ///
    /// - Parameters:
    ///   - hasChildDirectory: whether this entry (a directory) has a child directory of that name.
    public func classify(
        _ name: UnsafeRawBufferPointer, isDirectory: Bool, in context: inout DirectoryRules,
        hasChildDirectory: ([UInt8]) -> Bool
    ) -> Verdict {
        // Rejections first, in a fixed order: the first that applies names the rejection.
        if let git = context.git {
            if let why = context.ignoredDirectory, !git.isTracked(name: name, isDirectory: isDirectory) { return .rejected(why) }
            if name.elementsEqual(Self.dotGit) { return .rejected(Array(Self.gitsOwnData.utf8)) }
        }
        if !rejects.isEmpty, let glob = rejects.firstMatch(name: name, relativeTo: context.relativePath, root: root) {
            return .rejected(Array("reject \(glob)".utf8))
        }
        if !ruleSet.hidden && name.first == UInt8(ascii: ".") {
            return .rejected(Array("hidden".utf8))
        }
        if isDirectory {
            for child in rejectIfChildren where hasChildDirectory(child) {
                return .rejected(Array("reject-if-child ".utf8) + child)
            }
        }
        if let git = context.git, let (file, pattern) = git.lastMatch(name: name, isDirectory: isDirectory), !pattern.negated {
            guard git.isTracked(name: name, isDirectory: isDirectory) else { return .rejected(Self.rule(file, pattern)) }
            if isDirectory { context.keptForTracked[Array(name)] = Self.rule(file, pattern) }
        }
        if isDirectory {
            var filesAccepted = context.filesAccepted
            if !filesAccepted { filesAccepted = requireChildren.allSatisfy(hasChildDirectory) }
            let descend = ruleSet.maxDepth.map { context.depth + 1 < $0 } ?? true
            return .accepted(descend: descend, filesAccepted: filesAccepted)
        }
        if !accepts.isEmpty && accepts.firstMatch(name: name, relativeTo: context.relativePath, root: root) == nil {
            return .rejected(Array("accept: matches none of the accept globs".utf8))
        }
        if !context.filesAccepted {
            return .rejected(Array("require-child: not inside a directory that has \(ruleSet.requireChildren.joined(separator: ", "))".utf8))
        }
        return .accepted(descend: false, filesAccepted: true)
    }

    static let dotGit: [UInt8] = Array(".git".utf8)
    static let gitsOwnData = "gitignore: .git is git's own data, never part of the work tree"

    /// A gitignore rejection as `PathRejected` names it: `gitignore SOURCE:LINE:PATTERN`,
    /// the file's path and the line as their bytes (a name that is not UTF-8 stays exact).
    static func rule(_ file: IgnoreFile, _ pattern: IgnorePattern) -> [UInt8] {
        Array("gitignore ".utf8) + file.source + Array(":\(pattern.line):".utf8) + pattern.text
    }
}

/// What the rules say of one entry.
public enum Verdict: Sendable, Equatable {
    /// Indexed; a directory is entered when `descend`, and files below it are accepted by
    /// the child-directory rules when `filesAccepted`.
    case accepted(descend: Bool, filesAccepted: Bool)
    /// Not indexed (a directory is not entered): the rule, as `PathRejected` records it
    /// (bytes: a gitignore rule holds a file's path and a pattern as written).
    case rejected([UInt8])
}

/// The rules in force in one directory of the walk.
public struct DirectoryRules: Sendable {
    /// The root is at depth 0.
    public internal(set) var depth: Int
    /// From the root, no leading slash; empty at the root.
    var relativePath: [UInt8]
    /// The git ignore files in force; nil outside a work tree (or without `--gitignore`).
    var git: GitFrame?
    /// The child-directory rules accept files here.
    var filesAccepted: Bool
    /// Set where a work tree starts whose excludes file is there but is no regular file (a
    /// directory, say): the walk records it once, as a non-critical error of this directory.
    public var unreadableExcludesFile: [UInt8]?
    /// Directories of this listing that an ignore rule matches but the index keeps
    /// (something below them is tracked): name → that rule, for their own contexts.
    var keptForTracked: [[UInt8]: [UInt8]] = [:]
    /// Git ignores this directory (at the root: a directory between the top of its work
    /// tree and it), which is entered only for what the index tracks in it: every other
    /// entry is rejected by this rule.
    var ignoredDirectory: [UInt8]?
}

/// A git work tree: its top, the files that apply everywhere in it (lowest priority
/// first), whether its patterns ignore case, and what its index tracks.
final class GitWorkTree: Sendable {
    let top: [UInt8]
    let repositoryFiles: [IgnoreFile]
    /// `core.ignoreCase`.
    let ignoreCase: Bool
    /// Nil without an index (or with none this reader knows).
    let tracked: TrackedPaths?
    /// The excludes file, when it exists but could not be read.
    let unreadableExcludesFile: [UInt8]?

    init(
        top: [UInt8], repositoryFiles: [IgnoreFile], ignoreCase: Bool = false, tracked: TrackedPaths? = nil,
        unreadableExcludesFile: [UInt8]? = nil
    ) {
        self.top = top
        self.repositoryFiles = repositoryFiles
        self.ignoreCase = ignoreCase
        self.tracked = tracked.flatMap { $0.isEmpty ? nil : $0 }
        self.unreadableExcludesFile = unreadableExcludesFile
    }
}

/// One directory of a work tree and its `.gitignore`; `parent` leads to the top.
final class GitFrame: Sendable {
    let tree: GitWorkTree
    /// This directory's path relative to the top.
    let pathInTree: [UInt8]
    let file: IgnoreFile?
    /// The nearest directory above with a `.gitignore` (or the top).
    let parent: GitFrame?

    init(tree: GitWorkTree, pathInTree: [UInt8], file: IgnoreFile?, parent: GitFrame?) {
        self.tree = tree; self.pathInTree = pathInTree; self.file = file; self.parent = parent
    }

    func with(file: IgnoreFile?) -> GitFrame {
        guard let file, !file.isEmpty else { return self }
        return GitFrame(tree: tree, pathInTree: pathInTree, file: file, parent: parent)
    }

    /// Git's precedence: the deepest `.gitignore` first, up to the top, then
    /// `.git/info/exclude`, then the user's excludes file; in each file the last matching
    /// line wins. A negated match means "not ignored".
    func lastMatch(name: UnsafeRawBufferPointer, isDirectory: Bool) -> (IgnoreFile, IgnorePattern)? {
        var path = pathInTree
        if !path.isEmpty { path.append(UInt8(ascii: "/")) }
        let nameStart = path.count
        path.append(contentsOf: name)
        return path.withUnsafeBytes { p -> (IgnoreFile, IgnorePattern)? in
            let ignoreCase = tree.ignoreCase
            var frame: GitFrame? = self
            while let f = frame {
                if let file = f.file, let m = file.lastMatch(path: p, nameStart: nameStart, isDirectory: isDirectory, ignoreCase: ignoreCase) {
                    return (file, m)
                }
                frame = f.parent
            }
            for file in tree.repositoryFiles.reversed() {
                if let m = file.lastMatch(path: p, nameStart: nameStart, isDirectory: isDirectory, ignoreCase: ignoreCase) { return (file, m) }
            }
            return nil
        }
    }

    /// Whether the entry `name` of this directory is tracked (a file in the index, or a
    /// directory holding one): git's ignore rules do not apply to it.
    func isTracked(name: UnsafeRawBufferPointer, isDirectory: Bool) -> Bool {
        guard let tracked = tree.tracked else { return false }
        var path = pathInTree
        if !path.isEmpty { path.append(UInt8(ascii: "/")) }
        path.append(contentsOf: name)
        return tracked.contains(path, isDirectory: isDirectory)
    }
}

/// A path with its `.` and `..` components resolved lexically (for the names rules show).
func normalized(_ path: [UInt8]) -> [UInt8] {
    let slash = UInt8(ascii: "/")
    var parts: [ArraySlice<UInt8>] = []
    for part in path.split(separator: slash) {
        if part.elementsEqual([UInt8(ascii: ".")]) { continue }
        if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]), let last = parts.last,
            !last.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
        {
            parts.removeLast()
            continue
        }
        parts.append(part)
    }
    var out: [UInt8] = path.first == slash ? [slash] : []
    for (i, part) in parts.enumerated() {
        if i > 0 { out.append(slash) }
        out.append(contentsOf: part)
    }
    return out
}

func join(_ dir: [UInt8], _ name: [UInt8]) -> [UInt8] {
    dir == [UInt8(ascii: "/")] ? dir + name : dir + [UInt8(ascii: "/")] + name
}
