// Fills the fd table until EMFILE, then checks which numbers come back:
// the lowest free slot first, after fd_close and after fd_renumber; then
// 100,000 open/close cycles, and the table filled again.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

#define MAX 300000
static int fds[MAX];

static int fill(void) {
  int n = 0;
  for (;;) {
    int fd = open("/f.txt", O_RDONLY);
    if (fd < 0) {
      printf("stop %s\n", errno == EMFILE ? "EMFILE" : strerror(errno));
      return n;
    }
    if (n && fd != fds[n - 1] + 1) printf("not consecutive: #%d is %d after %d\n", n, fd, fds[n - 1]);
    if (n == MAX) {
      printf("no limit after %d fds\n", n);
      return n;
    }
    fds[n++] = fd;
  }
}

int main(void) {
  // Line by line: a watcher sees "opened" while the table is full.
  setvbuf(stdout, NULL, _IOLBF, 0);
  int keep = open("/f.txt", O_CREAT | O_RDWR, 0644);
  if (keep < 0 || write(keep, "data", 4) != 4) return 1;
  int n = fill();
  printf("opened %d first %d last %d\n", n, fds[0], fds[n - 1]);

  // Freed slots come back lowest first.
  close(fds[1000]);
  close(fds[10]);
  close(fds[500]);
  int a = open("/f.txt", O_RDONLY), b = open("/f.txt", O_RDONLY), c = open("/f.txt", O_RDONLY);
  printf("reuse %s\n", a == fds[10] && b == fds[500] && c == fds[1000] ? "lowest first" : "WRONG");
  int d = open("/f.txt", O_RDONLY);
  printf("full again %s\n", d < 0 && errno == EMFILE ? "EMFILE" : "WRONG");

  // fd_renumber frees its source slot and keeps the target's number.
  __wasi_errno_t r = __wasi_fd_renumber(fds[20], fds[30]);
  char buf[4];
  int ok = r == 0 && pread(fds[30], buf, 4, 0) == 4 && memcmp(buf, "data", 4) == 0;
  int again = open("/f.txt", O_RDONLY);
  printf("renumber %d target reads %s, source slot reused %s\n", r, ok ? "ok" : "WRONG", again == fds[20] ? "yes" : "no");
  printf("renumber to a closed fd %d\n", __wasi_fd_renumber(fds[40], 99999999));

  int bad = 0;
  for (int i = 0; i < n; i++)
    if (close(fds[i]) != 0) bad++;
  printf("closed all, %d failures\n", bad);
  printf("close again %s\n", close(fds[5]) < 0 && errno == EBADF ? "EBADF" : "WRONG");

  // 100,000 open/close cycles: always the lowest slot.
  int same = 0;
  for (int i = 0; i < 100000; i++) {
    int fd = open("/f.txt", O_RDONLY);
    if (fd == fds[0]) same++;
    close(fd);
  }
  printf("cycles %d of 100000 got fd %d\n", same, fds[0]);

  int m = fill();
  printf("refilled %d first %d last %d\n", m, fds[0], fds[m - 1]);
  for (int i = 0; i < m; i++) close(fds[i]);
  return 0;
}
