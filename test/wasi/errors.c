/*
 * errors.c: error paths and sandbox confinement.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/errors, which is cleared first. Prints one line
 * per check with the errno by symbolic name and exits 0 iff all checks pass
 * (see common.h).
 *
 * Covers: ENOENT (missing file, missing parent, O_CREAT in a missing dir,
 * unlink missing), EISDIR (open a dir for writing), unlink of a dir (EISDIR
 * as on Linux, or POSIX EPERM), EEXIST (mkdir over a dir and over a file),
 * ENOTDIR (a file used as a directory, trailing slash on a file), EBADF
 * (write on a read-only fd, read on a write-only fd, bad and closed fds;
 * a rights-based host may answer ENOTCAPABLE, which is printed as seen),
 * ENAMETOOLONG (a 256-byte component; 255 bytes is fine), and escapes from
 * the preopen: "../" paths through libc and through raw path_open on the
 * preopen fd, absolute paths to path_open must be refused (ENOTCAPABLE or
 * EPERM), and symlinks pointing outside (relative and absolute targets) must
 * be refused at creation or when followed, or resolve inside the sandbox
 * (ENOENT); the errno seen is printed.
 */
#include "common.h"

#include <wasi/api.h>

/* Finds the preopened fd whose name is `name`, or -1. */
static int find_preopen(const char *name) {
  for (__wasi_fd_t fd = 3; fd < 64; fd++) {
    __wasi_prestat_t ps;
    if (__wasi_fd_prestat_get(fd, &ps) != 0) continue;
    if (ps.tag != __WASI_PREOPENTYPE_DIR) continue;
    size_t len = ps.u.dir.pr_name_len;
    char buf[512];
    if (len >= sizeof buf) continue;
    if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)buf, len) != 0) continue;
    buf[len] = '\0';
    /* Hosts may or may not keep a trailing slash or a leading "/". */
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    const char *n = name, *b = buf;
    if (*n == '/') n++;
    if (*b == '/') b++;
    if (!strcmp(n, b)) return (int)fd;
  }
  return -1;
}

/* A raw path_open relative to dirfd that must be refused: pass when it fails
 * with ENOTCAPABLE or EPERM (both used by hosts for "outside the sandbox"). */
static void check_escape_raw(const char *name, int dirfd, const char *path) {
  __wasi_fd_t out = 0;
  __wasi_errno_t e = __wasi_path_open((__wasi_fd_t)dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, 0,
                                      __WASI_RIGHTS_FD_READ, 0, 0, &out);
  if (e == 0) (void)__wasi_fd_close(out);
  errno = e;
  check_err2(name, e ? -1 : 0, ENOTCAPABLE, EPERM);
}

/* Creates errors/<link> -> target and tries to open errors/<link>/passwd,
 * raw from the preopen fd and through libc. */
static void check_symlink_escape(const char *name, int pre, const char *target, const char *preopen) {
  static int n;
  char link[64], rel[96], line[160], path[512];
  snprintf(link, sizeof link, "esc%d", n++);
  if (symlink(target, P(link)) != 0) {
    int e = errno;
    snprintf(line, sizeof line, "%s: creation", name);
    errno = e;
    check_err2(line, -1, ENOTCAPABLE, EPERM);
    return;
  }
  snprintf(line, sizeof line, "%s: created", name);
  pass(line);
  snprintf(rel, sizeof rel, "errors/%s/passwd", link);
  __wasi_fd_t out = 0;
  __wasi_errno_t e = __wasi_path_open((__wasi_fd_t)pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, rel, 0,
                                      __WASI_RIGHTS_FD_READ, 0, 0, &out);
  if (e == 0) (void)__wasi_fd_close(out);
  errno = e;
  snprintf(line, sizeof line, "%s: path_open through it", name);
  check_err_any(line, e ? -1 : 0, (const int[]){ENOTCAPABLE, EPERM, ENOENT, 0});
  snprintf(path, sizeof path, "%s/%s", preopen, rel);
  int fd = open(path, O_RDONLY);
  if (fd >= 0) close(fd);
  snprintf(line, sizeof line, "%s: libc open through it", name);
  check_err_any(line, fd, (const int[]){ENOTCAPABLE, EPERM, ENOENT, 0});
}

