/*
 * exit.c: process exit and traps.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox), as for
 * every program, and is not touched. argv[2] selects the ending:
 *   (absent)    print a line, return 0 from main
 *   N           print a line, exit(N)   (proc_exit with N; 0..255)
 *   return:N    print a line, return N from main
 *   _exit:N     print a line (flushed), _Exit(N): no atexit handlers
 *   trap        print a line (flushed), execute __builtin_trap() (unreachable)
 * The line printed before exit(N) and return comes from an atexit handler
 * and from buffered stdout, so the runner must flush guest output on exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void bye(void) { printf("atexit handler ran\n"); }

int main(int argc, char **argv) {
  /* Fully buffered on purpose: exit() must flush it. */
  static char buf[4096];
  setvbuf(stdout, buf, _IOFBF, sizeof buf);
  atexit(bye);
  const char *mode = argc >= 3 ? argv[2] : "";
  if (!strcmp(mode, "trap")) {
    printf("about to trap\n");
    fflush(stdout);
    __builtin_trap();
  }
  if (!strncmp(mode, "return:", 7)) {
    int code = atoi(mode + 7);
    printf("returning %d from main\n", code);
    return code;
  }
  if (!strncmp(mode, "_exit:", 6)) {
    int code = atoi(mode + 6);
    printf("calling _Exit(%d)\n", code);
    fflush(stdout);
    _Exit(code);
  }
  if (mode[0]) {
    int code = atoi(mode);
    printf("calling exit(%d)\n", code);
    exit(code);
  }
  printf("returning 0 from main\n");
  return 0;
}
