/*
 * Shared helpers for the WASI conformance programs (test/wasi/NAME.c).
 *
 * Convention (every program): argv[1] is the guest path of a preopened,
 * writable directory (the runners use `/sandbox`). A program named NAME
 * works only under argv[1]/NAME, which it removes (recursively) and
 * recreates at start. Paths are always absolute guest paths built with P(),
 * so wasi-libc resolves them against the preopen by prefix.
 *
 * Output: one line per check, deterministic across runtimes:
 *   "<check>: ok"                  the check passed
 *   "<check>: ok (EINVAL)"         an expected error, printed by symbolic name
 *   "<check>: FAIL (<detail>)"     the check failed (the exit status becomes 1)
 *   "<check>: tolerated (<what>)"  the runtime did something POSIX/preview1
 *                                  does not allow, but a known deviation of a
 *                                  reference runtime (node:wasi, listed in
 *                                  README.md); not counted as a failure
 *   "<observation>: <value>"       informational, never fails (used where
 *                                  runtimes may legitimately differ)
 * Never print inode numbers, timestamps, pointers or timings: print relations.
 * Exit status: 0 when every check passed, 1 otherwise (see finish()).
 */
#ifndef LAYERBOX_WASI_COMMON_H
#define LAYERBOX_WASI_COMMON_H

/* Not every program uses every helper. */
#pragma clang diagnostic ignored "-Wunused-function"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_failures;
static int g_checks;
static char g_base[512];

static const char *errname(int e) {
  switch (e) {
    case 0: return "0";
    case E2BIG: return "E2BIG";
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EAGAIN: return "EAGAIN";
    case EALREADY: return "EALREADY";
    case EBADF: return "EBADF";
    case EBADMSG: return "EBADMSG";
    case EBUSY: return "EBUSY";
    case ECANCELED: return "ECANCELED";
    case ECHILD: return "ECHILD";
    case ECONNABORTED: return "ECONNABORTED";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EDEADLK: return "EDEADLK";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EDOM: return "EDOM";
    case EDQUOT: return "EDQUOT";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EFBIG: return "EFBIG";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EIDRM: return "EIDRM";
    case EILSEQ: return "EILSEQ";
    case EINPROGRESS: return "EINPROGRESS";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EISCONN: return "EISCONN";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case EMLINK: return "EMLINK";
    case EMSGSIZE: return "EMSGSIZE";
    case EMULTIHOP: return "EMULTIHOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENETDOWN: return "ENETDOWN";
    case ENETRESET: return "ENETRESET";
    case ENETUNREACH: return "ENETUNREACH";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case ENOEXEC: return "ENOEXEC";
    case ENOLCK: return "ENOLCK";
    case ENOLINK: return "ENOLINK";
    case ENOMEM: return "ENOMEM";
    case ENOMSG: return "ENOMSG";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case ENOTCONN: return "ENOTCONN";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTSUP: return "ENOTSUP"; /* == EOPNOTSUPP in wasi-libc */
    case ENOTTY: return "ENOTTY";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case EOWNERDEAD: return "EOWNERDEAD";
    case EPERM: return "EPERM";
    case EPIPE: return "EPIPE";
    case EPROTO: return "EPROTO";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EPROTOTYPE: return "EPROTOTYPE";
    case ERANGE: return "ERANGE";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case ESRCH: return "ESRCH";
    case ESTALE: return "ESTALE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ETXTBSY: return "ETXTBSY";
    case EXDEV: return "EXDEV";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    default: {
      static char buf[32];
      snprintf(buf, sizeof buf, "errno(%d)", e);
      return buf;
    }
  }
}

/* Absolute guest path under the program's scratch dir; 8 rotating buffers so
 * a few P() results can be used in one call. P("") is the scratch dir. */
static const char *P(const char *rel) {
  static char bufs[8][1024];
  static int next;
  char *b = bufs[next];
  next = (next + 1) % 8;
  if (rel[0] == '\0')
    snprintf(b, sizeof bufs[0], "%s", g_base);
  else
    snprintf(b, sizeof bufs[0], "%s/%s", g_base, rel);
  return b;
}

static void pass(const char *name) {
  g_checks++;
  printf("%s: ok\n", name);
}

static void fail(const char *name, const char *fmt, ...) {
  va_list ap;
  g_checks++;
  g_failures++;
  printf("%s: FAIL (", name);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf(")\n");
}

