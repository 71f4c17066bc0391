// Guest side of `npm run bench`: times one workload with CLOCK_MONOTONIC and
// prints "<mode> <ns> <checksum>". Usage: bench MODE DIR [N]
//   meta   N x (stat, open, close) of DIR/meta/f<i % 100>  (files created first, untimed)
//   create N small files (100 bytes) in DIR/create
//   list   readdir of DIR/list (prepared by the host), counts entries
//   read   sequential read of DIR/big.bin in 1 MiB reads, sums bytes
//   reread the same, timing a second pass (after one untimed pass)
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *mode = argv[1], *dir = argv[2];
  int n = argc > 3 ? atoi(argv[3]) : 1000;
  char path[512];
  long long sum = 0, t0, t1;
  if (!strcmp(mode, "meta")) {
    snprintf(path, sizeof path, "%s/meta", dir);
    mkdir(path, 0755);
    for (int i = 0; i < 100; i++) {
      snprintf(path, sizeof path, "%s/meta/f%d", dir, i);
      int fd = open(path, O_CREAT | O_WRONLY, 0644);
      write(fd, "x", 1);
      close(fd);
    }
    t0 = now();
    for (int i = 0; i < n; i++) {
      struct stat st;
      snprintf(path, sizeof path, "%s/meta/f%d", dir, i % 100);
      if (stat(path, &st) == 0) sum += st.st_size;
      int fd = open(path, O_RDONLY);
      if (fd >= 0) close(fd);
    }
    t1 = now();
  } else if (!strcmp(mode, "create")) {
    char buf[100];
    memset(buf, 'c', sizeof buf);
    snprintf(path, sizeof path, "%s/create", dir);
    mkdir(path, 0755);
    t0 = now();
    for (int i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/create/f%d", dir, i);
      int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      sum += write(fd, buf, sizeof buf);
      close(fd);
    }
    t1 = now();
  } else if (!strcmp(mode, "list")) {
    snprintf(path, sizeof path, "%s/list", dir);
    t0 = now();
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) sum++;
    if (d) closedir(d);
    t1 = now();
  } else if (!strcmp(mode, "read") || !strcmp(mode, "reread")) {
    static char buf[1 << 20];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    for (int pass = !strcmp(mode, "reread") ? 0 : 1; pass < 2; pass++) {
      sum = 0;
      t0 = now();
      int fd = open(path, O_RDONLY);
      ssize_t r;
      while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0) sum += r;
      if (fd >= 0) close(fd);
      t1 = now();
    }
  } else return 2;
  printf("%s %lld %lld\n", mode, t1 - t0, sum);
  return 0;
}
