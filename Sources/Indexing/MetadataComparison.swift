import Events
import Traversal

/// How a rescan tells what an entry's metadata says: the same directory, the same file
/// under another name, or a change to record. Every comparison of a row with a stat goes
/// through these, so the detector, the move pairing and the look-ahead agree.
extension EntryMetadata {
    /// Metadata from a stat; `dirID` is the id the walker gave a directory it enters.
    init(_ st: EntryStat, dirID: UInt64) {
        let kind = EntryKind(mode: st.mode)
        self.init(
            kind: kind, mode: st.mode, inode: st.inode, device: st.device, size: st.size,
            mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, btimeNs: st.btimeNs, dirID: kind == .directory ? dirID : 0,
            blocks: st.blocks, nlink: max(st.nlink, 1), uid: st.uid, gid: st.gid)
    }

    /// Whether `other` is this same directory: inode and device, and birth time when both
    /// are known (a directory's size and mtime change with its contents).
    func isSameDirectory(as other: EntryMetadata) -> Bool {
        inode == other.inode && device == other.device && (btimeNs == 0 || other.btimeNs == 0 || btimeNs == other.btimeNs)
    }

    /// Whether `other`, seen under another name, is this same file: same inode and kind,
    /// and the same birth time (or, where the filesystem keeps none, the same size and
    /// mtime). A freed inode given to a new file fails this; a rename passes.
    func isSameFile(as other: EntryMetadata) -> Bool {
        guard kind == other.kind && inode == other.inode && device == other.device else { return false }
        if btimeNs != 0 && other.btimeNs != 0 { return btimeNs == other.btimeNs }
        return size == other.size && mtimeNs == other.mtimeNs
    }

    /// Whether a rescan must record a change: any of (inode, dev, mode, size, mtime, ctime,
    /// birth time, blocks, links, owner, group) differs, or the directory id (a directory
    /// replaced by a new one). A row of an older schema, without blocks and links, always
    /// differs: the rescan fills them from its stat.
    func differs(from new: EntryMetadata) -> Bool {
        kind != new.kind || inode != new.inode || device != new.device || mode != new.mode
            || size != new.size || mtimeNs != new.mtimeNs || ctimeNs != new.ctimeNs || btimeNs != new.btimeNs
            || dirID != new.dirID || blocks != new.blocks || nlink != new.nlink || uid != new.uid || gid != new.gid
    }
}

extension EntryKind {
    /// The kind of an `st_mode`.
    init(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .file
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        default: self = .other
        }
    }
}
