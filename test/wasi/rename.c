/*
 * rename.c: rename semantics.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/rename, which is cleared first. Prints one line
 * per check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: rename to a new name, file over file (atomic replace, target's
 * content gone), into another directory, directory rename (children move
 * along), dir over empty dir, dir over non-empty dir (ENOTEMPTY), dir into
 * its own subdir (EINVAL), file over dir (EISDIR), dir over file (ENOTDIR),
 * missing source (ENOENT), rename onto itself (no-op), an open fd surviving
 * the rename of its file, and a symlink renamed (the link, not its target).
 */
#include "common.h"

int main(int argc, char **argv) {
  setup(argc, argv, "rename");
  char buf[256];
  struct stat st, st2;

  write_file(P("a"), "AAA", 3);
  check_ok("rename to new name", rename(P("a"), P("b")));
  check_err("old name gone", stat(P("a"), &st), ENOENT);
  check("new name has content", read_file(P("b"), buf, sizeof buf) == 3 && !strcmp(buf, "AAA"), "content differs");

  /* File over file. */
  write_file(P("c"), "CCCCC", 5);
  stat(P("b"), &st);
  check_ok("rename over file", rename(P("b"), P("c")));
  check("target replaced", read_file(P("c"), buf, sizeof buf) == 3 && !strcmp(buf, "AAA"), "content differs");
  stat(P("c"), &st2);
  check("renamed file keeps its ino", st.st_ino == st2.st_ino, "ino changed");
  check("source gone after replace", stat(P("b"), &st) != 0 && errno == ENOENT, "still there");

  /* Into another directory. */
  mkdir(P("d1"), 0755);
  check_ok("rename into dir", rename(P("c"), P("d1/c")));
  check("moved file readable", read_file(P("d1/c"), buf, sizeof buf) == 3, "unreadable");

  /* Directory rename moves its children. */
  mkdir(P("d1/sub"), 0755);
  write_file(P("d1/sub/x"), "X", 1);
  check_ok("dir rename", rename(P("d1"), P("d2")));
  check("children moved", read_file(P("d2/sub/x"), buf, sizeof buf) == 1 && !strcmp(buf, "X"), "missing child");
  check_err("old dir gone", stat(P("d1"), &st), ENOENT);

  /* Dir into its own subdir. */
  check_err("rename into own subdir", rename(P("d2"), P("d2/sub/inner")), EINVAL);
  check_err("rename to own child name", rename(P("d2"), P("d2/d2")), EINVAL);

  /* Dir over an empty dir replaces it. */
  mkdir(P("empty"), 0755);
  check_ok("dir over empty dir", rename(P("d2"), P("empty")));
  check("replaced dir has children", read_file(P("empty/sub/x"), buf, sizeof buf) == 1, "missing child");

  /* Dir over a non-empty dir. */
  mkdir(P("full"), 0755);
  write_file(P("full/keep"), "K", 1);
  check_err("dir over non-empty dir", rename(P("empty"), P("full")), ENOTEMPTY);
  check("non-empty target intact", read_file(P("full/keep"), buf, sizeof buf) == 1, "target damaged");
  check("source intact after ENOTEMPTY", stat(P("empty/sub/x"), &st) == 0, "source damaged");

  /* File over dir / dir over file. */
  write_file(P("f"), "F", 1);
  mkdir(P("dd"), 0755);
  check_err("file over dir", rename(P("f"), P("dd")), EISDIR);
  check_err("dir over file", rename(P("dd"), P("f")), ENOTDIR);
  check_err("rename missing source", rename(P("nope"), P("z")), ENOENT);
  check_err("rename into missing dir", rename(P("f"), P("nodir/f")), ENOENT);

  /* Rename onto itself is a no-op. */
  check_ok("rename file onto itself", rename(P("f"), P("f")));
  check("file intact after self-rename", read_file(P("f"), buf, sizeof buf) == 1, "gone");
  check_ok("rename dir onto itself", rename(P("dd"), P("dd")));

  /* An open fd follows the file. */
  int fd = open(P("f"), O_RDWR);
  rename(P("f"), P("g"));
  lseek(fd, 0, SEEK_END);
  write(fd, "G", 1);
  close(fd);
  check("open fd survives rename", read_file(P("g"), buf, sizeof buf) == 2 && !strcmp(buf, "FG"), "write lost");

  /* Renaming a symlink renames the link itself. */
  symlink("g", P("ln"));
  check_ok("rename symlink", rename(P("ln"), P("ln2")));
  check("renamed link is a link", lstat(P("ln2"), &st) == 0 && S_ISLNK(st.st_mode), "not a link");
  check("link target untouched", stat(P("g"), &st) == 0 && S_ISREG(st.st_mode), "target moved");
  check("renamed link resolves", read_file(P("ln2"), buf, sizeof buf) == 2, "dangling");

  /* Rename over a symlink replaces the link, not its target. */
  write_file(P("h"), "H", 1);
  check_ok("rename over symlink", rename(P("h"), P("ln2")));
  check("over symlink: now a regular file", lstat(P("ln2"), &st) == 0 && S_ISREG(st.st_mode), "still a link");
  check("over symlink: old target intact", read_file(P("g"), buf, sizeof buf) == 2, "target changed");

  /* Hard links to the same file: rename one onto the other is a no-op. */
  if (link(P("g"), P("g2")) == 0) {
    check_ok("rename hard link onto its twin", rename(P("g"), P("g2")));
    check("both names remain", stat(P("g"), &st) == 0 && stat(P("g2"), &st2) == 0, "a name vanished");
  } else {
    fail("link for twin rename", "%s", errname(errno));
  }

  return finish();
}
