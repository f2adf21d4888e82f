#ifndef EVINDEX_CLINUX_H
#define EVINDEX_CLINUX_H
// System calls glibc declares only under _GNU_SOURCE, which Swift's Glibc module hides.
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// getdents64(2): reads directory entries (struct linux_dirent64) into `buffer`.
/// Returns bytes read, 0 at the end, -1 with errno set.
ssize_t evindex_getdents64(int fd, void *buffer, size_t size);

/// The first occurrence of `needle` in `haystack`, or NULL: memmem(3), faster for the
/// short needles of a name search (16 bytes compared at a time where SSE2 is there).
const void *evindex_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

/// What the walker keeps of statx(2), times in nanoseconds since the epoch.
struct evindex_stat {
    uint64_t inode;
    uint64_t device;
    uint64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    /// 0 when the filesystem does not report a birth time.
    int64_t btime_ns;
    /// 512-byte blocks allocated (st_blocks): what the entry takes on disk.
    uint64_t blocks;
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
};

/// statx(2) of `name` relative to `dirfd`, not following a final symlink; with an empty
/// name, of `dirfd` itself. Returns 0, or -1 with errno set.
int evindex_stat(int dirfd, const char *name, struct evindex_stat *out);

#endif
