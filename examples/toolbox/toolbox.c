/*
 * toolbox: a small multi-call set of file utilities for wasm32-wasi
 * (preview1), in the style of busybox. One program, many commands:
 *
 *   toolbox ls -l /            the command is argv[1] ...
 *   ls -l /                    ... or the base name of argv[0] (".wasm" is
 *                              ignored), for an image that links or copies
 *                              the program under the command's name
 *
 * Commands: cat cp echo find grep head ln ls mkdir mv rm tail touch wc
 * (`toolbox --help` lists them with their flags; README.md has the details).
 *
 * Conventions, as in coreutils: options come before operands (getopt, "--"
 * ends them); an error on one operand is reported and the others are still
 * processed. Errors print "NAME: PATH: strerror" on stderr and the command
 * exits 1; usage errors exit 2. grep is the POSIX exception: 0 = a line
 * matched, 1 = none did, 2 = an error (usage or I/O).
 *
 * Paths are plain POSIX paths; wasi-libc resolves absolute ones against the
 * preopened directories (the runtimes preopen "/") and relative ones against
 * its emulated cwd, which starts at "/".
 *
 * Output is deterministic: directory listings (ls, find, grep -r, cp -r) are
 * sorted by strcmp, whatever order the runtime's readdir gives, and "." and
 * ".." from readdir are ignored (node:wasi does not return them at all).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *g_cmd = "toolbox"; /* the command name used in messages */
static char g_buf[65536];             /* I/O buffer for cat and cp */

/* ---- messages ---------------------------------------------------------- */

/* "NAME: PATH: strerror(errno)" on stderr; returns 1 (the exit status). */
static int fail_path(const char *path) {
  fprintf(stderr, "%s: %s: %s\n", g_cmd, path, strerror(errno));
  return 1;
}

/* Same with an explicit errno. */
static int fail_errno(const char *path, int e) {
  errno = e;
  return fail_path(path);
}

static int usage(const char *text) {
  fprintf(stderr, "usage: %s %s\n", g_cmd, text);
  return 2;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "%s: out of memory\n", g_cmd);
    exit(1);
  }
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fprintf(stderr, "%s: out of memory\n", g_cmd);
    exit(1);
  }
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

/* ---- paths and directories --------------------------------------------- */

/* dir + "/" + name, without doubling a trailing slash. Caller frees. */
static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = xmalloc(a + b + 2);
  memcpy(p, dir, a);
  if (a && dir[a - 1] != '/') p[a++] = '/';
  memcpy(p + a, name, b + 1);
  return p;
}

/* The last component of a path ("a/b/" -> "b", "/" -> "/"), as a new string. */
static char *base_name(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  size_t s = n;
  while (s > 0 && path[s - 1] != '/') s--;
  if (s == n) return xstrdup(n ? "/" : "");
  char *r = xmalloc(n - s + 1);
  memcpy(r, path + s, n - s);
  r[n - s] = '\0';
  return r;
}

/* The lexical parent ("/a/b" -> "/a", "a" -> ".", "/" -> "/"). Caller frees. */
static char *parent_of(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  while (n > 0 && path[n - 1] != '/') n--;
  if (n == 0) return xstrdup(".");
  while (n > 1 && path[n - 1] == '/') n--;
  char *r = xmalloc(n + 1);
  memcpy(r, path, n);
  r[n] = '\0';
  return r;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a directory, without "." and "..". Returns NULL (errno
 * set) when the directory cannot be read; *count gets the number of names. */
static char **read_names(const char *dir, size_t *count) {
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      names = xrealloc(names, cap * sizeof *names);
    }
    names[n++] = xstrdup(de->d_name);
    errno = 0;
  }
  int e = errno;
  closedir(d);
  if (e) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    errno = e;
    return NULL;
  }
  if (n) qsort(names, n, sizeof *names, cmp_str);
  *count = n;
  return names ? names : xmalloc(sizeof *names);
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* open(path, O_RDONLY) for reading data: a directory is refused with EISDIR
 * (runtimes differ: some open it and fail the read with EBADF). */
static int open_read(const char *path) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    errno = EISDIR;
    return -1;
  }
  return fd;
}

/* Writes all of buf; returns 0 or -1. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Reads a whole file ("-" = stdin) into a malloc'd buffer (NUL-terminated).
 * Returns NULL with errno set on failure. */
