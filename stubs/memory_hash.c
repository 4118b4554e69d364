/* The memory digest of a PreemptFrame: 32 bytes that depend only on the contents and
 * addresses of the given ranges of a process's memory.
 *
 * Each 4 KiB page gets a 256-bit hash: four lanes of xxHash64's round, each over every
 * fourth word of the page, then mixed into each other. The digest feeds, in address
 * order, each range's bounds and the address and hash of every page that is not all
 * zeros into four more lanes. A page of zeros adds nothing, so it counts the same
 * whether it was read or skipped: in zero_fill ranges (private anonymous memory) pages
 * that /proc/PID/pagemap shows neither present nor swapped out read as zeros, and they
 * are skipped without being read. Replay may have such a page populated where the
 * recording did not, and the other way round.
 *
 * The rest is read with process_vm_readv, up to 256 KiB a call, into a buffer each
 * thread keeps (larger calls were no faster). A page that call cannot read is read
 * through /proc/PID/mem (a PROT_WRITE-only page, say); a page neither can read (past
 * the end of a mapped file) adds its address and a fixed marker.
 *
 * rrgdb_page_hashes lists the same pages' hashes (their first word), for the recorder to
 * see which pages a loop's turn writes (record/preemption.py).
 *
 * Not cryptographic: a collision needs two different memory states at the same
 * registers, which nothing here chooses adversarially. A change confined to one 8-byte
 * word always changes its page's hash (each step below is a bijection of its lane).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "memory_hash.h"

#define PAGE 4096u
#define BATCH_PAGES 64u
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
                      P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull;
/* What a range's bounds and an unreadable page add in place of a page hash. */
static const uint64_t RANGE_TAG = 0x52414E4745000000ull, UNREADABLE_TAG = 0x554E524541440000ull;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t round64(uint64_t acc, uint64_t input)
{
    return rotl(acc + input * P2, 31) * P1;
}

static inline uint64_t avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

/* v -> v + sum(v) + c is invertible (determinant 5) and avalanche is a bijection: every
 * output word depends on every lane, and a change in any one lane changes the output. */
static void finish(const uint64_t v[4], uint64_t length, uint64_t out[4])
{
    uint64_t sum = v[0] + v[1] + v[2] + v[3] + length * P4;
    for (int k = 0; k < 4; k++)
        out[k] = avalanche(v[k] + sum);
}

static void page_hash(const unsigned char *page, uint64_t out[4])
{
    uint64_t v0 = P1 + P2, v1 = P2, v2 = 0, v3 = -P1;
    for (size_t i = 0; i < PAGE; i += 32) {
        uint64_t w[4];
        memcpy(w, page + i, sizeof w);
        v0 = round64(v0, w[0]);
        v1 = round64(v1, w[1]);
        v2 = round64(v2, w[2]);
        v3 = round64(v3, w[3]);
    }
    finish((uint64_t[4]){v0, v1, v2, v3}, PAGE, out);
}

/* Where the pages' hashes go: the digest, or a list of (address, hash) pairs. */
struct sink {
    void (*page)(struct sink *, uint64_t addr, const uint64_t h[4]);
};

struct digest {
    struct sink sink;
    uint64_t v[4];
    uint64_t records;
};

static void add(struct digest *d, uint64_t addr, const uint64_t h[4])
{
    for (int k = 0; k < 4; k++)
        d->v[k] = round64(round64(d->v[k], addr), h[k]);
    d->records++;
}

static void add_to_digest(struct sink *s, uint64_t addr, const uint64_t h[4])
{
    add((struct digest *)s, addr, h);
}

struct page_list {
    struct sink sink;
    uint64_t *out;
    size_t count, capacity;
};

static void add_to_list(struct sink *s, uint64_t addr, const uint64_t h[4])
{
    struct page_list *l = (struct page_list *)s;
    if (l->count < l->capacity) {
        l->out[2 * l->count] = addr;
        l->out[2 * l->count + 1] = h[0];
    }
    l->count++;
}

/* The page at addr through /proc/PID/mem (opened at the first need); 0 if unreadable. */
static int read_through_mem(int pid, int *mem_fd, uint64_t addr, unsigned char *page)
{
    if (*mem_fd == -2) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        *mem_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return *mem_fd >= 0 && pread(*mem_fd, page, PAGE, (off_t)addr) == (ssize_t)PAGE;
}

