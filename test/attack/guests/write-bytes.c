// Writes argv[2] KiB of varied bytes (no two 64 KiB chunks alike, so nothing
// is deduplicated) to the file argv[1]; exits 0 once written and closed.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *f = fopen(argv[1], "wb");
  if (!f) { perror(argv[1]); return 1; }
  unsigned long kib = strtoul(argv[2], 0, 10);
  unsigned int x = 12345;
  unsigned char buf[1024];
  for (unsigned long k = 0; k < kib; k++) {
    for (int i = 0; i < 1024; i++) { x = x * 1103515245u + 12345u; buf[i] = (unsigned char)(x >> 16); }
    if (fwrite(buf, 1, sizeof buf, f) != sizeof buf) { perror("write"); return 1; }
  }
  if (fclose(f)) { perror("close"); return 1; }
  return 0;
}
