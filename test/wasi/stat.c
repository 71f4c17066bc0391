/*
 * stat.c: file attributes.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/stat, which is cleared first. Prints one line per
 * check and exits 0 iff all checks pass (see common.h). Prints relations
 * only: never inode numbers or times.
 *
 * Covers: st_size of files (empty, written, after truncate), type bits
 * S_ISREG/S_ISDIR/S_ISLNK via stat, lstat and fstat, fstat/stat agreement,
 * futimens and utimensat with nanosecond round trip, UTIME_OMIT and
 * UTIME_NOW, utimensat(AT_SYMLINK_NOFOLLOW) on a link (observation), mtime
 * advancing after a write, and mtime near the guest's CLOCK_REALTIME.
 * Permission bits are not checked: preview1 filestat has none, and
 * wasi-libc synthesizes st_mode from the file type alone.
 */
#include "common.h"

#include <time.h>

static long long ns_of(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

/* "exact" when equal, "approx" when within 1 us (a host keeping
 * microseconds or a double), "whole seconds" when the sub-second part was
 * dropped, otherwise "wrong". */
static const char *time_match(struct timespec got, long long want_ns) {
  long long d = ns_of(got) - want_ns;
  if (d == 0) return "exact";
  if (d > -1000 && d < 1000) return "approx";
  if (ns_of(got) == want_ns / 1000000000LL * 1000000000LL) return "whole seconds";
  return "wrong";
}

/* Checks one timestamp round trip: exact/approx pass, whole seconds is the
 * known node:wasi deviation (tolerated), anything else fails. */
static void check_time(const char *name, struct timespec got, long long want_ns) {
  const char *m = time_match(got, want_ns);
  if (!strcmp(m, "exact"))
    pass(name);
  else if (!strcmp(m, "approx"))
    observe(name, "approx (within 1us)");
  else if (!strcmp(m, "whole seconds"))
    tolerated(name, "whole seconds");
  else
    fail(name, "%s", m);
}

int main(int argc, char **argv) {
  setup(argc, argv, "stat");
  struct stat st, st2;

  /* Sizes. */
  write_file(P("empty"), "", 0);
  check("empty file size 0", stat(P("empty"), &st) == 0 && st.st_size == 0, "size != 0");
  char data[1234];
  memset(data, 'q', sizeof data);
  write_file(P("f"), data, sizeof data);
  check("size 1234", stat(P("f"), &st) == 0 && st.st_size == 1234, "size != 1234");
  truncate(P("f"), 100);
  check("size after truncate", stat(P("f"), &st) == 0 && st.st_size == 100, "size != 100");

  /* Types. */
  mkdir(P("d"), 0755);
  symlink("f", P("l"));
  symlink("d", P("ld"));
  check("S_ISREG file", stat(P("f"), &st) == 0 && S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode), "wrong type");
  check("S_ISDIR dir", stat(P("d"), &st) == 0 && S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode), "wrong type");
  check("S_ISLNK via lstat", lstat(P("l"), &st) == 0 && S_ISLNK(st.st_mode), "wrong type");
  check("stat on link is S_ISREG", stat(P("l"), &st) == 0 && S_ISREG(st.st_mode), "wrong type");
  check("stat on dir link is S_ISDIR", stat(P("ld"), &st) == 0 && S_ISDIR(st.st_mode), "wrong type");
  check("lstat on file is S_ISREG", lstat(P("f"), &st) == 0 && S_ISREG(st.st_mode), "wrong type");
  check("stat on preopen is S_ISDIR", stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode), "wrong type");
  stat(P("f"), &st);
  observe("permission bits of a file", "%s", (st.st_mode & 07777) ? "nonzero" : "zero");

  /* fstat agrees with stat. */
  int fd = open(P("f"), O_RDWR);
  fstat(fd, &st);
  stat(P("f"), &st2);
  check("fstat matches stat", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev && st.st_size == st2.st_size &&
        st.st_mode == st2.st_mode && st.st_nlink == st2.st_nlink, "differs");
  {
    int dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
    check("fstat dir fd is S_ISDIR", dfd >= 0 && fstat(dfd, &st2) == 0 && S_ISDIR(st2.st_mode), "wrong type");
    if (dfd >= 0) close(dfd);
  }
  check("distinct files have distinct ino", stat(P("d"), &st2) == 0 && st2.st_ino != st.st_ino, "same ino");

  /* futimens: nanosecond round trip. */
  struct timespec ts[2] = {{1600000000, 123456789}, {1600000001, 987654321}};
  check_ok("futimens", futimens(fd, ts));
  fstat(fd, &st);
  check_time("futimens atime ns round trip", st.st_atim, 1600000000LL * 1000000000LL + 123456789);
  check_time("futimens mtime ns round trip", st.st_mtim, 1600000001LL * 1000000000LL + 987654321);

  /* utimensat by path. */
  struct timespec ts2[2] = {{1500000000, 111111111}, {1500000002, 222222222}};
  check_ok("utimensat", utimensat(AT_FDCWD, P("f"), ts2, 0));
  stat(P("f"), &st);
  check_time("utimensat atime ns round trip", st.st_atim, 1500000000LL * 1000000000LL + 111111111);
  check_time("utimensat mtime ns round trip", st.st_mtim, 1500000002LL * 1000000000LL + 222222222);

  /* UTIME_OMIT keeps atime, sets mtime. */
  struct timespec ts3[2] = {{0, UTIME_OMIT}, {1400000000, 5}};
  int urc = utimensat(AT_FDCWD, P("f"), ts3, 0);
  if (urc < 0 && errno == EINVAL) {
    tolerated("utimensat UTIME_OMIT atime", "EINVAL");
  } else if (check_ok("utimensat UTIME_OMIT atime", urc)) {
    stat(P("f"), &st);
    check("UTIME_OMIT keeps atime", strcmp(time_match(st.st_atim, 1500000000LL * 1000000000LL + 111111111), "wrong") != 0, "atime changed");
    check("mtime set alongside UTIME_OMIT", strcmp(time_match(st.st_mtim, 1400000000LL * 1000000000LL + 5), "wrong") != 0, "mtime not set");
  }

  /* UTIME_OMIT keeps mtime, sets atime. */
  struct timespec ts3b[2] = {{1450000000, 7}, {0, UTIME_OMIT}};
  urc = utimensat(AT_FDCWD, P("f"), ts3b, 0);
  if (urc < 0 && errno == EINVAL) {
    tolerated("utimensat UTIME_OMIT mtime", "EINVAL");
  } else if (check_ok("utimensat UTIME_OMIT mtime", urc)) {
    stat(P("f"), &st);
    check("UTIME_OMIT keeps mtime", strcmp(time_match(st.st_mtim, 1400000000LL * 1000000000LL + 5), "wrong") != 0, "mtime changed");
    check("atime set alongside UTIME_OMIT", strcmp(time_match(st.st_atim, 1450000000LL * 1000000000LL + 7), "wrong") != 0, "atime not set");
  }

  /* UTIME_NOW sets a recent time. */
  struct timespec now;
  long long diff;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec ts4[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  urc = utimensat(AT_FDCWD, P("f"), ts4, 0);
  if (urc < 0 && errno == EINVAL) {
    tolerated("utimensat UTIME_NOW mtime", "EINVAL");
  } else if (check_ok("utimensat UTIME_NOW mtime", urc)) {
    stat(P("f"), &st);
    diff = ns_of(st.st_mtim) - ns_of(now);
    check("UTIME_NOW mtime near CLOCK_REALTIME", diff > -60000000000LL && diff < 60000000000LL, "far from now");
  }
  struct timespec ts4b[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  urc = futimens(fd, ts4b);
  if (urc < 0 && errno == EINVAL) {
    tolerated("futimens UTIME_NOW both", "EINVAL");
  } else if (check_ok("futimens UTIME_NOW both", urc)) {
    fstat(fd, &st);
    diff = ns_of(st.st_atim) - ns_of(now);
    check("UTIME_NOW atime near CLOCK_REALTIME", diff > -60000000000LL && diff < 60000000000LL, "far from now");
  }

  /* times on a symlink itself (preview1 path_filestat_set_times without
   * SYMLINK_FOLLOW); hosts may refuse. */
  struct stat tgt_before, tgt_after, lnk;
  stat(P("f"), &tgt_before);
  struct timespec ts5[2] = {{1300000000, 0}, {1300000000, 0}};
  if (utimensat(AT_FDCWD, P("l"), ts5, AT_SYMLINK_NOFOLLOW) == 0) {
    lstat(P("l"), &lnk);
    stat(P("f"), &tgt_after);
    observe("utimensat NOFOLLOW on link", "link mtime set=%s, target unchanged=%s",
            yesno(lnk.st_mtim.tv_sec == 1300000000),
            yesno(ns_of(tgt_after.st_mtim) == ns_of(tgt_before.st_mtim)));
  } else {
    observe("utimensat NOFOLLOW on link", "%s", errname(errno));
  }
  /* utimensat following the link sets the target. */
  check_ok("utimensat through link", utimensat(AT_FDCWD, P("l"), ts5, 0));
  stat(P("f"), &tgt_after);
  check("utimensat through link sets target", tgt_after.st_mtim.tv_sec == 1300000000, "target unchanged");

  /* mtime advances after a write (start from a time far in the past). */
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  futimens(fd, old);
  fstat(fd, &st);
  long long before = ns_of(st.st_mtim);
  lseek(fd, 0, SEEK_END);
  write(fd, "more", 4);
  fstat(fd, &st);
  check("mtime advances after write", ns_of(st.st_mtim) > before, "mtime unchanged");
  clock_gettime(CLOCK_REALTIME, &now);
  diff = ns_of(st.st_mtim) - ns_of(now);
  check("mtime after write near CLOCK_REALTIME", diff > -60000000000LL && diff < 60000000000LL, "far from now");
  check("atime not changed by write", st.st_atim.tv_sec == 1000000000, "atime moved");

  /* mtime advances after ftruncate too. */
  futimens(fd, old);
  ftruncate(fd, 10);
  fstat(fd, &st);
  check("mtime advances after ftruncate", st.st_mtim.tv_sec > 1000000000, "mtime unchanged");
  close(fd);

  /* A dir's mtime advances when an entry is added. */
  utimensat(AT_FDCWD, P("d"), old, 0);
  write_file(P("d/new"), "", 0);
  stat(P("d"), &st);
  check("dir mtime advances on create", st.st_mtim.tv_sec > 1000000000, "dir mtime unchanged");
  utimensat(AT_FDCWD, P("d"), old, 0);
  unlink(P("d/new"));
  stat(P("d"), &st);
  check("dir mtime advances on unlink", st.st_mtim.tv_sec > 1000000000, "dir mtime unchanged");

  check_err("stat missing", stat(P("missing"), &st), ENOENT);
  check_err("utimensat missing", utimensat(AT_FDCWD, P("missing"), ts, 0), ENOENT);

  return finish();
}