/* Hands the pages [addr, addr + n pages) of one range to the sink. */
static void add_batch(struct sink *s, int pid, int pagemap_fd, int *mem_fd, uint64_t addr,
                      size_t n, int zero_fill, unsigned char *buf, const uint64_t zero[4])
{
    static const uint64_t unreadable[4] = {UNREADABLE_TAG, UNREADABLE_TAG, UNREADABLE_TAG,
                                           UNREADABLE_TAG};
    uint64_t entries[BATCH_PAGES];
    int use_pagemap = zero_fill && pagemap_fd >= 0
        && pread(pagemap_fd, entries, n * sizeof *entries, (off_t)(addr / PAGE * sizeof *entries))
               == (ssize_t)(n * sizeof *entries);
    struct iovec remote[BATCH_PAGES];
    unsigned char wanted[BATCH_PAGES];
    size_t runs = 0, length = 0;
    for (size_t i = 0; i < n; i++) {
        wanted[i] = !use_pagemap || (entries[i] & (PM_PRESENT | PM_SWAPPED));
        if (!wanted[i])
            continue;
        uint64_t page = addr + i * PAGE;
        if (runs && (uint64_t)remote[runs - 1].iov_base + remote[runs - 1].iov_len == page)
            remote[runs - 1].iov_len += PAGE;
        else
            remote[runs++] = (struct iovec){(void *)page, PAGE};
        length += PAGE;
    }
    if (!length)
        return;
    struct iovec local = {buf, length};
    ssize_t got = process_vm_readv(pid, &local, 1, remote, runs, 0);
    size_t read_ok = got > 0 ? (size_t)got : 0, offset = 0;
    for (size_t i = 0; i < n; i++) {
        if (!wanted[i])
            continue;
        uint64_t page = addr + i * PAGE, h[4];
        unsigned char *data = buf + offset;
        offset += PAGE;
        if (offset > read_ok && !read_through_mem(pid, mem_fd, page, data)) {
            s->page(s, page, unreadable);
            continue;
        }
        page_hash(data, h);
        if (memcmp(h, zero, sizeof h))
            s->page(s, page, h);
    }
}

/* Hashes the ranges' pages into the sink; range_tags: the digest's range bounds too. */
static int walk(int pid, const uint64_t *ranges, size_t count, struct sink *s,
                struct digest *range_tags)
{
    static __thread unsigned char *buf;
    if (!buf && !(buf = aligned_alloc(PAGE, BATCH_PAGES * PAGE))) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t zero[4];
    memset(buf, 0, PAGE);
    page_hash(buf, zero);

    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    int pagemap_fd = open(path, O_RDONLY | O_CLOEXEC), mem_fd = -2;
    for (size_t r = 0; r < count; r++) {
        uint64_t start = ranges[3 * r], end = ranges[3 * r + 1];
        int zero_fill = ranges[3 * r + 2] != 0;
        if (range_tags)
            add(range_tags, start, (const uint64_t[4]){end, RANGE_TAG, RANGE_TAG, RANGE_TAG});
        for (uint64_t addr = start; addr + PAGE <= end; addr += BATCH_PAGES * PAGE) {
            size_t n = (end - addr) / PAGE < BATCH_PAGES ? (end - addr) / PAGE : BATCH_PAGES;
            add_batch(s, pid, pagemap_fd, &mem_fd, addr, n, zero_fill, buf, zero);
        }
    }
    if (pagemap_fd >= 0)
        close(pagemap_fd);
    if (mem_fd >= 0)
        close(mem_fd);
    return 0;
}

int rrgdb_memory_hash(int pid, const uint64_t *ranges, size_t count, uint8_t out[32])
{
    struct digest d = {{add_to_digest}, {P1 + P2, P2, 0, -P1}, 0};
    if (walk(pid, ranges, count, &d.sink, &d) < 0)
        return -1;
    uint64_t h[4];
    finish(d.v, d.records, h);
    memcpy(out, h, sizeof h); /* little-endian words */
    return 0;
}

long rrgdb_page_hashes(int pid, const uint64_t *ranges, size_t count, uint64_t *out,
                       size_t capacity)
{
    struct page_list l = {{add_to_list}, out, 0, capacity};
    if (walk(pid, ranges, count, &l.sink, NULL) < 0)
        return -1;
    return (long)l.count;
}
