/* Interface of the spawn helper (see spawn.c). */
#ifndef RRGDB_SPAWN_H
#define RRGDB_SPAWN_H
#include <stdint.h>

/* Every field applies; options is never NULL. */
struct rrgdb_spawn_options {
    uint64_t stack_soft;
    uint64_t stack_hard;
    int no_core;
    uint64_t ignored; /* bit N-1: signal N stays ignored (every other one: SIG_DFL) */
};

int rrgdb_spawn(const char *path, char *const argv[], char *const envp[],
                const char *cwd, const struct rrgdb_spawn_options *options,
                int err_fd);
#endif
