#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "CLinux.h"

ssize_t evindex_getdents64(int fd, void *buffer, size_t size) {
    return getdents64(fd, buffer, size);
}

int evindex_stat(int dirfd, const char *name, struct evindex_stat *out) {
    struct statx sx;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] == 0 ? AT_EMPTY_PATH : 0);
    if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0) return -1;
    out->inode = sx.stx_ino;
    out->device = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    out->size = sx.stx_size;
    out->mtime_ns = (int64_t)sx.stx_mtime.tv_sec * 1000000000 + sx.stx_mtime.tv_nsec;
    out->ctime_ns = (int64_t)sx.stx_ctime.tv_sec * 1000000000 + sx.stx_ctime.tv_nsec;
    out->btime_ns = (sx.stx_mask & STATX_BTIME) ? (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec : 0;
    out->mode = sx.stx_mode;
    return 0;
}
