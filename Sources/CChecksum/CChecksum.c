#include "CChecksum.h"
#include <string.h>

#if defined(__x86_64__)
int evindex_crc32c_hardware(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t evindex_crc32c_update(uint32_t crc, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p);
        p++;
        n--;
    }
    return c32;
}
#else
int evindex_crc32c_hardware(void) { return 0; }
uint32_t evindex_crc32c_update(uint32_t crc, const void *bytes, size_t n) { (void)bytes; (void)n; return crc; }
#endif
