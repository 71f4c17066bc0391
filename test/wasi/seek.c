/*
 * seek.c: file offsets.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/seek, which is cleared first. Prints one line per
 * check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: lseek SEEK_SET/SEEK_CUR/SEEK_END (positive and negative deltas),
 * negative result (EINVAL), bad whence (EINVAL), seeking past EOF without
 * writing (size unchanged), writing past EOF (a hole that reads as zeros),
 * independent offsets of two fds on one file, O_APPEND writes landing at the
 * end whatever the position (and the offset moving to the new end), and
 * reads on an O_APPEND fd honoring the position.
 */
#include "common.h"

int main(int argc, char **argv) {
  setup(argc, argv, "seek");
  char buf[256];
  struct stat st;

  int fd = open(P("f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  write(fd, "0123456789", 10);
  check("SEEK_SET 3", lseek(fd, 3, SEEK_SET) == 3, "wrong offset");
  memset(buf, 0, sizeof buf);
  check("read after SEEK_SET", read(fd, buf, 2) == 2 && !memcmp(buf, "34", 2), "wrong bytes");
  check("SEEK_CUR +2", lseek(fd, 2, SEEK_CUR) == 7, "wrong offset");
  check("SEEK_CUR -1", lseek(fd, -1, SEEK_CUR) == 6, "wrong offset");
  check("SEEK_CUR 0 reports position", lseek(fd, 0, SEEK_CUR) == 6, "wrong offset");
  check("SEEK_END 0", lseek(fd, 0, SEEK_END) == 10, "wrong offset");
  check("SEEK_END -4", lseek(fd, -4, SEEK_END) == 6, "wrong offset");
  check("read after SEEK_END -4", read(fd, buf, 10) == 4 && !memcmp(buf, "6789", 4), "wrong bytes");
  check_err("SEEK_SET -1", lseek(fd, -1, SEEK_SET), EINVAL);
  check("offset unchanged after failed seek", lseek(fd, 0, SEEK_CUR) == 10, "offset moved");
  check_err("SEEK_CUR before start", lseek(fd, -11, SEEK_CUR), EINVAL);
  check_err("SEEK_END before start", lseek(fd, -11, SEEK_END), EINVAL);
  check_err("bad whence", lseek(fd, 0, 42), EINVAL);

  /* Past EOF: no size change until a write. */
  check("SEEK_SET past EOF", lseek(fd, 100, SEEK_SET) == 100, "wrong offset");
  fstat(fd, &st);
  check("seek alone keeps size", st.st_size == 10, "size changed");
  check("read past EOF returns 0", read(fd, buf, sizeof buf) == 0, "nonzero");
  check("write past EOF", write(fd, "X", 1) == 1, errname(errno));
  fstat(fd, &st);
  check("size after hole write", st.st_size == 101, "size != 101");
  lseek(fd, 10, SEEK_SET);
  memset(buf, 0x55, sizeof buf);
  ssize_t r = read(fd, buf, 91);
  int zeros = r == 91;
  for (int i = 0; i < 90 && zeros; i++) zeros = buf[i] == 0;
  check("hole reads as zeros", zeros && buf[90] == 'X', "hole not zero");
  check("SEEK_END after hole", lseek(fd, 0, SEEK_END) == 101, "wrong offset");

  /* A large hole (1 MiB). */
  lseek(fd, 1 << 20, SEEK_SET);
  write(fd, "Y", 1);
  fstat(fd, &st);
  r = pread(fd, buf, 16, 512 * 1024);
  zeros = r == 16;
  for (int i = 0; i < 16 && zeros; i++) zeros = buf[i] == 0;
  check("1 MiB hole", st.st_size == (1 << 20) + 1 && zeros, "size or content wrong");
  close(fd);

  /* Two fds have independent offsets. */
  write_file(P("two"), "abcdef", 6);
  int f1 = open(P("two"), O_RDONLY), f2 = open(P("two"), O_RDONLY);
  read(f1, buf, 4);
  r = read(f2, buf, 1);
  check("independent offsets", r == 1 && buf[0] == 'a' && lseek(f1, 0, SEEK_CUR) == 4, "offsets shared");
  close(f1);
  close(f2);

  /* O_APPEND. */
  write_file(P("log"), "start", 5);
  fd = open(P("log"), O_RDWR | O_APPEND);
  check("O_APPEND open offset 0", lseek(fd, 0, SEEK_CUR) == 0, "offset not 0");
  lseek(fd, 0, SEEK_SET);
  write(fd, "-one", 4);
  check("O_APPEND offset moves to end", lseek(fd, 0, SEEK_CUR) == 9, "offset not at end");
  lseek(fd, 2, SEEK_SET);
  memset(buf, 0, sizeof buf);
  check("O_APPEND read honors position", read(fd, buf, 3) == 3 && !memcmp(buf, "art", 3), "wrong bytes");
  write(fd, "-two", 4);
  lseek(fd, 100, SEEK_SET);
  write(fd, "-three", 6);
  close(fd);
  r = read_file(P("log"), buf, sizeof buf);
  check("O_APPEND writes at end", r == 19 && !strcmp(buf, "start-one-two-three"), buf);

  /* Another writer grows the file; the O_APPEND fd still appends at the new end. */
  fd = open(P("log"), O_WRONLY | O_APPEND);
  int other = open(P("log"), O_WRONLY);
  lseek(other, 0, SEEK_END);
  write(other, "+x", 2);
  write(fd, "+y", 2);
  close(other);
  close(fd);
  r = read_file(P("log"), buf, sizeof buf);
  check("O_APPEND after external growth", r == 23 && !strcmp(buf, "start-one-two-three+x+y"), buf);

  /* fcntl(F_GETFL) reports O_APPEND. */
  fd = open(P("log"), O_WRONLY | O_APPEND);
  int fl = fcntl(fd, F_GETFL);
  check("F_GETFL shows O_APPEND", fl >= 0 && (fl & O_APPEND), "missing");
  close(fd);

  return finish();
}