static char *slurp(const char *path, size_t *len) {
  int fd = strcmp(path, "-") ? open_read(path) : 0;
  if (fd < 0) return NULL;
  size_t n = 0, cap = 4096;
  char *buf = xmalloc(cap);
  for (;;) {
    if (cap - n < 4096) buf = xrealloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      if (fd) close(fd);
      free(buf);
      errno = e;
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (fd) close(fd);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* ---- echo -------------------------------------------------------------- */

static int cmd_echo(int argc, char **argv) {
  int i = 1, nl = 1;
  if (i < argc && !strcmp(argv[i], "-n")) nl = 0, i++;
  for (; i < argc; i++) {
    fputs(argv[i], stdout);
    if (i + 1 < argc) putchar(' ');
  }
  if (nl) putchar('\n');
  return 0;
}

/* ---- cat --------------------------------------------------------------- */

static int cat_fd(int fd, const char *name) {
  fflush(stdout);
  for (;;) {
    ssize_t r = read(fd, g_buf, sizeof g_buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_path(name);
    }
    if (r == 0) return 0;
    if (write_all(1, g_buf, (size_t)r) < 0) return fail_path("stdout");
  }
}

static int cmd_cat(int argc, char **argv) {
  int c, rc = 0;
  while ((c = getopt(argc, argv, "u")) != -1)
    if (c != 'u') return usage("[FILE...]");
  if (optind == argc) return cat_fd(0, "stdin");
  for (int i = optind; i < argc; i++) {
    if (!strcmp(argv[i], "-")) {
      rc |= cat_fd(0, "stdin");
      continue;
    }
    int fd = open_read(argv[i]);
    if (fd < 0) {
      rc = fail_path(argv[i]);
      continue;
    }
    rc |= cat_fd(fd, argv[i]);
    close(fd);
  }
  return rc;
}

/* ---- ls ---------------------------------------------------------------- */

static int ls_all, ls_long, ls_rec;

struct entry {
  char *name;  /* as shown */
  char *path;  /* to stat / readlink */
  struct stat st;
  int ok;      /* lstat succeeded */
};

static char type_char(mode_t m) {
  if (S_ISDIR(m)) return 'd';
  if (S_ISLNK(m)) return 'l';
  if (S_ISCHR(m)) return 'c';
  if (S_ISBLK(m)) return 'b';
  if (S_ISFIFO(m)) return 'p';
  if (S_ISSOCK(m)) return 's';
  return '-';
}

/* "drwxr-xr-x": the type and the permission bits exactly as stat gives them.
 * WASI preview1 has no permission bits, so wasi-libc reports them as 0. */
static void mode_string(mode_t m, char out[11]) {
  static const char rwx[] = "rwxrwxrwx";
  out[0] = type_char(m);
  for (int i = 0; i < 9; i++) out[i + 1] = (m & (0400 >> i)) ? rwx[i] : '-';
  out[10] = '\0';
}

static int ndigits(unsigned long long v) {
  int n = 1;
  while (v >= 10) v /= 10, n++;
  return n;
}

/* Prints entries (one per line); with -l, columns aligned within the group. */
static void ls_print(struct entry *e, size_t n) {
  int wl = 1, ws = 1;
  for (size_t i = 0; ls_long && i < n; i++) {
    if (!e[i].ok) continue;
    int a = ndigits((unsigned long long)e[i].st.st_nlink), b = ndigits((unsigned long long)e[i].st.st_size);
    if (a > wl) wl = a;
    if (b > ws) ws = b;
  }
  for (size_t i = 0; i < n; i++) {
    if (!ls_long || !e[i].ok) {
      printf("%s\n", e[i].name);
      continue;
    }
    char m[11];
    mode_string(e[i].st.st_mode, m);
    printf("%s %*llu %*lld %s", m, wl, (unsigned long long)e[i].st.st_nlink, ws, (long long)e[i].st.st_size, e[i].name);
    if (S_ISLNK(e[i].st.st_mode)) {
      char t[4096];
      ssize_t r = readlink(e[i].path, t, sizeof t - 1);
      if (r >= 0) {
        t[r] = '\0';
        printf(" -> %s", t);
      }
    }
    putchar('\n');
  }
}

static void free_entries(struct entry *e, size_t n) {
  for (size_t i = 0; i < n; i++) free(e[i].name), free(e[i].path);
  free(e);
}

/* Lists one directory; with -R, then its subdirectories. `header`: print
 * "DIR:" first. `*first`: nothing printed yet (no blank line before). */
static int ls_dir(const char *dir, int header, int *first) {
  int rc = 0;
  size_t n;
  char **names = read_names(dir, &n);
  if (!*first) putchar('\n');
  *first = 0;
  if (header) printf("%s:\n", dir);
  if (!names) return fail_path(dir);
  struct entry *e = xmalloc((n + 2) * sizeof *e);
  size_t k = 0;
  if (ls_all) { /* "." and "..", the same on every runtime */
    char *up = parent_of(dir);
    e[k].name = xstrdup(".");
    e[k].path = xstrdup(dir);
    e[k].ok = lstat(dir, &e[k].st) == 0;
    k++;
    e[k].name = xstrdup("..");
    e[k].path = up;
    e[k].ok = stat(up, &e[k].st) == 0;
    k++;
  }
  for (size_t i = 0; i < n; i++) {
    if (!ls_all && names[i][0] == '.') continue;
    e[k].name = xstrdup(names[i]);
    e[k].path = join(dir, names[i]);
    e[k].ok = lstat(e[k].path, &e[k].st) == 0;
    if (!e[k].ok) rc = fail_path(e[k].path);
    k++;
  }
  free_names(names, n);
  ls_print(e, k);
  if (ls_rec)
    for (size_t i = 0; i < k; i++) {
      if (!strcmp(e[i].name, ".") || !strcmp(e[i].name, "..")) continue;
      if (e[i].ok && S_ISDIR(e[i].st.st_mode)) rc |= ls_dir(e[i].path, 1, first);
    }
  free_entries(e, k);
  return rc;
}

static int cmd_ls(int argc, char **argv) {
  int c, rc = 0;
  while ((c = getopt(argc, argv, "laR1")) != -1) {
    if (c == 'l') ls_long = 1;
    else if (c == 'a') ls_all = 1;
    else if (c == 'R') ls_rec = 1;
    else if (c != '1') return usage("[-laR] [PATH...]");
  }
  char *dot[] = {"."};
  char **ops = optind < argc ? argv + optind : dot;
  int nops = optind < argc ? argc - optind : 1;
  /* Operands: files first (as one group), then directories, like ls(1). A
   * symlink operand is followed unless -l. */
  struct entry *files = xmalloc((size_t)nops * sizeof *files);
  char **dirs = xmalloc((size_t)nops * sizeof *dirs);
  size_t nf = 0, nd = 0;
  for (int i = 0; i < nops; i++) {
    struct stat st;
    if (lstat(ops[i], &st) != 0) {
      rc = fail_path(ops[i]);
      continue;
    }
    struct stat tst;
    if (S_ISLNK(st.st_mode) && !ls_long && stat(ops[i], &tst) == 0) st = tst;
    if (S_ISDIR(st.st_mode)) {
      dirs[nd++] = ops[i];
    } else {
      files[nf].name = xstrdup(ops[i]);
      files[nf].path = xstrdup(ops[i]);
      files[nf].st = st;
      files[nf].ok = 1;
      nf++;
    }
  }
  if (nd > 1) qsort(dirs, nd, sizeof *dirs, cmp_str);
  ls_print(files, nf);
  free_entries(files, nf);
  int first = nf == 0;
  int header = ls_rec || nf + nd > 1 || rc;
  for (size_t i = 0; i < nd; i++) rc |= ls_dir(dirs[i], header, &first);
  free(dirs);
  return rc;
}

/* ---- mkdir ------------------------------------------------------------- */

static int mkdir_p(const char *path) {
  if (!*path) return fail_errno(path, ENOENT);
  char *p = xstrdup(path);
  int rc = 0;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char save = *s;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && !(errno == EEXIST && is_dir(p))) {
      if (errno == EEXIST) errno = ENOTDIR;
      rc = fail_path(p);
      break;
    }
    *s = save;
    while (*s == '/') s++;
    if (*s == '\0') break;
  }
  free(p);
  return rc;
}

