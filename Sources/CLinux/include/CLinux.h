#ifndef EVINDEX_CLINUX_H
#define EVINDEX_CLINUX_H
// System calls glibc declares only under _GNU_SOURCE, which Swift's Glibc module hides.
#include <stddef.h>
#include <sys/types.h>

/// getdents64(2): reads directory entries (struct linux_dirent64) into `buffer`.
/// Returns bytes read, 0 at the end, -1 with errno set.
ssize_t evindex_getdents64(int fd, void *buffer, size_t size);

#endif
