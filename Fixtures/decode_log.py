#!/usr/bin/env python3
"""An independent decoder of evindex's log, from Docs/EVENTS.md alone.

Reads the stored values of a log, framed as [u32 LE length][8-byte BE key][value]
(schema 1 records or schema 2 and 3 blocks), checks every CRC-32C, decodes every event,
and prints each EntryCreated as NUL-separated fields: path, kind, size, inode, mtime_ns,
ctime_ns, btime_ns, blocks, nlink, uid, gid (the last four 0 before schema 3). Paths are
rebuilt from JobStarted's root and the dir ids.

    decode_log.py DUMP > entries
"""
import sys

MASK64 = (1 << 64) - 1


def crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc_table()


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def signed64(v):
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


class Reader:
    def __init__(self, data):
        self.data, self.i = data, 0

    def byte(self):
        b = self.data[self.i]
        self.i += 1
        return b

    def varint(self):
        result, shift = 0, 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def zigzag(self):
        u = self.varint()
        return (u >> 1) ^ -(u & 1)

    def raw(self):
        n = self.varint()
        out = self.data[self.i:self.i + n]
        self.i += n
        return out


KINDS = {1: "file", 2: "dir", 3: "symlink", 4: "other"}


class Context:
    """What a block's delta coding refers to (all zero at the start of a block)."""

    def __init__(self, version):
        self.version = version
        self.parent = 0
        self.dir_id = 0
        self.meta = dict(kind=1, mode=0, inode=0, dev=0, size=0, mtime=0, ctime=0, btime=0,
                         blocks=0, nlink=0, uid=0, gid=0)

    def read_parent(self, r):
        self.parent = (self.parent + r.zigzag()) & MASK64
        return self.parent

    def read_metadata(self, r):
        p = self.meta
        flags = r.byte()
        m = dict(p)
        m["kind"] = flags & 7
        if flags & 0x08:
            m["mode"] = r.varint()
        if flags & 0x10:
            m["dev"] = r.varint()
        m["inode"] = (p["inode"] + r.zigzag()) & MASK64
        m["size"] = r.varint()
        dm = r.zigzag()
        m["mtime"] = signed64(p["mtime"] + (dm * 1_000_000_000 if flags & 0x20 else dm))
        m["ctime"] = signed64((m["mtime"] if flags & 0x40 else p["ctime"]) + r.zigzag())
        m["btime"] = signed64((m["ctime"] if flags & 0x80 else p["btime"]) + r.zigzag())
        m["dir_id"] = 0
        if m["kind"] == 2:
            self.dir_id = (self.dir_id + r.zigzag()) & MASK64
            m["dir_id"] = self.dir_id
        if self.version >= 3:
            own = r.byte()
            m["nlink"] = r.varint() if own & 0x0F == 15 else own & 0x0F
            if own & 0x20:
                m["uid"] = r.varint()
            if own & 0x40:
                m["gid"] = r.varint()
            expected = (m["size"] + 4095) // 4096 * 8 if m["kind"] in (1, 2) else 0
            reference = p["blocks"] if own & 0x10 else expected
            m["blocks"] = (reference + (r.zigzag() if own & 0x80 else 0)) & MASK64
        self.meta = m
        return m


def v1_metadata(r):
    m = dict(kind=r.byte(), mode=r.varint(), inode=r.varint(), dev=r.varint(), size=r.varint(),
             mtime=r.zigzag(), ctime=r.zigzag(), btime=r.zigzag(), dir_id=0, blocks=0, nlink=0, uid=0, gid=0)
    if m["kind"] == 2:
        m["dir_id"] = r.varint()
    return m


def events(key, value):
    """(type, fields) of each event in a stored value."""
    if crc32c(value[:-4], crc32c(key)) != int.from_bytes(value[-4:], "little"):
        raise SystemExit(f"checksum mismatch at key {key.hex()}")
    version = value[0]
    if version == 1:
        r = Reader(value[:-4])
        r.i = 2
        r.varint(), r.varint()  # run, time_ms
        yield from [one_event(value[1], r, None)]
        if r.i != len(r.data):
            raise SystemExit("trailing bytes in a record")
        return
    if version not in (2, 3):
        raise SystemExit(f"unknown version {version}")
    count = int.from_bytes(value[-8:-4], "little")
    r = Reader(value[:-8])
    r.i = 1
    r.varint(), r.varint()  # run, time_ms
    ctx = Context(version)
    for _ in range(count):
        t = r.byte()
        yield one_event(t, r, ctx)
    if r.i != len(r.data):
        raise SystemExit("trailing bytes in a block")


def one_event(t, r, ctx):
    parent = (lambda: ctx.read_parent(r)) if ctx else r.varint
    meta = (lambda: ctx.read_metadata(r)) if ctx else (lambda: v1_metadata(r))
    if t == 1:
        e = dict(root=r.raw(), root_dir=r.varint(), options=r.raw(), version=r.raw())
        if ctx and ctx.version >= 3:
            flag = r.byte()
            if flag > 1:
                raise SystemExit("invalid root metadata flag")
            if flag == 1:
                e["root_meta"] = meta()
        return t, e
    if t == 2 or t == 5:
        return t, dict(text=r.raw())
    if t == 3:
        return t, {}
    if t == 4:
        return t, dict(counts=[r.varint() for _ in range(10)])
    if t == 6:
        return t, dict(entries=r.varint())
    if t == 10:
        return t, dict(dir=parent(), children=r.varint())
    if t == 11:
        return t, dict(parent=parent(), name=r.raw(), rule=r.raw())
    if t == 20:
        return t, dict(parent=parent(), name=r.raw(), meta=meta())
    if t == 21:
        return t, dict(parent=parent(), name=r.raw(), old=meta(), new=meta())
    if t == 22:
        return t, dict(parent=parent(), name=r.raw())
    if t == 23:
        return t, dict(from_parent=parent(), from_name=r.raw(), to_parent=parent(), to_name=r.raw(), meta=meta())
    if t == 30:
        return t, dict(parent=parent(), name=r.raw(), errno=r.zigzag(), op=r.byte())
    raise SystemExit(f"unknown event type {t}")


def main():
    data = open(sys.argv[1], "rb").read()
    paths = {}
    out = sys.stdout.buffer
    i = 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "little")
        key, value = data[i + 4:i + 12], data[i + 12:i + 12 + n]
        i += 12 + n
        for t, e in events(key, value):
            if t == 1:
                paths[e["root_dir"]] = e["root"]
            elif t == 20:
                m = e["meta"]
                path = paths[e["parent"]] + b"/" + e["name"]
                if m["kind"] == 2 and m["dir_id"]:
                    paths[m["dir_id"]] = path
                fields = [path, KINDS[m["kind"]].encode()] + [
                    str(m[k]).encode() for k in ("size", "inode", "mtime", "ctime", "btime", "blocks", "nlink", "uid", "gid")]
                out.write(b"\0".join(fields) + b"\0")


if __name__ == "__main__":
    main()
