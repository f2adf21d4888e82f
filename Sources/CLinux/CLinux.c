#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <fcntl.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "CLinux.h"

ssize_t evindex_getdents64(int fd, void *buffer, size_t size) {
    return getdents64(fd, buffer, size);
}

/* Wojciech Mula's "generic SIMD" search: a position is a candidate when the needle's first
   byte is there and its last byte is where it would end; 32 (AVX2) or 16 (SSE2) positions
   are tested at once and only candidates are compared in full. glibc's two-way memmem is
   made for long needles; a name search's are a few bytes. */
static const uint8_t *tail_search(const uint8_t *h, size_t i, size_t haystack_len, const uint8_t *n, size_t needle_len) {
    for (; i + needle_len <= haystack_len; i++) {
        if (h[i] == n[0] && memcmp(h + i, n, needle_len) == 0) return h + i;
    }
    return NULL;
}

#ifdef __x86_64__
__attribute__((target("avx2")))
static const void *search_avx2(const uint8_t *h, size_t haystack_len, const uint8_t *n, size_t needle_len) {
    const __m256i first = _mm256_set1_epi8((char)n[0]), last = _mm256_set1_epi8((char)n[needle_len - 1]);
    size_t i = 0;
    for (; i + needle_len - 1 + 32 <= haystack_len; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(h + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(h + i + needle_len - 1));
        unsigned mask = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(a, first), _mm256_cmpeq_epi8(b, last)));
        while (mask != 0) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(h + i + bit + 1, n + 1, needle_len - 2) == 0) return h + i + bit;
            mask &= mask - 1;
        }
    }
    return tail_search(h, i, haystack_len, n, needle_len);
}

static const void *search_sse2(const uint8_t *h, size_t haystack_len, const uint8_t *n, size_t needle_len) {
    const __m128i first = _mm_set1_epi8((char)n[0]), last = _mm_set1_epi8((char)n[needle_len - 1]);
    size_t i = 0;
    for (; i + needle_len - 1 + 16 <= haystack_len; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(h + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(h + i + needle_len - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask != 0) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(h + i + bit + 1, n + 1, needle_len - 2) == 0) return h + i + bit;
            mask &= mask - 1;
        }
    }
    return tail_search(h, i, haystack_len, n, needle_len);
}
#endif

const void *evindex_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len) {
    if (needle_len < 2 || needle_len > haystack_len) return memmem(haystack, haystack_len, needle, needle_len);
#ifdef __x86_64__
    static int avx2 = -1;
    if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    return avx2 ? search_avx2(haystack, haystack_len, needle, needle_len) : search_sse2(haystack, haystack_len, needle, needle_len);
#else
    return memmem(haystack, haystack_len, needle, needle_len);
#endif
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
