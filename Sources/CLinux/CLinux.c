#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "CLinux.h"

ssize_t evindex_getdents64(int fd, void *buffer, size_t size) {
    return getdents64(fd, buffer, size);
}

/* Nanoseconds since the epoch, held at INT64_MIN/INT64_MAX outside 1677-09-21..2262-04-11
   (a filesystem can keep later times: ext4 to 2446): wrapping would turn them into the past. */
static int64_t nanoseconds(struct statx_timestamp t) {
    if (t.tv_sec > INT64_MAX / 1000000000 - 1) return INT64_MAX;
    if (t.tv_sec < INT64_MIN / 1000000000 + 1) return INT64_MIN;
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int evindex_stat(int dirfd, const char *name, struct evindex_stat *out) {
    struct statx sx;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] == 0 ? AT_EMPTY_PATH : 0);
    if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0) return -1;
    out->inode = sx.stx_ino;
    out->device = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    out->size = sx.stx_size;
    out->mtime_ns = nanoseconds(sx.stx_mtime);
    out->ctime_ns = nanoseconds(sx.stx_ctime);
    out->btime_ns = (sx.stx_mask & STATX_BTIME) ? nanoseconds(sx.stx_btime) : 0;
    out->blocks = sx.stx_blocks;
    out->mode = sx.stx_mode;
    out->nlink = sx.stx_nlink;
    out->uid = sx.stx_uid;
    out->gid = sx.stx_gid;
    return 0;
}