/* A check that a condition holds; `detail` explains a failure. */
static void check(const char *name, int cond, const char *detail) {
  if (cond)
    pass(name);
  else
    fail(name, "%s", detail);
}

/* A call that must succeed (rc >= 0); prints errno by name otherwise. */
static int check_ok(const char *name, long rc) {
  if (rc >= 0) {
    pass(name);
    return 1;
  }
  fail(name, "%s", errname(errno));
  return 0;
}

/* A call that must fail with errno `want`. */
static void check_err(const char *name, long rc, int want) {
  int e = errno;
  g_checks++;
  if (rc >= 0) {
    g_failures++;
    printf("%s: FAIL (succeeded, expected %s)\n", name, errname(want));
  } else if (e != want) {
    g_failures++;
    printf("%s: FAIL (got %s, expected %s)\n", name, errname(e), errname(want));
  } else {
    printf("%s: ok (%s)\n", name, errname(e));
  }
}

/* A call that must fail with one of the errnos in `wants` (0-terminated),
 * where POSIX or the preview1 spec allows several. The errno seen is printed. */
static void check_err_any(const char *name, long rc, const int *wants) {
  int e = errno;
  char list[128] = "";
  int ok = 0;
  for (const int *w = wants; *w; w++) {
    if (e == *w) ok = 1;
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", w == wants ? "" : " or ", errname(*w));
  }
  g_checks++;
  if (rc >= 0) {
    g_failures++;
    printf("%s: FAIL (succeeded, expected %s)\n", name, list);
  } else if (!ok) {
    g_failures++;
    printf("%s: FAIL (got %s, expected %s)\n", name, errname(e), list);
  } else {
    printf("%s: ok (%s)\n", name, errname(e));
  }
}

static void check_err2(const char *name, long rc, int want1, int want2) {
  int wants[3] = {want1, want2, 0};
  check_err_any(name, rc, wants);
}

/* A known reference-runtime deviation: printed, never a failure. */
static void tolerated(const char *name, const char *fmt, ...) {
  va_list ap;
  printf("%s: tolerated (", name);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf(")\n");
}

/* Like check_err, but errno `tol` is printed as tolerated instead of failing. */
static void check_err_tol(const char *name, long rc, int want, int tol) {
  if (rc < 0 && errno == tol && tol != want)
    tolerated(name, "%s", errname(tol));
  else
    check_err(name, rc, want);
}

/* Informational line; never affects the exit status. */
static void observe(const char *name, const char *fmt, ...) {
  va_list ap;
  printf("%s: ", name);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

static const char *yesno(int b) { return b ? "yes" : "no"; }

/* Recursive removal (does not follow symlinks). Returns 0 on success. */
static int rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *de;
  int rc = 0;
  /* Collect names first so removal does not disturb the iteration. */
  char **names = NULL;
  size_t n = 0, cap = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      names = realloc(names, cap * sizeof *names);
    }
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(path) + strlen(names[i]) + 2;
    char *child = malloc(len);
    snprintf(child, len, "%s/%s", path, names[i]);
    if (rm_rf(child) != 0) rc = -1;
    free(child);
    free(names[i]);
  }
  free(names);
  if (rmdir(path) != 0) rc = -1;
  return rc;
}

/* Sets up argv[1]/<name> as an empty scratch directory. Exits 2 on misuse. */
static void setup(int argc, char **argv, const char *name) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: %s <preopened-dir> [args...]\n", name);
    exit(2);
  }
  snprintf(g_base, sizeof g_base, "%s/%s", argv[1], name);
  if (rm_rf(g_base) != 0) {
    printf("setup: FAIL (cannot clear %s: %s)\n", g_base, errname(errno));
    exit(1);
  }
  if (mkdir(g_base, 0777) != 0) {
    printf("setup: FAIL (mkdir %s: %s)\n", g_base, errname(errno));
    exit(1);
  }
}

/* Writes a whole buffer to a new file (O_CREAT|O_TRUNC). Returns 0 on success. */
static int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  return close(fd);
}

/* Reads up to cap-1 bytes of a file into buf (NUL-terminated). Returns the
 * length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off + 1 < cap) {
    ssize_t r = read(fd, buf + off, cap - 1 - off);
    if (r < 0) {
      close(fd);
      return -1;
    }
    if (r == 0) break;
    off += (size_t)r;
  }
  buf[off] = '\0';
  close(fd);
  return (ssize_t)off;
}

/* Prints the summary line and returns the exit status for main(). */
static int finish(void) {
  printf("summary: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}

#endif
