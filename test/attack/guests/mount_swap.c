/*
 * Swapper of the mount race (test/attack/mount-race.test.ts): swaps DIR/x
 * between a directory and a symlink DIR/xl -> TARGET (a relative path that
 * climbs out of the mount), one rename at a time, until every attacker has
 * left DIR/done-<id> (ids 1..N) or a fixed number of rounds has passed.
 * Signals it is swapping by creating DIR/started.
 *
 *   mount_swap DIR TARGET N
 * Prints the rounds done and, per errno, the failures it saw.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUNDS 20000000L

static long fails[256];

static void step(int rc) {
  if (rc == 0) return;
  fails[errno > 0 && errno < 256 ? errno : 0]++;
}

static int all_done(const char *dir, int n) {
  char p[512];
  for (int i = 1; i <= n; i++) {
    snprintf(p, sizeof p, "%s/done-%d", dir, i);
    if (access(p, F_OK) != 0) return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const char *dir = argv[1];
  int n = atoi(argv[3]);
  char x[512], xd[512], xl[512], started[512];
  snprintf(x, sizeof x, "%s/x", dir);
  snprintf(xd, sizeof xd, "%s/xd", dir);
  snprintf(xl, sizeof xl, "%s/xl", dir);
  snprintf(started, sizeof started, "%s/started", dir);
  if (symlink(argv[2], xl) != 0) {
    printf("symlink %s: errno %d\n", argv[2], errno);
    return 1;
  }
  int fd = open(started, O_CREAT | O_WRONLY, 0644);
  if (fd < 0) return 1;
  close(fd);
  long r;
  for (r = 0; r < ROUNDS; r++) {
    step(rename(x, xd));  /* the directory away */
    step(rename(xl, x));  /* the symlink in its place */
    if (all_done(dir, n)) break;  /* (and x stays a symlink for a while) */
    step(rename(x, xl));
    step(rename(xd, x));  /* the directory back */
  }
  /* Leave the mount as it began: x a directory. */
  if (access(xd, F_OK) == 0) {
    rename(x, xl);
    rename(xd, x);
  }
  unlink(xl);
  printf("rounds %ld\n", r);
  for (int e = 0; e < 256; e++)
    if (fails[e]) printf("errno %d: %ld\n", e, fails[e]);
  return 0;
}
