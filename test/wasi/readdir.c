/*
 * readdir.c: directory listing.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/readdir, which is cleared first. Prints one line
 * per check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: a directory of 50 files (each seen exactly once, sorted names
 * printed without . and ..), whether . and .. are listed (observation: a
 * preview1 host may omit them), d_type against the entry's real type, d_ino
 * against lstat's st_ino, rewinddir, telldir/seekdir, a
 * directory of 50 long names (over 4 KiB of dirents, so wasi-libc needs
 * several fd_readdir calls and resumes from cookies), and an empty dir.
 */
#include "common.h"

#define N 50

static int cmpstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a whole directory; names excluding . and .. go to names[] (strdup'd).
 * Sets *dot / *dotdot when those appear. Returns the count or -1. */
static int read_all(DIR *d, char **names, int cap, int *dot, int *dotdot) {
  int n = 0;
  struct dirent *de;
  *dot = *dotdot = 0;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".")) {
      (*dot)++;
      continue;
    }
    if (!strcmp(de->d_name, "..")) {
      (*dotdot)++;
      continue;
    }
    if (n < cap) names[n] = strdup(de->d_name);
    n++;
  }
  return errno ? -1 : n;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n && i < 4 * N; i++) free(names[i]);
}

/* 1 if names[0..n) are exactly the expected set (sorts names in place). */
static int same_set(char **names, int n, const char *fmt, int count) {
  if (n != count) return 0;
  qsort(names, (size_t)n, sizeof *names, cmpstr);
  char want[300];
  char **exp = malloc(sizeof(char *) * (size_t)count);
  for (int i = 0; i < count; i++) {
    snprintf(want, sizeof want, fmt, i);
    exp[i] = strdup(want);
  }
  qsort(exp, (size_t)count, sizeof *exp, cmpstr);
  int ok = 1;
  for (int i = 0; i < count; i++) {
    if (strcmp(exp[i], names[i])) ok = 0;
    free(exp[i]);
  }
  free(exp);
  return ok;
}

#define LONGFMT \
  "long-entry-name-%02d-aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeee" \
  "ffffffffffgggggggggghhhhhhhhhhiiiiiiiiiijjjjjjjjjjkkkkkkkkkk"

