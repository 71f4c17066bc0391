// A hostile guest that nests directories deeper than PATH_MAX allows any one
// path to say: it builds chains of LEVELS single-letter directories, then
// moves the growing chain into the deepest directory of a fresh one by
// rename. Every path it names stays well under PATH_MAX, yet the final tree
// is LEVELS * CHAINS levels deep.
//
// usage: depth_chain LEVELS CHAINS
// Leaves /g (the chain, with /g/a/.../a/bottom.txt at the very bottom and
// /g/a/.../a/mid.txt LEVELS levels down) and prints "depth N".
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char path[8192];

static void die(const char *what, const char *p) {
  fprintf(stderr, "%s %.60s...: %s\n", what, p, strerror(errno));
  exit(1);
}

/* Builds ROOT/a/a/.../a (levels deep); leaves its deepest path in `path`. */
static void chain(const char *root, int levels) {
  snprintf(path, sizeof path, "%s", root);
  if (mkdir(path, 0755) != 0) die("mkdir", path);
  for (int i = 0; i < levels; i++) {
    strcat(path, "/a");
    if (mkdir(path, 0755) != 0) die("mkdir", path);
  }
}

static void put(const char *dir, const char *name, const char *text) {
  char p[8192];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f) die("fopen", p);
  fputs(text, f);
  fclose(f);
}

int main(int argc, char **argv) {
  int levels = argc > 1 ? atoi(argv[1]) : 500;
  int chains = argc > 2 ? atoi(argv[2]) : 5;
  chain("g", levels);
  put(path, "bottom.txt", "the bottom\n");
  int depth = levels + 1;
  for (int k = 1; k < chains; k++) {
    chain("t", levels);
    // The new chain's deepest dir takes the old chain: rename(2) of two short paths.
    strcat(path, "/g");
    if (rename("g", path) != 0) die("rename", path);
    if (rename("t", "g") != 0) die("rename", "t");
    depth += levels + 1;
  }
  // A file LEVELS levels down, where a path a user types still reaches.
  snprintf(path, sizeof path, "g");
  for (int i = 0; i < levels; i++) strcat(path, "/a");
  put(path, "mid.txt", "the middle\n");
  printf("depth %d\n", depth);
  return 0;
}
