/*
 * dirs.c: directory creation and removal.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/dirs, which is cleared first. Prints one line per
 * check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: mkdir, nested mkdir, files in nested dirs, rmdir of empty and
 * non-empty (ENOTEMPTY) dirs, rmdir of a missing dir (ENOENT) and of a file
 * (ENOTDIR), opendir on a file (ENOTDIR), mkdir below a file (ENOTDIR),
 * mkdir of an existing dir (EEXIST), trailing slashes on directory paths,
 * and "." / ".." components inside paths.
 */
#include "common.h"

/* Names in a directory, excluding . and .., sorted, space-separated. */
static void list_names(const char *dir, char *out, size_t cap) {
  char names[64][64];
  int n = 0;
  out[0] = '\0';
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(out, cap, "<opendir %s>", errname(errno));
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < 64) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(names[n++], 64, "%s", de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
  for (int i = 0; i < n; i++) {
    if (i) strncat(out, " ", cap - strlen(out) - 1);
    strncat(out, names[i], cap - strlen(out) - 1);
  }
}

int main(int argc, char **argv) {
  setup(argc, argv, "dirs");
  struct stat st;
  char buf[512];

  check_ok("mkdir", mkdir(P("a"), 0755));
  check("mkdir makes a directory", stat(P("a"), &st) == 0 && S_ISDIR(st.st_mode), "not a dir");
  check_err("mkdir existing", mkdir(P("a"), 0755), EEXIST);

  check_ok("mkdir nested a/b", mkdir(P("a/b"), 0755));
  check_ok("mkdir nested a/b/c", mkdir(P("a/b/c"), 0755));
  check_err("mkdir with missing parent", mkdir(P("x/y"), 0755), ENOENT);
  check("create file in a/b/c", write_file(P("a/b/c/f.txt"), "deep", 4) == 0, errname(errno));
  ssize_t r = read_file(P("a/b/c/f.txt"), buf, sizeof buf);
  check("read file in a/b/c", r == 4 && !strcmp(buf, "deep"), "content differs");

  /* Paths with "." and ".." components that stay inside the sandbox. */
  r = read_file(P("a/./b/../b/c/./f.txt"), buf, sizeof buf);
  check("path with . and .. components", r == 4 && !strcmp(buf, "deep"), errname(errno));

  list_names(P("a"), buf, sizeof buf);
  observe("names in a", "%s", buf);
  list_names(P("a/b/c"), buf, sizeof buf);
  observe("names in a/b/c", "%s", buf);

  check_err("rmdir non-empty", rmdir(P("a")), ENOTEMPTY);
  check_err("rmdir non-empty (file inside)", rmdir(P("a/b/c")), ENOTEMPTY);
  check_err("rmdir a file", rmdir(P("a/b/c/f.txt")), ENOTDIR);
  check_err("rmdir missing", rmdir(P("nope")), ENOENT);
  check_err("opendir on a file", opendir(P("a/b/c/f.txt")) ? 0 : -1, ENOTDIR);
  check_err("opendir missing", opendir(P("nope")) ? 0 : -1, ENOENT);
  check_err("mkdir below a file", mkdir(P("a/b/c/f.txt/d"), 0755), ENOTDIR);
  check_err("open O_DIRECTORY on a file", open(P("a/b/c/f.txt"), O_RDONLY | O_DIRECTORY), ENOTDIR);
  int fd = open(P("a/b"), O_RDONLY | O_DIRECTORY);
  check_ok("open O_DIRECTORY on a dir", fd);
  if (fd >= 0) {
    check("fstat on dir fd is a dir", fstat(fd, &st) == 0 && S_ISDIR(st.st_mode), "not a dir");
    close(fd);
  }

  check_ok("unlink file in a/b/c", unlink(P("a/b/c/f.txt")));
  check_ok("rmdir a/b/c (now empty)", rmdir(P("a/b/c")));
  check_err("stat removed dir", stat(P("a/b/c"), &st), ENOENT);
  check_ok("rmdir a/b", rmdir(P("a/b")));
  check_ok("rmdir a", rmdir(P("a")));
  list_names(P(""), buf, sizeof buf);
  check("scratch dir empty again", buf[0] == '\0', buf);

  /* Trailing slashes name directories. */
  check_ok("mkdir with trailing slash", mkdir(P("t/"), 0755));
  check("stat with trailing slash", stat(P("t/"), &st) == 0 && S_ISDIR(st.st_mode), errname(errno));
  check_ok("rmdir with trailing slash", rmdir(P("t/")));

  /* Many directories in one parent. */
  int made = 0;
  for (int i = 0; i < 20; i++) {
    snprintf(buf, sizeof buf, "m%02d", i);
    if (mkdir(P(buf), 0755) == 0) made++;
  }
  list_names(P(""), buf, sizeof buf);
  check("20 sibling dirs", made == 20, "mkdir failed");
  observe("sibling names", "%s", buf);

  /* A directory removed while open: opendir on its old path fails. */
  mkdir(P("gone"), 0755);
  DIR *d = opendir(P("gone"));
  check_ok("rmdir while open", rmdir(P("gone")));
  if (d) closedir(d);
  check_err("opendir removed", opendir(P("gone")) ? 0 : -1, ENOENT);

  return finish();
}
