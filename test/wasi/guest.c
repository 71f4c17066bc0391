// A small multi-purpose guest for the runtime tests: `guest ACTION [ARGS...]`.
//   write PATH TEXT   writes TEXT to PATH (creating parent directories is not attempted)
//   cat PATH          prints the file
//   env NAME...       prints NAME=value (or NAME unset) for each name
//   loop              never returns
//   trap              executes an unreachable instruction
//   exit CODE         exits with CODE
//   stdin             copies stdin to stdout
//   keep PATH TEXT    writes TEXT to PATH, fsyncs it, then never returns
//   lose PATH TEXT    writes TEXT to PATH without fsync, then never returns
//   alloc MIB         allocates and touches MIB MiB one at a time; when malloc
//                     fails, prints how many it got and exits 3
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *a = argv[1];
  if (!strcmp(a, "write") && argc == 4) {
    FILE *f = fopen(argv[2], "w");
    if (!f) { printf("write %s: errno %d\n", argv[2], errno); return 1; }
    fputs(argv[3], f);
    fclose(f);
    printf("wrote %s\n", argv[2]);
    return 0;
  }
  if (!strcmp(a, "cat") && argc == 3) {
    FILE *f = fopen(argv[2], "r");
    if (!f) { printf("cat %s: errno %d\n", argv[2], errno); return 1; }
    int c;
    while ((c = fgetc(f)) != EOF) putchar(c);
    fclose(f);
    return 0;
  }
  if (!strcmp(a, "env")) {
    for (int i = 2; i < argc; i++) {
      const char *v = getenv(argv[i]);
      if (v) printf("%s=%s\n", argv[i], v); else printf("%s unset\n", argv[i]);
    }
    return 0;
  }
  if ((!strcmp(a, "keep") || !strcmp(a, "lose")) && argc == 4) {
    FILE *f = fopen(argv[2], "w");
    if (!f) return 1;
    fputs(argv[3], f);
    fflush(f);
    if (!strcmp(a, "keep") && fsync(fileno(f)) != 0) { printf("fsync: errno %d\n", errno); return 1; }
    printf("written\n");
    fflush(stdout);
    volatile unsigned long n = 0;
    for (;;) n++;
  }
  if (!strcmp(a, "loop")) { volatile unsigned long n = 0; for (;;) n++; }
  if (!strcmp(a, "trap")) __builtin_trap();
  if (!strcmp(a, "exit") && argc == 3) return atoi(argv[2]);
  if (!strcmp(a, "alloc") && argc == 3) {
    long want = atol(argv[2]), got = 0;
    static char *volatile keep[4096];
    for (; got < want && got < 4096; got++) {
      char *p = malloc(1 << 20);
      if (!p) { printf("malloc failed after %ld MiB\n", got); return 3; }
      memset(p, 1, 1 << 20);
      keep[got] = p;
    }
    printf("allocated %ld MiB\n", got);
    return 0;
  }
  if (!strcmp(a, "stdin")) {
    int c;
    while ((c = getchar()) != EOF) putchar(c);
    return 0;
  }
  return 2;
}
