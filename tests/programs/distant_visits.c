/* A loop whose one long instruction (at the global label window, a 10-byte movabs) comes
 * round only every ~0.2 s, after a counting loop without syscalls: the recorder's probe
 * (record/preemption.py), started there, does not see it again within PROBE_TIMEOUT and
 * must stop the thread with its own SIGSTOP and settle it where it stands. */
int main(void)
{
    for (;;) {
        __asm__ volatile(".globl window\n"
                         "window: movabs $0x1122334455667788, %%rax" ::: "rax");
        for (volatile unsigned long i = 0; i < 100000000UL; i++)
            ;
    }
}
