/*
 * Attacker of the mount race (test/attack/mount-race.test.ts): while another
 * party swaps DIR/x between a directory and a symlink out of the mount, goes
 * through DIR/x ROUNDS times: reads, creates, renames, links, stats, sets
 * times, makes directories, lists, unlinks. Prints everything it reads (file
 * bytes, names, link targets), so a test can tell nothing from outside was
 * read, and per errno the failures it saw.
 *
 *   mount_attack DIR ROUNDS ID
 * Waits (polling) for DIR/started, and leaves DIR/done-ID when finished.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long fails[256];
static long oks;

static int check(int rc) {
  if (rc >= 0) {
    oks++;
    return rc;
  }
  fails[errno > 0 && errno < 256 ? errno : 0]++;
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const char *dir = argv[1];
  long rounds = atol(argv[2]);
  const char *id = argv[3];
  char started[512], done[512];
  snprintf(started, sizeof started, "%s/started", dir);
  snprintf(done, sizeof done, "%s/done-%s", dir, id);
  long polls = 0;
  while (access(started, F_OK) != 0)
    if (++polls > 100000000L) {
      printf("the swapper never started\n");
      return 3;
    }

  char secret[512], made[512], renamed[512], linked[512], sub[512], x[512], lnk[512], buf[257];
  snprintf(secret, sizeof secret, "%s/x/secret", dir);
  snprintf(x, sizeof x, "%s/x", dir);
  for (long i = 0; i < rounds; i++) {
    snprintf(made, sizeof made, "%s/x/new-%s-%ld", dir, id, i);
    snprintf(renamed, sizeof renamed, "%s/x/ren-%s-%ld", dir, id, i);
    snprintf(linked, sizeof linked, "%s/x/lnk-%s-%ld", dir, id, i);
    snprintf(sub, sizeof sub, "%s/x/d-%s-%ld", dir, id, i);
    snprintf(lnk, sizeof lnk, "%s/x/sl-%s-%ld", dir, id, i);

    int fd = check(open(secret, O_RDONLY));
    if (fd >= 0) {
      ssize_t n = read(fd, buf, sizeof buf - 1);
      if (n >= 0) {
        buf[n] = 0;
        printf("read: %s", buf);
      } else check(-1);
      close(fd);
    }
    fd = check(open(made, O_CREAT | O_EXCL | O_WRONLY, 0644));
    if (fd >= 0) {
      if (write(fd, "pwned\n", 6) != 6) check(-1);
      close(fd);
    }
    check(rename(made, renamed));
    check(link(renamed, linked));
    struct stat st;
    check(stat(secret, &st));
    struct timespec t[2] = {{0, 0}, {0, 0}};
    check(utimensat(AT_FDCWD, secret, t, 0));
    check(mkdir(sub, 0755));
    check(rmdir(sub));
    check(symlink("secret", lnk));
    ssize_t n = check(readlink(lnk, buf, sizeof buf - 1));
    if (n >= 0) {
      buf[n] = 0;
      printf("link: %s\n", buf);
    }
    DIR *d = opendir(x);
    if (!d) check(-1);
    else {
      struct dirent *e;
      while ((e = readdir(d))) printf("name: %s\n", e->d_name);
      closedir(d);
    }
    check(unlink(lnk));
    check(unlink(linked));
    check(unlink(renamed));
    unlink(made);
  }
  printf("ok %ld\n", oks);
  for (int e = 0; e < 256; e++)
    if (fails[e]) printf("errno %d: %ld\n", e, fails[e]);
  fflush(stdout);
  int fd = open(done, O_CREAT | O_WRONLY, 0644);
  if (fd >= 0) close(fd);
  return 0;
}
