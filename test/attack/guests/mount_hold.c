// Holds descriptors in a host mount and never exits: opens COUNT files under
// DIR, says "held N", then walks DIR/a/b/c/d forever, so the host that stops
// it catches it with files open and, most likely, a walk in flight.
//   mount_hold DIR COUNT
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *dir = argv[1];
  int count = atoi(argv[2]), held = 0;
  char path[512];
  snprintf(path, sizeof path, "%s/held", dir);
  for (int i = 0; i < count; i++) {
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    if (fd < 0) break;
    held++;
  }
  printf("held %d\n", held);
  fflush(stdout);
  snprintf(path, sizeof path, "%s/a/b/c/d", dir);
  struct stat st;
  for (volatile unsigned long n = 0;; n++) stat(path, &st);
}