static int cmd_mkdir(int argc, char **argv) {
  int c, p = 0, rc = 0;
  while ((c = getopt(argc, argv, "p")) != -1)
    if (c == 'p') p = 1;
    else return usage("[-p] DIR...");
  if (optind == argc) return usage("[-p] DIR...");
  for (int i = optind; i < argc; i++) {
    if (p) rc |= mkdir_p(argv[i]);
    else if (mkdir(argv[i], 0777) != 0) rc = fail_path(argv[i]);
  }
  return rc;
}

/* ---- rm ---------------------------------------------------------------- */

/* Removes path; recursive when `rec`. Missing paths are silent when `force`. */
static int remove_path(const char *path, int rec, int force) {
  struct stat st;
  if (lstat(path, &st) != 0) return force && errno == ENOENT ? 0 : fail_path(path);
  if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 || (force && errno == ENOENT) ? 0 : fail_path(path);
  if (!rec) return fail_errno(path, EISDIR);
  size_t n;
  char **names = read_names(path, &n);
  if (!names) return fail_path(path);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char *child = join(path, names[i]);
    rc |= remove_path(child, rec, force);
    free(child);
  }
  free_names(names, n);
  if (rmdir(path) != 0 && !rc) rc = fail_path(path);
  return rc;
}

static int cmd_rm(int argc, char **argv) {
  int c, r = 0, f = 0, rc = 0;
  while ((c = getopt(argc, argv, "rRf")) != -1)
    if (c == 'r' || c == 'R') r = 1;
    else if (c == 'f') f = 1;
    else return usage("[-rf] PATH...");
  if (optind == argc && !f) return usage("[-rf] PATH...");
  for (int i = optind; i < argc; i++) rc |= remove_path(argv[i], r, f);
  return rc;
}

