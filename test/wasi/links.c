/*
 * links.c: hard links.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/links, which is cleared first. Prints one line
 * per check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: link, st_nlink counts on every name (1, 2, 3, then down again),
 * the same st_ino on all names, a write through one name seen through the
 * others, unlink of one name keeps the data, links across directories,
 * link to a directory (EPERM), link onto an existing name (EEXIST), link
 * from a missing source (ENOENT), and an fd kept open across unlinking
 * every name.
 */
#include "common.h"

int main(int argc, char **argv) {
  setup(argc, argv, "links");
  char buf[256];
  struct stat sa, sb, sc;

  write_file(P("a"), "shared", 6);
  stat(P("a"), &sa);
  check("new file nlink 1", sa.st_nlink == 1, "nlink != 1");

  check_ok("link a b", link(P("a"), P("b")));
  stat(P("a"), &sa);
  stat(P("b"), &sb);
  check("nlink 2 on both names", sa.st_nlink == 2 && sb.st_nlink == 2, "nlink != 2");
  check("same st_ino", sa.st_ino == sb.st_ino, "ino differs");
  check("same st_dev", sa.st_dev == sb.st_dev, "dev differs");

  mkdir(P("sub"), 0755);
  check_ok("link into subdir", link(P("b"), P("sub/c")));
  stat(P("a"), &sa);
  stat(P("sub/c"), &sc);
  check("nlink 3", sa.st_nlink == 3 && sc.st_nlink == 3, "nlink != 3");
  check("subdir link same ino", sa.st_ino == sc.st_ino, "ino differs");

  /* Write through one name, read through the others. */
  int fd = open(P("b"), O_WRONLY | O_APPEND);
  write(fd, "+more", 5);
  close(fd);
  check("write via b seen via a", read_file(P("a"), buf, sizeof buf) == 11 && !strcmp(buf, "shared+more"), "content differs");
  check("write via b seen via sub/c", read_file(P("sub/c"), buf, sizeof buf) == 11, "content differs");
  stat(P("a"), &sa);
  stat(P("sub/c"), &sc);
  check("size shared", sa.st_size == 11 && sc.st_size == 11, "size differs");

  /* fstat on an fd reports the same identity. */
  fd = open(P("sub/c"), O_RDONLY);
  struct stat sf;
  fstat(fd, &sf);
  close(fd);
  check("fstat same ino and nlink", sf.st_ino == sa.st_ino && sf.st_nlink == 3, "differs");

  /* Unlink one name: data stays under the others. */
  check_ok("unlink a", unlink(P("a")));
  stat(P("b"), &sb);
  check("nlink back to 2", sb.st_nlink == 2, "nlink != 2");
  check("data kept after unlink", read_file(P("b"), buf, sizeof buf) == 11 && !strcmp(buf, "shared+more"), "data lost");
  check_err("unlinked name gone", stat(P("a"), &sa), ENOENT);

  /* Relink the freed name: it joins the group again. */
  check_ok("link b a again", link(P("b"), P("a")));
  stat(P("a"), &sa);
  check("relinked same ino, nlink 3", sa.st_ino == sb.st_ino && sa.st_nlink == 3, "differs");

  /* Truncate through one name. */
  truncate(P("sub/c"), 3);
  check("truncate via one name", read_file(P("a"), buf, sizeof buf) == 3 && !strcmp(buf, "sha"), "not shared");

  /* Errors. */
  mkdir(P("dir"), 0755);
  check_err("link to a directory", link(P("dir"), P("dirlink")), EPERM);
  check_err("link onto existing name", link(P("a"), P("b")), EEXIST);
  check_err("link from missing", link(P("nope"), P("x")), ENOENT);
  check_err("link into missing dir", link(P("a"), P("nodir/x")), ENOENT);

  /* Unlink every name while an fd is open: data stays readable via the fd. */
  fd = open(P("a"), O_RDONLY);
  unlink(P("a"));
  unlink(P("b"));
  unlink(P("sub/c"));
  memset(buf, 0, sizeof buf);
  ssize_t r = pread(fd, buf, sizeof buf, 0);
  check("fd readable after last unlink", r == 3 && !strcmp(buf, "sha"), "data lost");
  close(fd);

  /* A hard link to a symlink: link() follows nothing in WASI preview1
   * (path_link without SYMLINK_FOLLOW), so the new name is a symlink too. */
  write_file(P("t"), "T", 1);
  symlink("t", P("sl"));
  if (link(P("sl"), P("sl2")) == 0) {
    struct stat st;
    observe("link to symlink makes", "%s", lstat(P("sl2"), &st) == 0 && S_ISLNK(st.st_mode) ? "symlink" : "regular file");
  } else {
    observe("link to symlink makes", "%s", errname(errno));
  }

  return finish();
}
