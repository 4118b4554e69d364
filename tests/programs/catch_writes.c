/* Three writes to stdout from three functions, with other syscalls between them
   (uname and umask are traced even with the syscall buffer; getppid is buffered),
   for gdb's catch syscall forwards and backwards (tests/test_gdb_catch.py). */
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void say(const char *text) {
    write(1, text, strlen(text)); /* L:write */
}

void first_line(void) { say("first line\n"); }

void second_line(void) { say("second line\n"); }

__attribute__((noinline)) void third_line(void) {
    say("third line\n"); /* L:third */
}

int main(void) {
    struct utsname names;
    first_line();
    uname(&names);
    umask(022);
    second_line();
    getppid();
    uname(&names);
    third_line();
    return 0; /* L:return */
}
