/* A loop whose first window (the global label window: a 5-byte store) is where the status
 * flags are live: the jne after it reads the add's ZF. Its other window, a 5-byte load,
 * is where they are dead: the add sets them before anything reads them. (The jmp after
 * the jne, never run, makes both ways of the jne come back to the loop.) */
int main(void)
{
    __asm__ volatile("sub $16, %%rsp\n"
                     "mov $1, %%eax\n"
                     "1: mov 8(%%rsp), %%rcx\n"
                     "add $1, %%rax\n"
                     ".globl window\n"
                     "window: mov %%rax, 8(%%rsp)\n"
                     "jne 1b\n"
                     "jmp 1b\n" ::: "rax", "rcx", "cc", "memory");
    return 0;
}
