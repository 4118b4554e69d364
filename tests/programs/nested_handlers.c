/* A SIGALRM handler that runs longer than its timer's period: with SA_NODEFER every tick
   nests another signal frame until the stack overflows and the process dies by SIGSEGV
   (natively too). The stack is small so that this comes after a few dozen frames:
   "rlimit" nests on the main stack under a 128 KiB RLIMIT_STACK, "altstack" on a 64 KiB
   alternate stack (SA_ONSTACK), where the kernel finds no room for the last frame and
   forces the SIGSEGV itself. Each SIGALRM handler prints its depth, then executes ud2,
   whose SIGILL handler (a fault's frame) prints too and computes until the next tick.
   Both print a checksum of their frame's register state (the XSAVE area, whose
   unwritten bytes hold whatever the stack held there before). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile unsigned long depth;
static volatile unsigned long spin;

/* FNV-1a over the XSAVE area; its size is in the kernel's software bytes (offset 464:
   magic1, extended size, xfeatures, size). */
static uint32_t xsave_checksum(const ucontext_t *uc) {
  const uint8_t *area = (const uint8_t *)uc->uc_mcontext.fpregs;
  uint32_t size = *(const uint32_t *)(area + 464 + 16);
  uint32_t hash = 2166136261u;
  for (uint32_t i = 0; i < size; i++)
    hash = (hash ^ area[i]) * 16777619u;
  return hash;
}

static void say(const char *what, unsigned long level, void *context) {
  char line[64];
  int n = snprintf(line, sizeof line, "%s %lu frame %08x\n", what, level,
                   xsave_checksum(context));
  write(1, line, n);
}

static void on_alarm(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)info;
  say("depth", ++depth, context);
  __builtin_trap();
}

static void on_trap(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)info;
  say("trap", depth, context);
  for (;;)
    spin++;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "rlimit";
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  if (strcmp(mode, "altstack") == 0) {
    stack_t stack = {.ss_sp = malloc(64 * 1024), .ss_size = 64 * 1024};
    sigaltstack(&stack, NULL);
    sa.sa_flags |= SA_ONSTACK;
  } else {
    struct rlimit limit = {128 * 1024, RLIM_INFINITY};
    setrlimit(RLIMIT_STACK, &limit);
  }
  sa.sa_sigaction = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  sa.sa_sigaction = on_trap;
  sigaction(SIGILL, &sa, NULL);
  struct itimerval timer = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_REAL, &timer, NULL);
  for (;;)
    spin++;
}
