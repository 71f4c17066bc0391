/*
 * Special files in a host mount (test/attack/mount-errno.test.ts): a FIFO
 * with no writer, a unix socket, symlinks that would lead out. Each call
 * must answer with a WASI errno at once: never hang, never trap.
 *
 *   mount_special DIR     (DIR/fifo and DIR/sock made by the host)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *name(int e) {
  switch (e) {
    case 0: return "ok";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ENXIO: return "ENXIO";
    case EPERM: return "EPERM";
    case ESPIPE: return "ESPIPE";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    default: return "other";
  }
}

static char buf[64];
static char path[512];
static const char *at(const char *dir, const char *n) {
  snprintf(path, sizeof path, "%s/%s", dir, n);
  return path;
}
static void result(const char *what, int rc) {
  printf("%s: %s", what, rc < 0 ? name(errno) : "ok");
  if (rc < 0 && !strcmp(name(errno), "other")) printf(" (%d)", errno);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  const char *dir = argv[1];
  struct stat st;
  result("fifo stat", stat(at(dir, "fifo"), &st));
  int fd = open(at(dir, "fifo"), O_RDONLY);
  result("fifo open for reading", fd);
  if (fd >= 0) {
    result("fifo read", (int)read(fd, buf, sizeof buf));
    result("fifo pread", (int)pread(fd, buf, sizeof buf, 0));
    close(fd);
  }
  fd = open(at(dir, "fifo"), O_WRONLY);
  result("fifo open for writing", fd);
  if (fd >= 0) {
    result("fifo write", (int)write(fd, "x", 1));
    close(fd);
  }
  result("socket open", open(at(dir, "sock"), O_RDONLY));
  result("absolute symlink", symlink("/etc", at(dir, "abs")));
  result("climbing symlink", symlink("../../../outside", at(dir, "up")));
  result("read through the climbing symlink", open(at(dir, "up/secret"), O_RDONLY));
  DIR *d = opendir(at(dir, "up"));
  result("list through the climbing symlink", d ? 0 : -1);
  if (d) closedir(d);
  result("create through the climbing symlink", open(at(dir, "up/new"), O_CREAT | O_WRONLY, 0644));
  result("mkdir through the climbing symlink", mkdir(at(dir, "up/made"), 0755));
  result("remove the climbing symlink", unlink(at(dir, "up")));
  return 0;
}
