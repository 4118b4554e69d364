/* A leaky program for rrgdb's leak-hunting tools (tests/test_leak_tools.py).
 *
 * - A holder slot written three times (a, then b, then c): `last holder->slot` walks back
 *   through the three stores, and before the first one there is no earlier write.
 * - Node c is held by a heap slot, a global and a stack variable: `monitor refs` finds all.
 * - A three-node list is leaked: its head was stored into a registry (offset 16, which
 *   free() leaves alone) that is then freed. The root is the head, stored at store-head.
 * - A three-node ring is leaked the same way: no roots, one cycle, stored at store-ring.
 *
 * The program prints every address the tests need; "MARK:" comments name the lines the
 * tests look up. Build it with -O0 so every store stays where the source puts it.
 */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    long value;
};

struct registry {
    long id;
    long count;
    struct node *head; /* offset 16: tcache's free() writes offsets 0 and 8 only */
};

struct holder {
    struct node *slot;
};

struct node *global_slot;

static struct node *make(long value)
{
    struct node *n = malloc(sizeof *n);
    if (!n)
        exit(1);
    n->next = NULL;
    n->value = value;
    return n;
}

static struct node *build_list(int count)
{
    struct node *head = NULL;
    for (int i = count; i > 0; i--) {
        struct node *n = make(i);
        n->next = head;
        head = n;
    }
    return head;
}

static struct node *build_ring(void)
{
    struct node *x = make(10), *y = make(11), *z = make(12);
    x->next = y;
    y->next = z;
    z->next = x;
    return x;
}

static void remember(struct registry *r, struct node *list)
{
    r->head = list; /* MARK: store-head */
    r->count = 3;
}

static void remember_ring(struct registry *r, struct node *ring)
{
    r->head = ring; /* MARK: store-ring */
    r->count = 3;
}

static void checkpoint_here(void)
{
}

int main(void)
{
    struct holder *holder = malloc(sizeof *holder);
    if (!holder)
        return 1;
    struct node *a = make(1), *b = make(2), *c = make(3);
    holder->slot = a; /* MARK: slot-1 */
    holder->slot = b; /* MARK: slot-2 */
    holder->slot = c; /* MARK: slot-3 */
    global_slot = c;  /* MARK: global */
    struct node *volatile on_stack = c;
    checkpoint_here(); /* MARK: after-slots */

    struct registry *r = malloc(sizeof *r);
    struct registry *r2 = malloc(sizeof *r2);
    if (!r || !r2)
        return 1;
    r->id = 7;
    r2->id = 8;
    struct node *list = build_list(3);
    remember(r, list);
    struct node *ring = build_ring();
    remember_ring(r2, ring);

    printf("holder %p slot %p global %p stack %p c %p\n", (void *)holder,
           (void *)&holder->slot, (void *)&global_slot, (void *)&on_stack, (void *)c);
    printf("list %p %p %p\n", (void *)list, (void *)list->next, (void *)list->next->next);
    printf("ring %p %p %p\n", (void *)ring, (void *)ring->next, (void *)ring->next->next);
    printf("registry %p %p\n", (void *)r, (void *)r2);
    list = NULL;
    ring = NULL;
    free(r);
    free(r2);
    checkpoint_here(); /* MARK: end */
    return a == b;
}
