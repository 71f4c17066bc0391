// Grows and writes one file far past what fits in memory, one operation per
// argument, and prints each result on a line ("ok", "EFBIG", ...):
//   size_big PATH t:SIZE            ftruncate(fd, SIZE)
//   size_big PATH w:OFFSET:TEXT     pwrite TEXT at OFFSET
//   size_big PATH s:OFFSET:TEXT     lseek(fd, OFFSET, SEEK_SET), then write TEXT
//   size_big PATH a:OFFSET:LEN      posix_fallocate(fd, OFFSET, LEN)
//   size_big PATH r:OFFSET:LEN      pread LEN bytes at OFFSET; prints them, a zero byte as '.'
//   size_big PATH z                 fstat: prints the size
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void result(int rc) {
  if (rc == 0) { puts("ok"); return; }
  int e = rc > 0 ? rc : errno;
  const char *name = e == EFBIG ? "EFBIG" : e == EINVAL ? "EINVAL" : e == ENOSPC ? "ENOSPC" : NULL;
  if (name) puts(name); else printf("errno %d %s\n", e, strerror(e));
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: size_big PATH OP...\n"); return 2; }
  int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
  if (fd < 0) { perror("open"); return 1; }
  for (int i = 2; i < argc; i++) {
    char *op = argv[i], *rest = op + 2;
    char *end;
    long long a = strtoll(rest, &end, 10);
    char *arg2 = *end == ':' ? end + 1 : end;
    switch (op[0]) {
      case 't': result(ftruncate(fd, (off_t)a)); break;
      case 'w': {
        ssize_t n = pwrite(fd, arg2, strlen(arg2), (off_t)a);
        result(n == (ssize_t)strlen(arg2) ? 0 : -1);
        break;
      }
      case 's': {
        if (lseek(fd, (off_t)a, SEEK_SET) < 0) { result(-1); break; }
        ssize_t n = write(fd, arg2, strlen(arg2));
        result(n == (ssize_t)strlen(arg2) ? 0 : -1);
        break;
      }
      case 'a': result(posix_fallocate(fd, (off_t)a, (off_t)strtoll(arg2, NULL, 10))); break;
      case 'r': {
        long long len = strtoll(arg2, NULL, 10);
        char *buf = malloc(len + 1);
        ssize_t n = pread(fd, buf, len, (off_t)a);
        if (n < 0) { result(-1); free(buf); break; }
        for (ssize_t j = 0; j < n; j++) if (!buf[j]) buf[j] = '.';
        buf[n] = 0;
        printf("%s\n", buf);
        free(buf);
        break;
      }
      case 'z': {
        struct stat st;
        if (fstat(fd, &st) < 0) result(-1); else printf("%lld\n", (long long)st.st_size);
        break;
      }
      default: fprintf(stderr, "unknown op %s\n", op); return 2;
    }
    fflush(stdout);
  }
  close(fd);
  return 0;
}
