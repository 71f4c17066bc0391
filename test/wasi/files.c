/*
 * files.c: regular file I/O.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); everything
 * is created under argv[1]/files, which is cleared first. Prints one line per
 * check and exits 0 iff all checks pass (see common.h).
 *
 * Covers: open flags O_CREAT, O_EXCL, O_TRUNC; write/read; readv/writev;
 * pread/pwrite (file offset unchanged); ftruncate shrink and grow (zero
 * fill); fsync/fdatasync; reads at and past EOF; a 256 KiB round trip.
 */
#include "common.h"

#include <sys/uio.h>

int main(int argc, char **argv) {
  setup(argc, argv, "files");
  char buf[256];
  struct stat st;
  int fd;

  /* O_CREAT|O_EXCL on a new file, then again on the existing one. */
  fd = open(P("a.txt"), O_RDWR | O_CREAT | O_EXCL, 0644);
  check_ok("open O_CREAT|O_EXCL new", fd);
  check_err("open O_CREAT|O_EXCL existing", open(P("a.txt"), O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);

  /* write then read back through the same fd. */
  ssize_t w = write(fd, "hello world", 11);
  check("write 11 bytes", w == 11, "short write");
  check("offset after write", lseek(fd, 0, SEEK_CUR) == 11, "offset != 11");
  lseek(fd, 0, SEEK_SET);
  memset(buf, 0, sizeof buf);
  ssize_t r = read(fd, buf, sizeof buf);
  check("read back", r == 11 && memcmp(buf, "hello world", 11) == 0, "content differs");
  check("read at EOF returns 0", read(fd, buf, sizeof buf) == 0, "nonzero");

  /* pread/pwrite do not move the file offset. */
  lseek(fd, 2, SEEK_SET);
  memset(buf, 0, sizeof buf);
  r = pread(fd, buf, 5, 6);
  check("pread at 6", r == 5 && memcmp(buf, "world", 5) == 0, "content differs");
  check("pread keeps offset", lseek(fd, 0, SEEK_CUR) == 2, "offset moved");
  w = pwrite(fd, "HELLO", 5, 0);
  check("pwrite at 0", w == 5, "short pwrite");
  check("pwrite keeps offset", lseek(fd, 0, SEEK_CUR) == 2, "offset moved");
  r = pread(fd, buf, sizeof buf, 0);
  check("pwrite visible", r == 11 && memcmp(buf, "HELLO world", 11) == 0, "content differs");
  check("pread past EOF returns 0", pread(fd, buf, sizeof buf, 100) == 0, "nonzero");
  check("pread at EOF returns 0", pread(fd, buf, sizeof buf, 11) == 0, "nonzero");
  r = pread(fd, buf, sizeof buf, 9);
  check("pread straddling EOF is short", r == 2 && memcmp(buf, "ld", 2) == 0, "wrong length/content");

  /* pwrite past EOF extends with zeros. */
  w = pwrite(fd, "Z", 1, 15);
  fstat(fd, &st);
  r = pread(fd, buf, sizeof buf, 0);
  check("pwrite past EOF extends", w == 1 && st.st_size == 16 && r == 16 &&
        memcmp(buf + 11, "\0\0\0\0Z", 5) == 0, "size or gap wrong");

  /* ftruncate shrink and grow. */
  check_ok("ftruncate to 5", ftruncate(fd, 5));
  fstat(fd, &st);
  check("size after shrink", st.st_size == 5, "size != 5");
  r = pread(fd, buf, sizeof buf, 0);
  check("content after shrink", r == 5 && memcmp(buf, "HELLO", 5) == 0, "content differs");
  check_ok("ftruncate to 20", ftruncate(fd, 20));
  fstat(fd, &st);
  r = pread(fd, buf, sizeof buf, 0);
  int zeros = 1;
  for (int i = 5; i < 20; i++) zeros &= buf[i] == 0;
  check("grow fills zeros", st.st_size == 20 && r == 20 && zeros, "size or fill wrong");
  check("ftruncate keeps offset", lseek(fd, 0, SEEK_CUR) == 2, "offset moved");
  check_err("ftruncate negative", ftruncate(fd, -1), EINVAL);

  check_ok("fsync", fsync(fd));
  check_ok("fdatasync", fdatasync(fd));
  check_ok("close", close(fd));

  /* O_CREAT without O_EXCL on an existing file keeps its content. */
  fd = open(P("a.txt"), O_RDWR | O_CREAT, 0644);
  fstat(fd, &st);
  check("O_CREAT existing keeps content", fd >= 0 && st.st_size == 20, "size changed");
  close(fd);

  /* O_TRUNC empties it. */
  fd = open(P("a.txt"), O_RDWR | O_TRUNC);
  fstat(fd, &st);
  check("O_TRUNC empties", fd >= 0 && st.st_size == 0, "size != 0");
  check("read empty file returns 0", read(fd, buf, sizeof buf) == 0, "nonzero");
  close(fd);

  /* O_TRUNC with O_RDONLY is unspecified by POSIX: not tested. */

  /* writev/readv with three buffers. */
  fd = open(P("v.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  struct iovec wv[3] = {{"one-", 4}, {"", 0}, {"two-three", 9}};
  w = writev(fd, wv, 3);
  check("writev", w == 13, "short writev");
  char a[3], b[4], c[20];
  struct iovec rv[3] = {{a, 3}, {b, 4}, {c, sizeof c}};
  lseek(fd, 0, SEEK_SET);
  r = readv(fd, rv, 3);
  check("readv", r == 13 && memcmp(a, "one", 3) == 0 && memcmp(b, "-two", 4) == 0 &&
        memcmp(c, "-three", 6) == 0, "scatter wrong");
  close(fd);

  /* A large round trip (several host writes/reads). */
  size_t big = 256 * 1024;
  unsigned char *src = malloc(big), *dst = malloc(big);
  for (size_t i = 0; i < big; i++) src[i] = (unsigned char)(i * 131 + (i >> 9));
  fd = open(P("big.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  size_t off = 0;
  while (off < big) {
    size_t n = big - off < 10007 ? big - off : 10007;
    w = write(fd, src + off, n);
    if (w <= 0) break;
    off += (size_t)w;
  }
  check("write 256 KiB", off == big, "short");
  lseek(fd, 0, SEEK_SET);
  off = 0;
  while (off < big) {
    r = read(fd, dst + off, big - off);
    if (r <= 0) break;
    off += (size_t)r;
  }
  check("read 256 KiB back", off == big && memcmp(src, dst, big) == 0, "content differs");
  close(fd);
  free(src);
  free(dst);

  /* A new file is visible with the right size through stat by path. */
  write_file(P("b.txt"), "12345", 5);
  check("stat size after close", stat(P("b.txt"), &st) == 0 && st.st_size == 5, "size != 5");
  check_ok("unlink", unlink(P("b.txt")));
  check_err("stat after unlink", stat(P("b.txt"), &st), ENOENT);

  /* Data written through one fd is visible through another open fd. */
  int fa = open(P("shared.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  int fb = open(P("shared.txt"), O_RDONLY);
  write(fa, "xyz", 3);
  memset(buf, 0, sizeof buf);
  r = read(fb, buf, sizeof buf);
  check("write visible via second fd", r == 3 && memcmp(buf, "xyz", 3) == 0, "not visible");
  close(fa);
  close(fb);

  /* An open fd keeps reading after its name is unlinked. */
  fd = open(P("shared.txt"), O_RDONLY);
  unlink(P("shared.txt"));
  r = pread(fd, buf, sizeof buf, 0);
  check("read after unlink via open fd", r == 3 && memcmp(buf, "xyz", 3) == 0, "data lost");
  close(fd);

  return finish();
}
