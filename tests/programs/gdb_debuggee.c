/* The program the gdb end-to-end tests debug (tests/test_gdb_*.py).
 *
 * It has something for every command the tests drive: functions with arguments and
 * locals (square, add_to_counter), a recursive one (factorial), a callback called from
 * libc (compare_ints, through qsort), a global int written several times (counter, for
 * watchpoints), a global struct (origin), a recognisable string on the heap (for `find`),
 * printf calls that make a write syscall each (stdout is unbuffered) and a raw write(2).
 * It exits with status 42. "L:name" comments mark the lines the tests look up by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct point {
    int x;
    int y;
    const char *name;
};

int counter = 0;
struct point origin = {3, 4, "origin"};
char *heap_marker;

__attribute__((noinline)) int square(int n)
{
    int result = n * n; /* L:square-body */
    return result;      /* L:square-return */
}

__attribute__((noinline)) int add_to_counter(int delta)
{
    counter += delta; /* L:counter-store */
    return counter;
}

__attribute__((noinline)) int factorial(int n)
{
    if (n <= 1)                      /* L:factorial-test */
        return 1;                    /* L:factorial-base */
    return n * factorial(n - 1);     /* L:factorial-recurse */
}

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a; /* L:compare */
    int y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    int values[5] = {5, 3, 9, 1, 7};
    int total = 0;
    int i;

    setvbuf(stdout, NULL, _IONBF, 0);
    heap_marker = malloc(64);
    if (!heap_marker)
        return 1;
    strcpy(heap_marker, "NEEDLE-in-the-heap");
    for (i = 1; i <= 4; i++) {
        total += square(i); /* L:loop-call */
        add_to_counter(i);  /* L:loop-add */
    }
    printf("total %d counter %d\n", total, counter); /* L:printf-total */
    origin.x = total;                                /* L:after-printf */
    qsort(values, 5, sizeof values[0], compare_ints); /* L:qsort */
    printf("sorted %d %d %d %d %d\n", values[0], values[1], values[2], values[3], values[4]); /* L:printf-sorted */
    printf("factorial %d\n", factorial(5)); /* L:printf-factorial */
    write(1, "done\n", 5);                  /* L:write */
    free(heap_marker);
    return 42; /* L:return */
}
