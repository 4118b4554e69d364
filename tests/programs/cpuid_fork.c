/* cpuid in a forked child that does not exec (faulting is inherited), in a forked child
 * that execs argv[1] (the cpuid program: faulting is set again after the exec), and in
 * the parent after both. Each prints "cpuid LEAF SUBLEAF: EAX EBX ECX EDX". */
#include <cpuid.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void ask(const char *who, unsigned int leaf)
{
    unsigned int a, b, c, d;
    __cpuid_count(leaf, 0, a, b, c, d);
    printf("%s cpuid %x 0: %08x %08x %08x %08x\n", who, leaf, a, b, c, d);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        ask("child", 1);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    child = fork();
    if (child == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);
    ask("parent", 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
