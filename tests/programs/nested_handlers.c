/* A SIGALRM handler that runs longer than its timer's period: with SA_NODEFER every tick
   nests another signal frame until the stack overflows and the process dies by SIGSEGV
   (natively too). The stack is small so that this comes after a few dozen frames:
   "rlimit" nests on the main stack under a 128 KiB RLIMIT_STACK, "altstack" on a 64 KiB
   alternate stack (SA_ONSTACK), where the kernel finds no room for the last frame and
   forces the SIGSEGV itself. Each handler prints its depth and a checksum of its frame's
   register state (the XSAVE area, whose unwritten bytes hold whatever the stack held
   there before), then computes forever. */
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

static void handler(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)info;
  char line[64];
  unsigned long level = ++depth;
  int n = snprintf(line, sizeof line, "depth %lu frame %08x\n", level,
                   xsave_checksum(context));
  write(1, line, n);
  for (;;)
    spin++;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "rlimit";
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  if (strcmp(mode, "altstack") == 0) {
    stack_t stack = {.ss_sp = malloc(64 * 1024), .ss_size = 64 * 1024};
    sigaltstack(&stack, NULL);
    sa.sa_flags |= SA_ONSTACK;
  } else {
    struct rlimit limit = {128 * 1024, RLIM_INFINITY};
    setrlimit(RLIMIT_STACK, &limit);
  }
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval timer = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_REAL, &timer, NULL);
  for (;;)
    spin++;
}
