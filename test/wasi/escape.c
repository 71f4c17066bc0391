// Tries to leave the sandbox in every way a guest can name a path, and prints
// what each attempt gave. Run with the box at / and a host directory at /host.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char *name(int e) {
  switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case EXDEV: return "EXDEV";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOTDIR: return "ENOTDIR";
    default: return "other";
  }
}

// Opens and prints the first line of the file, or the error.
static void try_read(const char *label, const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) { printf("%s: %s\n", label, name(errno)); return; }
  char buf[64] = {0};
  int n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0 && strchr(buf, '\n')) *strchr(buf, '\n') = 0;
  printf("%s: read \"%s\"\n", label, buf);
}

static void result(const char *label, int rc) { printf("%s: %s\n", label, rc == 0 ? "ok" : name(errno)); }

int main(void) {
  try_read("dotdot from root", "/../../../../etc/hostname");
  try_read("dotdot from host mount", "/host/../../../../etc/hostname");
  result("absolute symlink in box", symlink("/etc/secret", "/abs-link"));
  try_read("read via absolute symlink", "/abs-link");
  result("climbing symlink in box", symlink("../../../../../../etc/passwd", "/up-link"));
  try_read("read via climbing symlink", "/up-link");
  result("symlink chain", symlink("/up-link", "/chain-link"));
  try_read("read via chain", "/chain-link");
  try_read("host symlink to host /etc/passwd", "/host/abs-out");
  try_read("host symlink climbing out", "/host/up-out");
  result("guest symlink in host mount", symlink("/etc/passwd", "/host/guest-link"));
  try_read("read via guest symlink in host mount", "/host/guest-link");
  result("hard link box -> host mount", link("/etc/secret", "/host/stolen"));
  result("hard link from outside host mount", link("/host/../../../etc/passwd", "/host/stolen2"));
  result("hard link via host symlink", linkat(AT_FDCWD, "/host/abs-out", AT_FDCWD, "/host/stolen3", AT_SYMLINK_FOLLOW));
  result("rename box -> host mount", rename("/etc/secret", "/host/moved"));
  char longname[400];
  memset(longname, 'n', sizeof longname);
  longname[0] = '/';
  longname[300] = 0;
  try_read("overlong name", longname);
  result("mkdir overlong name", mkdir(longname, 0755));
  return 0;
}
