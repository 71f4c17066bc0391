// Guests for the durability tests. Every byte written is from one generator
// (seeded by argv), so a test can rebuild exactly what a guest wrote.
//
//   sync fill PATH STEP MAX   append STEP bytes and fsync, until a write or
//                             fsync fails or MAX bytes are synced; prints
//                             "failed: CALL: ERRNAME (strerror)" and
//                             "synced: N", exits 3 on a failure (4 if none)
//   sync write PATH SIZE      write SIZE bytes, fsync; prints "fsync: ok" or
//                             "failed: fsync: ERRNAME (strerror)"; exits 0 or 3
//   sync hold PATH SIZE LOST  write PATH (SIZE bytes), fsync, then write LOST
//                             (no fsync), print "synced" and block forever
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned int x = 12345;
static void gen(unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++) { x = x * 1103515245u + 12345u; b[i] = (unsigned char)(x >> 16); }
}

static const char *errname(int e) {
  switch (e) {
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    default: return "OTHER";
  }
}

static void say(const char *s) {
  size_t n = strlen(s);
  while (n) { ssize_t w = write(1, s, n); if (w <= 0) return; s += w; n -= (size_t)w; }
}

static void report(const char *call, int e) {
  char line[200];
  snprintf(line, sizeof line, "failed: %s: %s (%s)\n", call, errname(e), strerror(e));
  say(line);
}

/** Writes all of b, or returns the errno of the failing write (0 when done). */
static int write_all(int fd, const unsigned char *b, size_t n) {
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0) return errno;
    if (w == 0) return EIO;
    b += w; n -= (size_t)w;
  }
  return 0;
}

static int fill(const char *path, size_t step, size_t max) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { report("open", errno); return 3; }
  unsigned char *buf = malloc(step);
  if (!buf) return 2;
  size_t synced = 0;
  char line[100];
  while (synced < max) {
    gen(buf, step);
    int e = write_all(fd, buf, step);
    if (e) { report("write", e); snprintf(line, sizeof line, "synced: %zu\n", synced); say(line); return 3; }
    if (fsync(fd) != 0) { report("fsync", errno); snprintf(line, sizeof line, "synced: %zu\n", synced); say(line); return 3; }
    synced += step;
  }
  snprintf(line, sizeof line, "never failed; synced: %zu\n", synced);
  say(line);
  return 4;
}

static int write_sync(const char *path, size_t size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { report("open", errno); return 3; }
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) return 2;
  gen(buf, size);
  int e = write_all(fd, buf, size);
  if (e) { report("write", e); return 3; }
  if (fsync(fd) != 0) { report("fsync", errno); return 3; }
  say("fsync: ok\n");
  if (close(fd) != 0) { report("close", errno); return 3; }
  return 0;
}

static int hold(const char *path, size_t size, const char *lost) {
  if (write_sync(path, size) != 0) return 3;
  int fd = open(lost, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { report("open", errno); return 3; }
  unsigned char buf[4096];
  gen(buf, sizeof buf);
  if (write_all(fd, buf, sizeof buf)) { report("write", errno); return 3; }
  say("synced\n");
  // Wait for stdin that never comes; where stdin is empty, spin instead.
  char c;
  while (read(0, &c, 1) > 0) {}
  for (volatile unsigned long i = 0;; i++) {}
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "fill")) return fill(argv[2], strtoul(argv[3], 0, 10), strtoul(argv[4], 0, 10));
  if (argc == 4 && !strcmp(argv[1], "write")) return write_sync(argv[2], strtoul(argv[3], 0, 10));
  if (argc == 5 && !strcmp(argv[1], "hold")) return hold(argv[2], strtoul(argv[3], 0, 10), argv[4]);
  say("usage: sync fill PATH STEP MAX | write PATH SIZE | hold PATH SIZE LOST\n");
  return 2;
}
