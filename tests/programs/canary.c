/* Uses the stack protector (built with -fstack-protector-all) and prints the canary and
 * the AT_RANDOM bytes it is derived from. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

static uint64_t stack_guard(void)
{
    uint64_t guard;
    __asm__ volatile("movq %%fs:0x28, %0" : "=r"(guard));
    return guard;
}

static unsigned checksum(const char *text)
{
    char buf[64]; /* a protected frame */
    unsigned sum = 0;

    strncpy(buf, text, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    for (size_t i = 0; buf[i]; i++)
        sum = sum * 31 + (unsigned char)buf[i];
    return sum;
}

int main(void)
{
    const unsigned char *at_random = (const unsigned char *)getauxval(AT_RANDOM);

    printf("canary    %016llx\n", (unsigned long long)stack_guard());
    printf("at_random ");
    for (int i = 0; i < 16; i++)
        printf("%02x", at_random[i]);
    printf("\nchecksum  %u\n", checksum("the canary guards this frame"));
    return 0;
}