/* ---- cp ---------------------------------------------------------------- */

static int copy_file(const char *src, const char *dst) {
  int in = open_read(src);
  if (in < 0) return fail_path(src);
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (out < 0) {
    close(in);
    return fail_path(dst);
  }
  int rc = 0;
  for (;;) {
    ssize_t r = read(in, g_buf, sizeof g_buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      rc = fail_path(src);
      break;
    }
    if (r == 0) break;
    if (write_all(out, g_buf, (size_t)r) < 0) {
      rc = fail_path(dst);
      break;
    }
  }
  close(in);
  if (close(out) != 0 && !rc) rc = fail_path(dst);
  return rc;
}

/* Copies src to dst. With `rec`, directories are copied recursively and
 * symlinks are copied as symlinks; otherwise symlinks are followed. */
static int copy_path(const char *src, const char *dst, int rec) {
  struct stat st;
  if ((rec ? lstat(src, &st) : stat(src, &st)) != 0) return fail_path(src);
  if (S_ISLNK(st.st_mode)) {
    char t[4096];
    ssize_t r = readlink(src, t, sizeof t - 1);
    if (r < 0) return fail_path(src);
    t[r] = '\0';
    if (unlink(dst) != 0 && errno != ENOENT) return fail_path(dst);
    return symlink(t, dst) == 0 ? 0 : fail_path(dst);
  }
  if (!S_ISDIR(st.st_mode)) return copy_file(src, dst);
  if (!rec) return fail_errno(src, EISDIR);
  /* Refuse to copy a directory into itself (compared lexically). */
  size_t sl = strlen(src);
  while (sl > 1 && src[sl - 1] == '/') sl--;
  if (!strncmp(src, dst, sl) && (dst[sl] == '/' || dst[sl] == '\0') && !(sl == 1 && src[0] == '.')) return fail_errno(dst, EINVAL);
  if (mkdir(dst, 0777) != 0 && !(errno == EEXIST && is_dir(dst))) return fail_path(dst);
  size_t n;
  char **names = read_names(src, &n);
  if (!names) return fail_path(src);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char *s = join(src, names[i]), *d = join(dst, names[i]);
    rc |= copy_path(s, d, rec);
    free(s), free(d);
  }
  free_names(names, n);
  return rc;
}

/* The target for SRC when DEST is an existing directory: DEST/basename(SRC). */
static char *target_in(const char *src, const char *dest, int dest_is_dir) {
  if (!dest_is_dir) return xstrdup(dest);
  char *b = base_name(src);
  char *t = join(dest, b);
  free(b);
  return t;
}

static int cmd_cp(int argc, char **argv) {
  int c, r = 0, rc = 0;
  while ((c = getopt(argc, argv, "rR")) != -1)
    if (c == 'r' || c == 'R') r = 1;
    else return usage("[-r] SRC... DEST");
  if (argc - optind < 2) return usage("[-r] SRC... DEST");
  const char *dest = argv[argc - 1];
  int dd = is_dir(dest);
  if (argc - optind > 2 && !dd) return fail_errno(dest, ENOTDIR);
  for (int i = optind; i < argc - 1; i++) {
    char *t = target_in(argv[i], dest, dd);
    rc |= copy_path(argv[i], t, r);
    free(t);
  }
  return rc;
}

