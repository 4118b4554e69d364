/* The motivating scenario of reverse watchpoints (tests/test_gdb_reverse.py): nodes are
 * malloc'ed, a pointer to one is stored into another heap object (holder->slot) three
 * times, and the last node stored there is leaked. From the end of the replay,
 * `watch -l *(void **)&holder->slot` + reverse-continue must land on the storing lines,
 * newest first. printf between the stores keeps the compiler from merging them even at
 * -O2 (printf may read holder->slot through the global); it prints each node's address.
 * "L:name" comments mark the lines the tests look up by name.
 */
#include <stdio.h>
#include <stdlib.h>

struct node {
    int id;
    struct node *next;
    char payload[24];
};

struct holder {
    const char *label;
    void *slot;
};

struct holder *holder;

__attribute__((noinline)) static struct node *make_node(int id)
{
    struct node *n = malloc(sizeof *n);
    if (!n)
        exit(1);
    n->id = id;
    n->next = NULL;
    snprintf(n->payload, sizeof n->payload, "node-%d", id);
    return n;
}

int main(void)
{
    holder = malloc(sizeof *holder);
    if (!holder)
        return 1;
    holder->label = "holder";
    holder->slot = NULL;
    struct node *a = make_node(1);
    holder->slot = a; /* L:store-a */
    printf("stored %s at %p\n", a->payload, (void *)a);
    struct node *b = make_node(2);
    holder->slot = b; /* L:store-b */
    printf("stored %s at %p\n", b->payload, (void *)b);
    free(a);
    struct node *c = make_node(3);
    holder->slot = c; /* L:store-c */
    printf("stored %s at %p\n", c->payload, (void *)c);
    free(b);
    /* c is never freed: the leak whose origin the test looks for */
    return 0;
}
