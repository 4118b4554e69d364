/* Interface of the memory digest (see memory_hash.c). */
#ifndef RRGDB_MEMORY_HASH_H
#define RRGDB_MEMORY_HASH_H
#include <stddef.h>
#include <stdint.h>

/* ranges: count triples (start, end, zero_fill), page-aligned, in address order.
 * Returns 0, or -1 with errno set (no memory for the buffer). */
int rrgdb_memory_hash(int pid, const uint64_t *ranges, size_t count, uint8_t out[32]);
#endif
