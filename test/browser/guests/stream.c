// A guest for the browser journal tests: writes without fsync, so what it
// writes past the box's cache must spill to the journal.
//
//   stream PATH MIB   write MIB MiB to PATH in 1 MiB steps (one generator,
//                     as test/durability/guests/sync.c), no fsync; prints
//                     "written: N" and exits 0, or "failed: write: errno E"
//                     and exits 3
// Build: clang --target=wasm32-wasi -O2 -o build/stream.wasm stream.c
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned int x = 12345;
static unsigned char buf[1 << 20];

int main(int argc, char **argv) {
  if (argc != 3) { printf("usage: stream PATH MIB\n"); return 2; }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { printf("failed: open: errno %d\n", errno); return 3; }
  unsigned long mib = strtoul(argv[2], 0, 10);
  unsigned long long written = 0;
  for (unsigned long m = 0; m < mib; m++) {
    for (size_t i = 0; i < sizeof buf; i++) { x = x * 1103515245u + 12345u; buf[i] = (unsigned char)(x >> 16); }
    for (size_t done = 0; done < sizeof buf;) {
      ssize_t w = write(fd, buf + done, sizeof buf - done);
      if (w <= 0) { printf("failed: write: errno %d\n", errno); return 3; }
      done += (size_t)w;
      written += (unsigned long long)w;
    }
  }
  printf("written: %llu\n", written);
  return 0;
}
