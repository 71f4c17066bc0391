// Guest of the write-path rows of `npm run bench` (bench/writes.mjs). Usage:
//   writes fsync-files DIR N   N one-byte files DIR/f<i>, each written, fsynced and closed
//   writes stream FILE MIB     one file of MIB MiB in 64 KiB writes, no fsync
// Prints "<mode> <count> <bytes>" on success; a failed call prints its errno on
// stderr and exits 1, so a write the runtime refused is never counted.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, const char *path) {
  fprintf(stderr, "%s %s: %s\n", what, path, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: writes fsync-files DIR N | stream FILE MIB\n");
    return 2;
  }
  const char *mode = argv[1], *path = argv[2];
  long n = atol(argv[3]);
  if (n < 0) return 2;
  if (!strcmp(mode, "fsync-files")) {
    char name[512];
    for (long i = 0; i < n; i++) {
      snprintf(name, sizeof name, "%s/f%ld", path, i);
      int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0) return fail("open", name);
      if (write(fd, "x", 1) != 1) return fail("write", name);
      if (fsync(fd) != 0) return fail("fsync", name);
      if (close(fd) != 0) return fail("close", name);
    }
    printf("fsync-files %ld %ld\n", n, n);
    return 0;
  }
  if (!strcmp(mode, "stream")) {
    static char buf[65536];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 131 + 7);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return fail("open", path);
    long long total = 0;
    long writes = n * 16;
    for (long i = 0; i < writes; i++) {
      // A different first byte per write: no two 64 KiB chunks are alike, so nothing dedups.
      buf[0] = (char)i;
      buf[1] = (char)(i >> 8);
      buf[2] = (char)(i >> 16);
      ssize_t w = write(fd, buf, sizeof buf);
      if (w != (ssize_t)sizeof buf) return fail("write", path);
      total += w;
    }
    if (close(fd) != 0) return fail("close", path);
    printf("stream %ld %lld\n", writes, total);
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