/* ---- mv ---------------------------------------------------------------- */

static int cmd_mv(int argc, char **argv) {
  int c, rc = 0;
  while ((c = getopt(argc, argv, "f")) != -1)
    if (c != 'f') return usage("SRC... DEST");
  if (argc - optind < 2) return usage("SRC... DEST");
  const char *dest = argv[argc - 1];
  int dd = is_dir(dest);
  if (argc - optind > 2 && !dd) return fail_errno(dest, ENOTDIR);
  for (int i = optind; i < argc - 1; i++) {
    char *t = target_in(argv[i], dest, dd);
    if (rename(argv[i], t) != 0) {
      if (errno == EXDEV) { /* another preopen/mount: copy, then remove */
        if (copy_path(argv[i], t, 1) == 0) rc |= remove_path(argv[i], 1, 0);
        else rc = 1;
      } else {
        /* Name the operand that is at fault where that is clear. */
        rc = fail_path(errno == ENOENT && access(argv[i], F_OK) == 0 ? t : argv[i]);
      }
    }
    free(t);
  }
  return rc;
}

/* ---- ln ---------------------------------------------------------------- */

static int cmd_ln(int argc, char **argv) {
  int c, s = 0, f = 0, rc = 0;
  while ((c = getopt(argc, argv, "sf")) != -1)
    if (c == 's') s = 1;
    else if (c == 'f') f = 1;
    else return usage("[-sf] TARGET [LINK] | [-sf] TARGET... DIR");
  int n = argc - optind;
  if (n < 1) return usage("[-sf] TARGET [LINK] | [-sf] TARGET... DIR");
  const char *dest = n == 1 ? "." : argv[argc - 1];
  int dd = n == 1 || is_dir(dest);
  if (n > 2 && !dd) return fail_errno(dest, ENOTDIR);
  int last = n == 1 ? argc : argc - 1;
  for (int i = optind; i < last; i++) {
    char *t = target_in(argv[i], dest, dd);
    if (f && unlink(t) != 0 && errno != ENOENT) rc = fail_path(t);
    else if ((s ? symlink(argv[i], t) : link(argv[i], t)) != 0) rc = fail_path(t);
    free(t);
  }
  return rc;
}

/* ---- touch ------------------------------------------------------------- */

static int cmd_touch(int argc, char **argv) {
  int c, nocreate = 0, rc = 0;
  while ((c = getopt(argc, argv, "c")) != -1)
    if (c == 'c') nocreate = 1;
    else return usage("[-c] FILE...");
  if (optind == argc) return usage("[-c] FILE...");
  /* Explicit times: this wasi-libc (Debian's, 2022) sends times == NULL as
   * 0 without the preview1 ATIM_NOW/MTIM_NOW flags (the file gets 1970), and
   * refuses UTIME_NOW with EINVAL. */
  struct timespec now[2];
  clock_gettime(CLOCK_REALTIME, &now[0]);
  now[1] = now[0];
  for (int i = optind; i < argc; i++) {
    if (utimensat(AT_FDCWD, argv[i], now, 0) == 0) continue;
    if (errno != ENOENT) {
      rc = fail_path(argv[i]);
      continue;
    }
    if (nocreate) continue;
    int fd = open(argv[i], O_WRONLY | O_CREAT, 0666);
    if (fd < 0) rc = fail_path(argv[i]);
    else close(fd);
  }
  return rc;
}

/* ---- find -------------------------------------------------------------- */

struct find_opts {
  const char *name;  /* -name GLOB, or NULL */
  char type;         /* -type f|d|l, or 0 */
};

static int find_walk(const char *path, const struct find_opts *o) {
  struct stat st;
  if (lstat(path, &st) != 0) return fail_path(path);
  int match = 1;
  if (o->name) {
    char *b = base_name(path);
    match = fnmatch(o->name, b, 0) == 0;
    free(b);
  }
  if (o->type == 'f' && !S_ISREG(st.st_mode)) match = 0;
  if (o->type == 'd' && !S_ISDIR(st.st_mode)) match = 0;
  if (o->type == 'l' && !S_ISLNK(st.st_mode)) match = 0;
  if (match) printf("%s\n", path);
  if (!S_ISDIR(st.st_mode)) return 0;
  size_t n;
  char **names = read_names(path, &n);
  if (!names) return fail_path(path);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char *child = join(path, names[i]);
    rc |= find_walk(child, o);
    free(child);
  }
  free_names(names, n);
  return rc;
}

