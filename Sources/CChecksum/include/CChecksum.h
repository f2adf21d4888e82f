#ifndef EVINDEX_CCHECKSUM_H
#define EVINDEX_CCHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has the CRC-32C instruction (x86-64 SSE 4.2).
int evindex_crc32c_hardware(void);

/// Continues a CRC-32C over `n` bytes with the CPU's instruction. `crc` is the running
/// value before the final inversion (start with 0xFFFFFFFF). Only when
/// `evindex_crc32c_hardware()` is true.
uint32_t evindex_crc32c_update(uint32_t crc, const void *bytes, size_t n);

#endif
