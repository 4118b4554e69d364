/* The loop gcc -O2 makes of `volatile unsigned long n = 0; for (;;) n++;`: a load, an add,
 * a store (at the global label window, 5 bytes: a window alone) and a jump back. Its
 * registers are those of no other turn (rax is the count), its count is a stack word,
 * and the flags at the window are set by the add before anything reads them. */
int main(void)
{
    __asm__ volatile("sub $16, %%rsp\n"
                     "movq $0, 8(%%rsp)\n"
                     "1: mov 8(%%rsp), %%rax\n"
                     "add $1, %%rax\n"
                     ".globl window\n"
                     "window: mov %%rax, 8(%%rsp)\n"
                     "jmp 1b\n" ::: "rax", "cc", "memory");
    return 0;
}
