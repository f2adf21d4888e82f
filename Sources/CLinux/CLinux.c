#define _GNU_SOURCE
#include <dirent.h>
#include "CLinux.h"

ssize_t evindex_getdents64(int fd, void *buffer, size_t size) {
    return getdents64(fd, buffer, size);
}