static int cmd_find(int argc, char **argv) {
  static const char *u = "[PATH...] [-name GLOB] [-type f|d|l]";
  struct find_opts o = {0};
  int i = 1;
  while (i < argc && (argv[i][0] != '-' || !argv[i][1])) i++;
  int first = 1, last = i; /* paths are argv[first..last) */
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "-name") && i + 1 < argc) o.name = argv[++i];
    else if (!strcmp(argv[i], "-type") && i + 1 < argc) {
      const char *t = argv[++i];
      if ((t[0] != 'f' && t[0] != 'd' && t[0] != 'l') || t[1]) return usage(u);
      o.type = t[0];
    } else {
      return usage(u);
    }
  }
  if (first == last) return find_walk(".", &o);
  int rc = 0;
  for (int k = first; k < last; k++) rc |= find_walk(argv[k], &o);
  return rc;
}

/* ---- wc ---------------------------------------------------------------- */

static int wc_l, wc_w, wc_c;

static void wc_print(long long l, long long w, long long c, const char *name) {
  int sp = 0;
  if (wc_l) printf("%lld", l), sp = 1;
  if (wc_w) printf("%s%lld", sp ? " " : "", w), sp = 1;
  if (wc_c) printf("%s%lld", sp ? " " : "", c);
  if (name) printf(" %s", name);
  putchar('\n');
}

static int cmd_wc(int argc, char **argv) {
  int c, rc = 0;
  while ((c = getopt(argc, argv, "lwc")) != -1) {
    if (c == 'l') wc_l = 1;
    else if (c == 'w') wc_w = 1;
    else if (c == 'c') wc_c = 1;
    else return usage("[-lwc] [FILE...]");
  }
  if (!wc_l && !wc_w && !wc_c) wc_l = wc_w = wc_c = 1;
  int nf = argc - optind;
  long long tl = 0, tw = 0, tc = 0;
  for (int i = 0; i < (nf ? nf : 1); i++) {
    const char *name = nf ? argv[optind + i] : "-";
    int fd = strcmp(name, "-") ? open_read(name) : 0;
    if (fd < 0) {
      rc = fail_path(name);
      continue;
    }
    long long l = 0, w = 0, ch = 0;
    int inword = 0;
    for (;;) {
      ssize_t r = read(fd, g_buf, sizeof g_buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        rc = fail_path(nf ? name : "stdin");
        break;
      }
      if (r == 0) break;
      ch += r;
      for (ssize_t k = 0; k < r; k++) {
        unsigned char b = (unsigned char)g_buf[k];
        if (b == '\n') l++;
        if (isspace(b)) inword = 0;
        else if (!inword) inword = 1, w++;
      }
    }
    if (fd) close(fd);
    wc_print(l, w, ch, nf ? name : NULL);
    tl += l, tw += w, tc += ch;
  }
  if (nf > 1) wc_print(tl, tw, tc, "total");
  return rc;
}

/* ---- head / tail ------------------------------------------------------- */

/* Parses "-n N" (tail also "-n +N": from line N). Returns -1 on a bad value. */
static long parse_count(const char *s, int *from_start) {
  char *end;
  *from_start = 0;
  if (*s == '+') *from_start = 1, s++;
  if (!isdigit((unsigned char)*s)) return -1;
  long v = strtol(s, &end, 10);
  return *end ? -1 : v;
}

