#ifndef EVINDEX_CMAPGUARD_H
#define EVINDEX_CMAPGUARD_H
// A damaged database file must end a command with one line, not a signal: LMDB reads its
// memory map without bounds, so a page past the file's end (SIGBUS) or a size that runs
// past the map (SIGSEGV) is caught here when the faulting address lies in a registered map.
#include <stddef.h>

/// Registers, or moves, the guarded range of `owner` (one per open environment): a SIGBUS
/// or SIGSEGV at an address in [start, start + length) writes `message` (one line, copied
/// here) to standard error and exits with status 1. Faults elsewhere keep their previous
/// handling. Returns 0, or -1 when every slot is taken.
int evindex_guard_mapping(const void *owner, const void *start, size_t length, const char *message);

/// Forgets the range of `owner` (its environment is closed and unmapped).
void evindex_unguard_mapping(const void *owner);

#endif