int main(int argc, char **argv) {
  setup(argc, argv, "errors");
  struct stat st;
  char buf[64];
  int fd;

  /* ENOENT. */
  check_err("open missing file", open(P("missing"), O_RDONLY), ENOENT);
  check_err("open with missing parent", open(P("nodir/file"), O_RDONLY), ENOENT);
  check_err("O_CREAT in missing dir", open(P("nodir/file"), O_WRONLY | O_CREAT, 0644), ENOENT);
  check_err("unlink missing", unlink(P("missing")), ENOENT);
  check_err("stat missing", stat(P("missing"), &st), ENOENT);

  /* Directories. */
  mkdir(P("dir"), 0755);
  check_err("open dir O_WRONLY", open(P("dir"), O_WRONLY), EISDIR);
  check_err("open dir O_RDWR", open(P("dir"), O_RDWR), EISDIR);
  check_err("open dir O_CREAT|O_WRONLY", open(P("dir"), O_WRONLY | O_CREAT, 0644), EISDIR);
  check_err2("unlink a dir", unlink(P("dir")), EISDIR, EPERM);
  check("dir survives unlink attempt", stat(P("dir"), &st) == 0 && S_ISDIR(st.st_mode), "dir gone");
  check_err("mkdir existing dir", mkdir(P("dir"), 0755), EEXIST);
  write_file(P("file"), "data", 4);
  check_err("mkdir over a file", mkdir(P("file"), 0755), EEXIST);
  check_err("O_CREAT|O_EXCL over a dir", open(P("dir"), O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);

  /* A file used as a directory. */
  check_err("open file/child", open(P("file/child"), O_RDONLY), ENOTDIR);
  check_err("open file with trailing slash", open(P("file/"), O_RDONLY), ENOTDIR);
  check_err("stat file with trailing slash", stat(P("file/"), &st), ENOTDIR);
  check_err("O_CREAT file/child", open(P("file/child"), O_WRONLY | O_CREAT, 0644), ENOTDIR);

  /* Bad fds and fds without the access mode. */
  fd = open(P("file"), O_RDONLY);
  check_err("write on read-only fd", write(fd, "x", 1), EBADF);
  check_err("pwrite on read-only fd", pwrite(fd, "x", 1, 0), EBADF);
  /* POSIX: EBADF or EINVAL (Linux). node:wasi answers from its rights table. */
  int trc = ftruncate(fd, 0);
  if (trc < 0 && errno == ENOTCAPABLE)
    tolerated("ftruncate on read-only fd", "ENOTCAPABLE");
  else
    check_err2("ftruncate on read-only fd", trc, EBADF, EINVAL);
  close(fd);
  check("read-only fd left data intact", stat(P("file"), &st) == 0 && st.st_size == 4, "file changed");
  fd = open(P("file"), O_WRONLY);
  check_err("read on write-only fd", read(fd, buf, sizeof buf), EBADF);
  close(fd);
  check_err("read on bad fd", read(999, buf, 1), EBADF);
  check_err("write on bad fd", write(999, "x", 1), EBADF);
  check_err("close bad fd", close(999), EBADF);
  check_err("fstat bad fd", fstat(999, &st), EBADF);
  fd = open(P("file"), O_RDONLY);
  close(fd);
  check_err("read on closed fd", read(fd, buf, 1), EBADF);
  check_err("close twice", close(fd), EBADF);
  fd = open(P("dir"), O_RDONLY | O_DIRECTORY);
  ssize_t rr = read(fd, buf, sizeof buf);
  observe("read on a dir fd", "%s", rr < 0 ? errname(errno) : "succeeded");
  close(fd);

  /* Name length. */
  char name[300];
  memset(name, 'n', 255);
  name[255] = '\0';
  fd = open(P(name), O_WRONLY | O_CREAT, 0644);
  check_ok("255-byte component allowed", fd);
  if (fd >= 0) close(fd);
  memset(name, 'n', 256);
  name[256] = '\0';
  check_err("256-byte component open", open(P(name), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
  check_err("256-byte component mkdir", mkdir(P(name), 0755), ENAMETOOLONG);
  check_err("256-byte component stat", stat(P(name), &st), ENAMETOOLONG);

  /* Escapes through libc paths: wasi-libc may resolve some lexically, so
   * the errno is printed as seen; success would be a sandbox escape. */
  char path[512];
  snprintf(path, sizeof path, "%s/../../../../../../etc/passwd", argv[1]);
  fd = open(path, O_RDONLY);
  if (fd >= 0) close(fd);
  check_err2("libc open <preopen>/../../../etc/passwd", fd, ENOTCAPABLE, EPERM);
  snprintf(path, sizeof path, "%s/errors/../../..", argv[1]);
  fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) close(fd);
  check_err2("libc open <preopen>/errors/../../..", fd, ENOTCAPABLE, EPERM);

  /* Escapes through raw path_open on the preopen fd. */
  int pre = find_preopen(argv[1]);
  check("preopen fd found", pre >= 0, "no preopen named like argv[1]");
  if (pre >= 0) {
    check_escape_raw("path_open ..", pre, "..");
    check_escape_raw("path_open ../../../etc/passwd", pre, "../../../etc/passwd");
    check_escape_raw("path_open errors/../../..", pre, "errors/../../..");
    check_escape_raw("path_open absolute /etc/passwd", pre, "/etc/passwd");

    /* Symlinks pointing outside: a host may refuse to create them, or
     * create them and refuse to follow them (ENOTCAPABLE/EPERM), or resolve
     * them against the sandbox root like a chroot (ENOENT here: nothing
     * named etc/passwd exists inside). Following one to the host's
     * /etc/passwd (success) is an escape. */
    check_symlink_escape("symlink escape ../", pre, "../../../../../../../../etc", argv[1]);
    check_symlink_escape("symlink escape absolute", pre, "/etc", argv[1]);

    /* Staying inside via .. is fine. */
    __wasi_fd_t out;
    __wasi_errno_t e = __wasi_path_open((__wasi_fd_t)pre, 0, "errors/dir/../file", 0, __WASI_RIGHTS_FD_READ, 0, 0, &out);
    if (e == 0) (void)__wasi_fd_close(out);
    check("path_open errors/dir/../file (inside)", e == 0, errname(e));
  }

  return finish();
}