static int head_tail(int argc, char **argv, int tail) {
  const char *u = tail ? "[-n [+]N] [FILE...]" : "[-n N] [FILE...]";
  long n = 10;
  int from = 0, c, rc = 0;
  /* Accept the traditional "-N" as "-n N". */
  if (argc > 1 && argv[1][0] == '-' && isdigit((unsigned char)argv[1][1])) {
    n = parse_count(argv[1] + 1, &from);
    if (n < 0) return usage(u);
    argv[1] = argv[0], argv++, argc--;
  }
  while ((c = getopt(argc, argv, "n:")) != -1) {
    if (c != 'n') return usage(u);
    n = parse_count(optarg, &from);
    if (n < 0 || (from && !tail)) return usage(u);
  }
  int nf = argc - optind;
  for (int i = 0; i < (nf ? nf : 1); i++) {
    const char *name = nf ? argv[optind + i] : "-";
    size_t len;
    char *buf = slurp(name, &len);
    if (!buf) {
      rc = fail_path(strcmp(name, "-") ? name : "stdin");
      continue;
    }
    if (nf > 1) printf("%s==> %s <==\n", i ? "\n" : "", name);
    size_t start = 0, end = len;
    if (!tail) { /* end after the n-th newline */
      long k = 0;
      for (end = 0; end < len && k < n; end++)
        if (buf[end] == '\n') k++;
    } else if (from) { /* start at line n (1-based) */
      long k = 1;
      for (start = 0; start < len && k < n; start++)
        if (buf[start] == '\n') k++;
    } else { /* the last n lines; a final line without '\n' counts */
      long k = 0;
      start = len;
      if (start && buf[start - 1] == '\n') start--;
      while (start > 0) {
        if (buf[start - 1] == '\n' && ++k == n) break;
        start--;
      }
      if (n == 0) start = len;
    }
    fwrite(buf + start, 1, end - start, stdout);
    free(buf);
  }
  return rc;
}

static int cmd_head(int argc, char **argv) { return head_tail(argc, argv, 0); }
static int cmd_tail(int argc, char **argv) { return head_tail(argc, argv, 1); }

/* ---- grep -------------------------------------------------------------- */

static struct {
  int icase, num, invert, rec, fixed, names, matched;
  const char *pat;
  size_t patlen;
  regex_t re;
} G;

/* Fixed-string search, case-folded with -i. */
static int fixed_match(const char *line, size_t len) {
  if (G.patlen == 0) return 1;
  for (size_t i = 0; i + G.patlen <= len; i++) {
    size_t k = 0;
    if (G.icase)
      while (k < G.patlen && tolower((unsigned char)line[i + k]) == tolower((unsigned char)G.pat[k])) k++;
    else
      while (k < G.patlen && line[i + k] == G.pat[k]) k++;
    if (k == G.patlen) return 1;
  }
  return 0;
}

/* Greps one file ("-" = stdin). Returns 0, or 2 on an error. */
static int grep_file(const char *path, const char *shown) {
  size_t len;
  char *buf = slurp(path, &len);
  if (!buf) {
    fail_path(shown);
    return 2;
  }
  long lineno = 0;
  for (size_t s = 0; s < len;) {
    char *nl = memchr(buf + s, '\n', len - s);
    size_t e = nl ? (size_t)(nl - buf) : len;
    buf[e] = '\0';
    lineno++;
    int m = G.fixed ? fixed_match(buf + s, e - s) : regexec(&G.re, buf + s, 0, NULL, 0) == 0;
    if (m != G.invert) {
      G.matched = 1;
      if (G.names) printf("%s:", shown);
      if (G.num) printf("%ld:", lineno);
      printf("%s\n", buf + s);
    }
    s = e + 1;
  }
  free(buf);
  return 0;
}

/* With -r: directories recursively (sorted; symlinks met inside are skipped,
 * symlinks given as operands are followed). */
static int grep_path(const char *path, int operand) {
  struct stat st;
  if (strcmp(path, "-") == 0) return grep_file("-", "(standard input)");
  if ((operand ? stat(path, &st) : lstat(path, &st)) != 0) {
    fail_path(path);
    return 2;
  }
  if (S_ISLNK(st.st_mode)) return 0;
  if (!S_ISDIR(st.st_mode)) return grep_file(path, path);
  if (!G.rec) {
    fail_errno(path, EISDIR);
    return 2;
  }
  size_t n;
  char **names = read_names(path, &n);
  if (!names) {
    fail_path(path);
    return 2;
  }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char *child = join(path, names[i]);
    rc |= grep_path(child, 0);
    free(child);
  }
  free_names(names, n);
  return rc;
}