int main(int argc, char **argv) {
  setup(argc, argv, "readdir");
  char name[300];
  char *names[4 * N];
  int dot, dotdot, n;
  struct stat st;

  /* 50 files, created in a scrambled order, plus one subdir and one symlink. */
  mkdir(P("d"), 0755);
  int created = 0;
  for (int k = 0; k < N; k++) {
    int i = (k * 17) % N;
    snprintf(name, sizeof name, "d/f%02d", i);
    if (write_file(P(name), "x", 1) == 0) created++;
  }
  check("create 50 files", created == N, "create failed");

  DIR *d = opendir(P("d"));
  check_ok("opendir", d ? 0 : -1);
  if (!d) return finish();
  n = read_all(d, names, 4 * N, &dot, &dotdot);
  check("readdir count (without . and ..)", n == N, "wrong count");
  check("each file seen exactly once", same_set(names, n, "f%02d", N), "set differs");
  printf("readdir names:");
  for (int i = 0; i < n && i < 4 * N; i++) printf(" %s", names[i]);
  printf("\n");
  free_names(names, n);
  observe("lists . and ..", "%s", dot == 1 && dotdot == 1 ? "yes" : dot || dotdot ? "partly" : "no");
  check(". and .. at most once", dot <= 1 && dotdot <= 1, "duplicated");

  /* rewinddir gives the same listing again. */
  rewinddir(d);
  int dot2, dotdot2;
  n = read_all(d, names, 4 * N, &dot2, &dotdot2);
  check("rewinddir relists all", same_set(names, n, "f%02d", N) && dot2 == dot && dotdot2 == dotdot,
        "second listing differs");
  free_names(names, n);

  /* telldir/seekdir: remember the position before the 10th entry. */
  rewinddir(d);
  struct dirent *de;
  for (int i = 0; i < 9; i++) readdir(d);
  long pos = telldir(d);
  de = readdir(d);
  char tenth[300];
  snprintf(tenth, sizeof tenth, "%s", de ? de->d_name : "<end>");
  for (int i = 0; i < 20; i++) readdir(d);
  seekdir(d, pos);
  de = readdir(d);
  check("seekdir returns to telldir position", de && !strcmp(de->d_name, tenth), "different entry");
  /* Remaining entries after the seek: total minus the 9 skipped. */
  int rest = de ? 1 : 0;
  while (readdir(d)) rest++;
  check("entries after seekdir", rest == N + dot + dotdot - 9, "wrong count");
  closedir(d);

  /* d_type and d_ino against lstat, in a dir with a file, a dir, a symlink. */
  mkdir(P("m"), 0755);
  write_file(P("m/file"), "x", 1);
  mkdir(P("m/dir"), 0755);
  symlink("file", P("m/link"));
  d = opendir(P("m"));
  int types_ok = 1, ino_eq = 1, ino_zero = 1, seen = 0;
  char typeinfo[200] = "";
  while (d && (de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(name, sizeof name, "m/%s", de->d_name);
    if (lstat(P(name), &st) != 0) {
      types_ok = 0;
      continue;
    }
    seen++;
    int want = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : S_ISREG(st.st_mode) ? DT_REG : -1;
    if (de->d_type != want) {
      types_ok = 0;
      snprintf(typeinfo + strlen(typeinfo), sizeof typeinfo - strlen(typeinfo), " %s=%d", de->d_name,
               de->d_type);
    }
    if (de->d_ino != st.st_ino) ino_eq = 0;
    if (de->d_ino != 0) ino_zero = 0;
  }
  if (d) closedir(d);
  check("d_type matches lstat (file, dir, symlink)", seen == 3 && types_ok, typeinfo[0] ? typeinfo : "missing entries");

  /* d_ino vs st_ino for all 50 files. */
  d = opendir(P("d"));
  while (d && (de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(name, sizeof name, "d/%s", de->d_name);
    if (lstat(P(name), &st) != 0 || de->d_ino != st.st_ino) ino_eq = 0;
    if (de->d_ino != 0) ino_zero = 0;
  }
  if (d) closedir(d);
  /* wasi-libc passes the host's d_ino through; it must be the entry's inode. */
  if (ino_eq)
    pass("d_ino equals st_ino");
  else if (ino_zero)
    tolerated("d_ino equals st_ino", "d_ino is always 0");
  else
    fail("d_ino equals st_ino", "mismatch");

  /* 50 long names: more than one 4 KiB fd_readdir buffer. */
  mkdir(P("long"), 0755);
  created = 0;
  for (int i = 0; i < N; i++) {
    char rel[320];
    snprintf(name, sizeof name, LONGFMT, i);
    snprintf(rel, sizeof rel, "long/%s", name);
    if (write_file(P(rel), "", 0) == 0) created++;
  }
  check("create 50 long names", created == N, errname(errno));
  d = opendir(P("long"));
  n = d ? read_all(d, names, 4 * N, &dot, &dotdot) : -1;
  check("long names: each seen exactly once", same_set(names, n, LONGFMT, N), "set differs");
  free_names(names, n);
  if (d) {
    /* seekdir to a position deep in the listing (after a buffer refill). */
    rewinddir(d);
    for (int i = 0; i < 40; i++) readdir(d);
    pos = telldir(d);
    de = readdir(d);
    snprintf(tenth, sizeof tenth, "%s", de ? de->d_name : "<end>");
    rewinddir(d);
    readdir(d);
    seekdir(d, pos);
    de = readdir(d);
    check("long names: seekdir after refill", de && !strcmp(de->d_name, tenth), "different entry");
    closedir(d);
  }

  /* An empty directory lists nothing but (maybe) . and .. */
  mkdir(P("empty"), 0755);
  d = opendir(P("empty"));
  n = d ? read_all(d, names, 4 * N, &dot, &dotdot) : -1;
  check("empty dir lists no names", n == 0, "names listed");
  if (d) closedir(d);

  /* fdopendir on an fd from open(O_DIRECTORY). */
  int fd = open(P("m"), O_RDONLY | O_DIRECTORY);
  d = fd >= 0 ? fdopendir(fd) : NULL;
  n = d ? read_all(d, names, 4 * N, &dot, &dotdot) : -1;
  if (n > 0) qsort(names, (size_t)n, sizeof *names, cmpstr);
  check("fdopendir lists dir, file, link",
        n == 3 && !strcmp(names[0], "dir") && !strcmp(names[1], "file") && !strcmp(names[2], "link"),
        "wrong listing");
  if (n > 0) free_names(names, n);
  if (d) closedir(d);

  return finish();
}
