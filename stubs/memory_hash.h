/* Interface of the memory digest (see memory_hash.c). */
#ifndef RRGDB_MEMORY_HASH_H
#define RRGDB_MEMORY_HASH_H
#include <stddef.h>
#include <stdint.h>

/* ranges: count triples (start, end, zero_fill), page-aligned, in address order.
 * Returns 0, or -1 with errno set (no memory for the buffer). */
int rrgdb_memory_hash(int pid, const uint64_t *ranges, size_t count, uint8_t out[32]);

/* The (address, first word of the hash) of each page the digest would add, as pairs in
 * out (up to capacity pairs). Returns how many there are (more than capacity: call
 * again with a larger out), or -1 with errno set. */
long rrgdb_page_hashes(int pid, const uint64_t *ranges, size_t count, uint64_t *out,
                       size_t capacity);
#endif