static int cmd_grep(int argc, char **argv) {
  static const char *u = "[-invrFE] PATTERN [FILE...]";
  int c, ext = 0, rc = 0;
  while ((c = getopt(argc, argv, "invrRFE")) != -1) {
    if (c == 'i') G.icase = 1;
    else if (c == 'n') G.num = 1;
    else if (c == 'v') G.invert = 1;
    else if (c == 'r' || c == 'R') G.rec = 1;
    else if (c == 'F') G.fixed = 1;
    else if (c == 'E') ext = 1;
    else return usage(u);
  }
  if (optind == argc) return usage(u);
  G.pat = argv[optind++];
  G.patlen = strlen(G.pat);
  if (!G.fixed) {
    int e = regcomp(&G.re, G.pat, REG_NOSUB | (ext ? REG_EXTENDED : 0) | (G.icase ? REG_ICASE : 0));
    if (e) {
      char msg[128];
      regerror(e, &G.re, msg, sizeof msg);
      fprintf(stderr, "%s: %s: %s\n", g_cmd, G.pat, msg);
      return 2;
    }
  }
  int nf = argc - optind;
  G.names = nf > 1 || G.rec;
  if (nf == 0) rc = G.rec ? grep_path(".", 1) : grep_file("-", "(standard input)");
  for (int i = optind; i < argc; i++) rc |= grep_path(argv[i], 1);
  if (rc) return 2;
  return G.matched ? 0 : 1;
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *args, *what;
} CMDS[] = {
    {"cat", cmd_cat, "[FILE...]", "files, or stdin (\"-\"), to stdout"},
    {"cp", cmd_cp, "[-r] SRC... DEST", "copy; -r: directories, symlinks as symlinks"},
    {"echo", cmd_echo, "[-n] [ARG...]", "print the arguments"},
    {"find", cmd_find, "[PATH...] [-name GLOB] [-type f|d|l]", "walk the trees, sorted"},
    {"grep", cmd_grep, "[-invrFE] PATTERN [FILE...]", "POSIX regex: BRE, -E ERE, -F fixed"},
    {"head", cmd_head, "[-n N] [FILE...]", "the first N lines (10)"},
    {"ln", cmd_ln, "[-sf] TARGET [LINK]", "hard link; -s symbolic"},
    {"ls", cmd_ls, "[-laR] [PATH...]", "sorted, one entry per line"},
    {"mkdir", cmd_mkdir, "[-p] DIR...", "make directories; -p parents"},
    {"mv", cmd_mv, "SRC... DEST", "rename"},
    {"rm", cmd_rm, "[-rf] PATH...", "remove; -r trees, -f no missing errors"},
    {"tail", cmd_tail, "[-n [+]N] [FILE...]", "the last N lines (10); +N from line N"},
    {"touch", cmd_touch, "[-c] FILE...", "create, or set the times to now"},
    {"wc", cmd_wc, "[-lwc] [FILE...]", "lines, words, bytes"},
};
#define NCMDS (sizeof CMDS / sizeof CMDS[0])

static int find_cmd(const char *name) {
  for (size_t i = 0; i < NCMDS; i++)
    if (!strcmp(CMDS[i].name, name)) return (int)i;
  return -1;
}

static void help(FILE *f) {
  fprintf(f, "usage: toolbox COMMAND [ARGS...]  (or run it under a command's name)\ncommands:\n");
  for (size_t i = 0; i < NCMDS; i++) fprintf(f, "  %-5s %-37s %s\n", CMDS[i].name, CMDS[i].args, CMDS[i].what);
}

int main(int argc, char **argv) {
  /* The name this program was run under: the base name of argv[0] without
   * ".wasm" (runtimes usually pass the file name). */
  char *self = base_name(argc > 0 ? argv[0] : "toolbox");
  size_t sl = strlen(self);
  if (sl > 5 && !strcmp(self + sl - 5, ".wasm")) self[sl - 5] = '\0';
  int i = find_cmd(self);
  if (i < 0) { /* "toolbox CMD ARGS...": shift the command into argv[0] */
    if (argc < 2) {
      help(stderr);
      return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
      help(stdout);
      return 0;
    }
    i = find_cmd(argv[1]);
    if (i < 0) {
      fprintf(stderr, "toolbox: %s: unknown command (toolbox --help lists them)\n", argv[1]);
      return 2;
    }
    argc--, argv++;
  }
  g_cmd = CMDS[i].name;
  argv[0] = (char *)g_cmd; /* getopt's own messages name the command */
  free(self);
  int rc = CMDS[i].fn(argc, argv);
  if (fflush(stdout) != 0 && rc == 0) rc = fail_path("stdout");
  return rc;
}
