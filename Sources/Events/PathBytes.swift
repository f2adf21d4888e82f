/// Absolute paths as bytes: how one path relates to another.
///
/// Rule: "is this path that directory or below it" is asked here and nowhere else, by
/// whole components ("/a/b" is below "/a", "/ab" is not; everything is below "/").
/// Motivation: the check was written six times (roots, nested roots, runs that cover a
/// tree, imports, log filters, diffs), each a chance to forget the root or the slash.
public enum PathBytes {
    /// Whether `path` is `ancestor` or lies below it.
    @inlinable
    public static func isSameOrBelow(_ path: some Collection<UInt8>, _ ancestor: some Collection<UInt8>) -> Bool {
        guard path.count >= ancestor.count, path.starts(with: ancestor) else { return false }
        if path.count == ancestor.count || ancestor.elementsEqual(CollectionOfOne(UInt8(ascii: "/"))) { return true }
        return path[path.index(path.startIndex, offsetBy: ancestor.count)] == UInt8(ascii: "/")
    }

    /// Whether `path` lies strictly below `ancestor`.
    @inlinable
    public static func isBelow(_ path: some Collection<UInt8>, _ ancestor: some Collection<UInt8>) -> Bool {
        path.count > ancestor.count && isSameOrBelow(path, ancestor)
    }

    /// `directory/name`; `name` is one component (no slash is added after a root "/").
    @inlinable
    public static func joined(_ directory: [UInt8], _ name: some Collection<UInt8>) -> [UInt8] {
        var path = directory
        path.reserveCapacity(directory.count + 1 + name.count)
        if path.last != UInt8(ascii: "/") { path.append(UInt8(ascii: "/")) }
        path.append(contentsOf: name)
        return path
    }
}
