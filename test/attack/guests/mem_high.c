// Every WASI call with every pointer above 2 GiB, compared with the same calls
// from low memory; then calls with pointers out of bounds (EFAULT, no effect).
// Usage: mem_high      memory of 2 GiB + 2 MiB, the high calls just above 2 GiB
//        mem_high top  memory of 4 GiB, the high calls in the last 2 MiB; the
//                      faults are ranges that wrap past 2^32
// Prints "low ..." and "high ..." lines, then "fault ..." lines.
// cflags: -Wl,--max-memory=4294967296
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define IMP(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
typedef uint32_t P;
IMP(args_sizes_get) int32_t w_args_sizes_get(P, P);
IMP(args_get) int32_t w_args_get(P, P);
IMP(environ_sizes_get) int32_t w_environ_sizes_get(P, P);
IMP(environ_get) int32_t w_environ_get(P, P);
IMP(clock_res_get) int32_t w_clock_res_get(uint32_t, P);
IMP(clock_time_get) int32_t w_clock_time_get(uint32_t, uint64_t, P);
IMP(random_get) int32_t w_random_get(P, uint32_t);
IMP(fd_prestat_get) int32_t w_fd_prestat_get(uint32_t, P);
IMP(fd_prestat_dir_name) int32_t w_fd_prestat_dir_name(uint32_t, P, uint32_t);
IMP(path_create_directory) int32_t w_path_create_directory(uint32_t, P, uint32_t);
IMP(path_remove_directory) int32_t w_path_remove_directory(uint32_t, P, uint32_t);
IMP(path_open) int32_t w_path_open(uint32_t, uint32_t, P, uint32_t, uint32_t, uint64_t, uint64_t, uint32_t, P);
IMP(fd_write) int32_t w_fd_write(uint32_t, P, uint32_t, P);
IMP(fd_read) int32_t w_fd_read(uint32_t, P, uint32_t, P);
IMP(fd_pwrite) int32_t w_fd_pwrite(uint32_t, P, uint32_t, uint64_t, P);
IMP(fd_pread) int32_t w_fd_pread(uint32_t, P, uint32_t, uint64_t, P);
IMP(fd_seek) int32_t w_fd_seek(uint32_t, int64_t, uint32_t, P);
IMP(fd_tell) int32_t w_fd_tell(uint32_t, P);
IMP(fd_filestat_get) int32_t w_fd_filestat_get(uint32_t, P);
IMP(fd_fdstat_get) int32_t w_fd_fdstat_get(uint32_t, P);
IMP(fd_allocate) int32_t w_fd_allocate(uint32_t, uint64_t, uint64_t);
IMP(fd_close) int32_t w_fd_close(uint32_t);
IMP(fd_readdir) int32_t w_fd_readdir(uint32_t, P, uint32_t, uint64_t, P);
IMP(path_filestat_get) int32_t w_path_filestat_get(uint32_t, uint32_t, P, uint32_t, P);
IMP(path_filestat_set_times) int32_t w_path_filestat_set_times(uint32_t, uint32_t, P, uint32_t, uint64_t, uint64_t, uint32_t);
IMP(path_symlink) int32_t w_path_symlink(P, uint32_t, uint32_t, P, uint32_t);
IMP(path_readlink) int32_t w_path_readlink(uint32_t, P, uint32_t, P, uint32_t, P);
IMP(path_link) int32_t w_path_link(uint32_t, uint32_t, P, uint32_t, uint32_t, P, uint32_t);
IMP(path_rename) int32_t w_path_rename(uint32_t, P, uint32_t, uint32_t, P, uint32_t);
IMP(path_unlink_file) int32_t w_path_unlink_file(uint32_t, P, uint32_t);
IMP(poll_oneoff) int32_t w_poll_oneoff(P, P, uint32_t, P);

#define ALL 0x1FFFFFFFull
#define ROOT 3
#define REGION (128 * 1024)

static uint8_t low_region[REGION] __attribute__((aligned(16)));
static uint32_t cur;
static const char *mode;

static void *at(P a) { return (void *)(uintptr_t)a; }
/** Copies n bytes into the region; returns their guest address. */
static P put(const void *src, uint32_t n) {
  P a = cur;
  memcpy(at(a), src, n);
  cur += (n + 15) & ~15u;
  return a;
}
/** n bytes of the region, filled with 0xEE. */
static P res(uint32_t n) {
  P a = cur;
  memset(at(a), 0xEE, n);
  cur += (n + 15) & ~15u;
  return a;
}
static uint32_t rd32(P a) { uint32_t v; memcpy(&v, at(a), 4); return v; }
static uint64_t rd64(P a) { uint64_t v; memcpy(&v, at(a), 8); return v; }
static uint16_t rd16(P a) { uint16_t v; memcpy(&v, at(a), 2); return v; }
static uint8_t rd8(P a) { return *(uint8_t *)at(a); }

/** A path in the region: "<mode>/<rel>" (or just mode). */
static char pbuf[256];
static uint32_t plen;
static P path(const char *rel) {
  if (rel) snprintf(pbuf, sizeof pbuf, "%s/%s", mode, rel);
  else snprintf(pbuf, sizeof pbuf, "%s", mode);
  plen = strlen(pbuf);
  return put(pbuf, plen);
}
#define PATH(rel) path(rel), plen
static P lit(const char *s) { plen = strlen(s); return put(s, plen); }
#define LIT(s) lit(s), plen

static P iov1(P buf, uint32_t len) {
  uint32_t v[2] = {buf, len};
  return put(v, 8);
}
static P iov2(P b1, uint32_t l1, P b2, uint32_t l2) {
  uint32_t v[4] = {b1, l1, b2, l2};
  return put(v, 16);
}
static void show(const char *what, P buf, uint32_t n) {
  printf("%s %s [", mode, what);
  for (uint32_t i = 0; i < n; i++) {
    uint8_t c = rd8(buf + i);
    if (c >= 32 && c < 127) putchar(c);
    else printf("\\x%02x", c);
  }
  printf("]\n");
}
#define OUT(fmt, ...) printf("%s " fmt "\n", mode, __VA_ARGS__)

static void list(const char *what, uint32_t dfd, P buf, uint32_t len) {
  P used = res(4);
  int r = w_fd_readdir(dfd, buf, len, 0, used);
  uint32_t n = rd32(used);
  OUT("%s readdir=%d used=%u", what, r, n);
  for (uint32_t o = 0; o + 24 <= n;) {
    uint64_t next = rd64(buf + o);
    uint32_t namlen = rd32(buf + o + 16);
    uint8_t type = rd8(buf + o + 20);
    char name[256] = {0};
    memcpy(name, at(buf + o + 24), namlen < 255 ? namlen : 255);
    OUT("%s  entry next=%llu type=%u name=%s", what, (unsigned long long)next, type, name);
    o += 24 + namlen;
  }
}

static void suite(const char *m, P base, P bigbuf, uint32_t biglen) {
  mode = m;
  cur = base;
  uint32_t n;

  P c = res(4), s = res(4);
  OUT("args_sizes_get=%d count=%u size=%u", w_args_sizes_get(c, s), rd32(c), rd32(s));
  n = rd32(c);
  P argv = res(4 * n), abuf = res(rd32(s));
  OUT("args_get=%d", w_args_get(argv, abuf));
  for (uint32_t i = 0; i < n; i++) OUT("arg %u at+%u %s", i, rd32(argv + 4 * i) - abuf, (char *)at(rd32(argv + 4 * i)));
  c = res(4), s = res(4);
  OUT("environ_sizes_get=%d count=%u size=%u", w_environ_sizes_get(c, s), rd32(c), rd32(s));
  n = rd32(c);
  P envp = res(4 * n), ebuf = res(rd32(s));
  OUT("environ_get=%d", w_environ_get(envp, ebuf));
  for (uint32_t i = 0; i < n; i++) OUT("env %u at+%u %s", i, rd32(envp + 4 * i) - ebuf, (char *)at(rd32(envp + 4 * i)));

  P t = res(8);
  OUT("clock_res_get=%d res=%llu", w_clock_res_get(1, t), (unsigned long long)rd64(t));
  OUT("clock_time_get=%d plausible=%d", w_clock_time_get(0, 1, t), rd64(t) > 1600000000000000000ull);

  P rnd = res(256);
  int rr = w_random_get(rnd, 256);
  int changed = 0;
  for (int i = 0; i < 256; i++) changed += rd8(rnd + i) != 0xEE;
  OUT("random_get=%d changed>200=%d", rr, changed > 200);

  P pre = res(8);
  OUT("fd_prestat_get=%d tag=%u len=%u", w_fd_prestat_get(ROOT, pre), rd8(pre), rd32(pre + 4));
  P pname = res(rd32(pre + 4));
  OUT("fd_prestat_dir_name=%d", w_fd_prestat_dir_name(ROOT, pname, rd32(pre + 4)));
  show("prestat name", pname, rd32(pre + 4));

  OUT("path_create_directory=%d", w_path_create_directory(ROOT, PATH(NULL)));
  OUT("path_create_directory sub=%d", w_path_create_directory(ROOT, PATH("sub")));
  P fdp = res(4);
  OUT("path_open=%d", w_path_open(ROOT, 0, PATH("high-name.txt"), 1 | 8, ALL, ALL, 0, fdp));
  uint32_t fd = rd32(fdp);
  OUT("fd=%u", fd);

  P nw = res(4);
  P iv = iov2(lit("hello "), 6, lit("from high memory\n"), 17);
  OUT("fd_write=%d n=%u", w_fd_write(fd, iv, 2, nw), rd32(nw));
  P off = res(8);
  OUT("fd_seek=%d at=%llu", w_fd_seek(fd, 0, 0, off), (unsigned long long)rd64(off));
  P b1 = res(4), b2 = res(64), nr = res(4);
  OUT("fd_read=%d n=%u", w_fd_read(fd, iov2(b1, 4, b2, 64), 2, nr), rd32(nr));
  show("read 1", b1, 4);
  show("read 2", b2, rd32(nr) - 4);
  OUT("fd_tell=%d at=%llu", w_fd_tell(fd, off), (unsigned long long)rd64(off));
  OUT("fd_pwrite=%d n=%u", w_fd_pwrite(fd, iov1(lit("HE"), 2), 1, 0, nw), rd32(nw));
  P pb = res(8);
  OUT("fd_pread=%d n=%u", w_fd_pread(fd, iov1(pb, 8), 1, 2, nr), rd32(nr));
  show("pread", pb, rd32(nr));

  P st = res(64);
  OUT("fd_filestat_get=%d type=%u nlink=%llu size=%llu", w_fd_filestat_get(fd, st), rd8(st + 16), (unsigned long long)rd64(st + 24), (unsigned long long)rd64(st + 32));
  P fs = res(24);
  OUT("fd_fdstat_get=%d type=%u flags=%u base=%llx inh=%llx", w_fd_fdstat_get(fd, fs), rd8(fs), rd16(fs + 2), (unsigned long long)rd64(fs + 8), (unsigned long long)rd64(fs + 16));
  OUT("fd_allocate=%d", w_fd_allocate(fd, 0, 100));
  OUT("fd_allocate overflow=%d", w_fd_allocate(fd, 1, 0x7FFFFFFFFFFFFFFFull));
  OUT("fd_allocate u64 overflow=%d", w_fd_allocate(fd, 0xFFFFFFFFFFFFFFF0ull, 0x20));
  OUT("fd_allocate negative=%d", w_fd_allocate(fd, 0xFFFFFFFFFFFFFFFFull, 1));
  w_fd_filestat_get(fd, st);
  OUT("size after allocate=%llu", (unsigned long long)rd64(st + 32));

  OUT("path_filestat_get=%d type=%u size=%llu", w_path_filestat_get(ROOT, 1, PATH("high-name.txt"), st), rd8(st + 16), (unsigned long long)rd64(st + 32));
  OUT("path_filestat_set_times=%d", w_path_filestat_set_times(ROOT, 0, PATH("high-name.txt"), 1234000000000ull, 5678000000000ull, 1 | 4));
  w_path_filestat_get(ROOT, 0, PATH("high-name.txt"), st);
  OUT("atim=%llu mtim=%llu", (unsigned long long)rd64(st + 40), (unsigned long long)rd64(st + 48));
  OUT("path_symlink=%d", w_path_symlink(LIT("high-name.txt"), ROOT, PATH("link")));
  P lb = res(64), lu = res(4);
  OUT("path_readlink=%d used=%u", w_path_readlink(ROOT, PATH("link"), lb, 64, lu), rd32(lu));
  show("readlink", lb, rd32(lu));
  P o1 = path("high-name.txt"); uint32_t o1l = plen;
  P h1 = path("hard.txt"); uint32_t h1l = plen;
  OUT("path_link=%d", w_path_link(ROOT, 0, o1, o1l, ROOT, h1, h1l));
  P m1 = path("moved.txt"); uint32_t m1l = plen;
  OUT("path_rename=%d", w_path_rename(ROOT, h1, h1l, ROOT, m1, m1l));

  P events = res(3 * 32), nev = res(4);
  uint8_t subs[2 * 48] = {0};
  uint64_t ud = 7; memcpy(subs, &ud, 8); subs[8] = 0; // clock
  uint32_t id = 1; memcpy(subs + 16, &id, 4);
  uint64_t timeout = 1000000; memcpy(subs + 24, &timeout, 8);
  ud = 9; memcpy(subs + 48, &ud, 8); subs[56] = 1; memcpy(subs + 64, &fd, 4); // fd_read
  OUT("poll_oneoff=%d n=%u", w_poll_oneoff(put(subs, 96), events, 2, nev), rd32(nev));
  for (uint32_t i = 0; i < rd32(nev); i++) OUT(" event ud=%llu err=%u type=%u", (unsigned long long)rd64(events + 32 * i), rd16(events + 32 * i + 8), rd8(events + 32 * i + 10));
  OUT("poll_oneoff clock=%d n=%u", w_poll_oneoff(put(subs, 48), events, 1, nev), rd32(nev));
  for (uint32_t i = 0; i < rd32(nev); i++) OUT(" event ud=%llu err=%u type=%u", (unsigned long long)rd64(events + 32 * i), rd16(events + 32 * i + 8), rd8(events + 32 * i + 10));

  OUT("fd_close=%d", w_fd_close(fd));
  OUT("path_open dir=%d", w_path_open(ROOT, 0, PATH(NULL), 2, ALL, ALL, 0, fdp));
  uint32_t dfd = rd32(fdp);
  list("dir", dfd, res(4096), 4096);
  list("big buffer", dfd, bigbuf, biglen);
  OUT("fd_close dir=%d", w_fd_close(dfd));
  OUT("path_unlink_file=%d", w_path_unlink_file(ROOT, m1, m1l));
  OUT("path_unlink_file link=%d", w_path_unlink_file(ROOT, PATH("link")));
  OUT("path_remove_directory=%d", w_path_remove_directory(ROOT, PATH("sub")));
}

static uint64_t memsize(void) { return (uint64_t)__builtin_wasm_memory_size(0) * 65536; }

#define FAULT(label, call) printf("fault %s %d\n", label, (int)(call))

static void faults(P base) {
  mode = "fault";
  cur = base;
  P end = (P)memsize();
  P fdp = res(4), st = res(64), nw = res(4);
  printf("fault setup mkdir %d\n", w_path_create_directory(ROOT, LIT("fault")));
  FAULT("path_open path", w_path_open(ROOT, 0, end - 3, 10, 1, ALL, ALL, 0, fdp));
  FAULT("path_open path overflow", w_path_open(ROOT, 0, base, 0xFFFFFFFF, 1, ALL, ALL, 0, fdp));
  FAULT("path_open out", w_path_open(ROOT, 0, LIT("fault/created.txt"), 1, ALL, ALL, 0, end - 2));
  printf("fault after path_open out: stat %d\n", w_path_filestat_get(ROOT, 0, LIT("fault/created.txt"), st));
  printf("fault setup open %d\n", w_path_open(ROOT, 0, LIT("fault/w.txt"), 1, ALL, ALL, 0, fdp));
  uint32_t fd = rd32(fdp);
  P good = lit("AAAA");
  FAULT("fd_write second iovec", w_fd_write(fd, iov2(good, 4, end - 2, 4), 2, nw));
  FAULT("fd_write len overflow", w_fd_write(fd, iov1(base, 0xFFFFFFFF), 1, nw));
  FAULT("fd_write iovs past end", w_fd_write(fd, 0xFFFFFFF8, 2, nw));
  FAULT("fd_write count*8 past end", w_fd_write(fd, iov1(good, 4), 0x20000000, nw));
  FAULT("fd_write nwritten", w_fd_write(fd, iov1(good, 4), 1, end - 1));
  FAULT("fd_pwrite iovec", w_fd_pwrite(fd, iov2(good, 4, end, 1), 2, 0, nw));
  w_fd_filestat_get(fd, st);
  printf("fault after writes: size %llu\n", (unsigned long long)rd64(st + 32));
  printf("fault setup write %d\n", w_fd_write(fd, iov1(good, 4), 1, nw));
  P off = res(8);
  w_fd_seek(fd, 0, 0, off);
  P rb = res(8);
  FAULT("fd_read nread", w_fd_read(fd, iov1(rb, 4), 1, end));
  FAULT("fd_read iovec", w_fd_read(fd, iov2(rb, 4, end - 1, 2), 2, nw));
  FAULT("fd_pread iovec", w_fd_pread(fd, iov1(end - 1, 2), 1, 0, nw));
  FAULT("fd_pread count", w_fd_pread(fd, iov1(rb, 4), 0xFFFFFFFF, 0, nw));
  FAULT("fd_seek out", w_fd_seek(fd, 3, 0, end - 4));
  w_fd_tell(fd, off);
  printf("fault after reads and seek: position %llu\n", (unsigned long long)rd64(off));
  FAULT("fd_tell out", w_fd_tell(fd, 0xFFFFFFFF));
  FAULT("fd_filestat_get", w_fd_filestat_get(fd, end - 63));
  FAULT("fd_fdstat_get", w_fd_fdstat_get(fd, end - 8));
  FAULT("path_filestat_get out", w_path_filestat_get(ROOT, 0, LIT("fault/w.txt"), end - 10));
  FAULT("clock_time_get", w_clock_time_get(0, 1, end - 4));
  FAULT("clock_res_get", w_clock_res_get(0, 0xFFFFFFFC));
  FAULT("random_get past end", w_random_get(end - 4, 8));
  FAULT("random_get overflow", w_random_get(0xFFFFFFFF, 2));
  FAULT("args_sizes_get", w_args_sizes_get(end - 2, res(4)));
  FAULT("args_get argv", w_args_get(end - 2, res(64)));
  FAULT("args_get buf", w_args_get(res(64), end - 1));
  FAULT("environ_sizes_get", w_environ_sizes_get(res(4), end));
  FAULT("environ_get buf", w_environ_get(res(64), end - 1));
  P sub = res(48);
  memset(at(sub), 0, 48);
  *(uint32_t *)at(sub + 16) = 1;
  FAULT("poll_oneoff in", w_poll_oneoff(end - 40, res(32), 1, res(4)));
  FAULT("poll_oneoff out", w_poll_oneoff(sub, end - 16, 1, res(4)));
  FAULT("poll_oneoff nevents", w_poll_oneoff(sub, res(32), 1, end - 3));
  FAULT("poll_oneoff nsubs", w_poll_oneoff(sub, res(32), 0x10000000, res(4)));
  FAULT("fd_prestat_get", w_fd_prestat_get(ROOT, end - 4));
  FAULT("fd_prestat_dir_name", w_fd_prestat_dir_name(ROOT, end - 1, 2));
  printf("fault setup open dir %d\n", w_path_open(ROOT, 0, LIT("fault"), 2, ALL, ALL, 0, fdp));
  uint32_t dfd = rd32(fdp);
  FAULT("fd_readdir overflow", w_fd_readdir(dfd, base, 0xFFFFFFFF, 0, res(4)));
  FAULT("fd_readdir used", w_fd_readdir(dfd, res(256), 256, 0, end - 2));
  printf("fault setup symlink %d\n", w_path_symlink(LIT("w.txt"), ROOT, LIT("fault/l")));
  FAULT("path_readlink buf", w_path_readlink(ROOT, LIT("fault/l"), end - 2, 10, res(4)));
  FAULT("path_readlink used", w_path_readlink(ROOT, LIT("fault/l"), res(16), 16, end));
  FAULT("path_symlink target", w_path_symlink(end - 1, 5, ROOT, LIT("fault/l2")));
  P from = lit("fault/w.txt"); uint32_t froml = plen;
  FAULT("path_rename new path", w_path_rename(ROOT, from, froml, ROOT, end - 2, 8));
  printf("fault after rename: stat %d\n", w_path_filestat_get(ROOT, 0, from, froml, st));
  FAULT("path_link new path", w_path_link(ROOT, 0, from, froml, ROOT, 0xFFFFFFF0, 0x20));
  FAULT("path_unlink_file", w_path_unlink_file(ROOT, end - 1, 4));
  FAULT("path_create_directory", w_path_create_directory(ROOT, end, 1));
  FAULT("path_remove_directory", w_path_remove_directory(ROOT, end - 5, 6));
  FAULT("path_filestat_set_times", w_path_filestat_set_times(ROOT, 0, end - 1, 3, 0, 0, 2));
  // In bounds but longer than any path: refused before anything is copied.
  FAULT("path too long", w_path_create_directory(ROOT, base, 1 << 20));
  w_fd_close(dfd);
  w_fd_close(fd);
}

/** With all 4 GiB of memory every address is valid: only a range that wraps past 2^32 is out of bounds. */
static void top_faults(void) {
  mode = "fault";
  cur = 0xFFF80000u;
  P fdp = res(4), nw = res(4);
  printf("fault setup open %d\n", w_path_open(ROOT, 0, LIT("top.txt"), 1, ALL, ALL, 0, fdp));
  uint32_t fd = rd32(fdp);
  printf("fault setup random_get to the last byte %d\n", w_random_get(0xFFFFFFF0u, 0x10));
  printf("fault setup clock_time_get at the last 8 bytes %d\n", w_clock_time_get(0, 1, 0xFFFFFFF8u));
  FAULT("random_get wraps", w_random_get(0xFFFFFFF0u, 0x20));
  FAULT("fd_write buffer wraps", w_fd_write(fd, iov1(0xFFFFFFF0u, 0x20), 1, nw));
  FAULT("fd_write iovec array wraps", w_fd_write(fd, 0xFFFFFFFCu, 1, nw));
  FAULT("fd_write nwritten wraps", w_fd_write(fd, iov1(cur, 4), 1, 0xFFFFFFFEu));
  FAULT("clock_time_get wraps", w_clock_time_get(0, 1, 0xFFFFFFFCu));
  FAULT("fd_readdir wraps", w_fd_readdir(ROOT, 0x10, 0xFFFFFFFFu, 0, res(4)));
  FAULT("path_open path wraps", w_path_open(ROOT, 0, 0xFFFFFFFEu, 4, 1, ALL, ALL, 0, fdp));
  FAULT("poll_oneoff wraps", w_poll_oneoff(0xFFFFFFE0u, res(32), 1, res(4)));
  FAULT("fd_filestat_get wraps", w_fd_filestat_get(fd, 0xFFFFFFF0u));
  P st = res(64);
  w_fd_filestat_get(fd, st);
  printf("fault after writes: size %llu\n", (unsigned long long)rd64(st + 32));
  w_fd_close(fd);
}

int main(int argc, char **argv) {
  int top = argc > 1 && strcmp(argv[1], "top") == 0;
  // Grow memory to 2 GiB + 2 MiB (the "high" region starts 64 KiB above 2 GiB), or to 4 GiB.
  uint64_t want = top ? 1ull << 32 : (1ull << 31) + (2u << 20);
  if (__builtin_wasm_memory_grow(0, (want - memsize()) / 65536) == (size_t)-1) {
    printf("memory.grow failed\n");
    return 1;
  }
  P high = top ? 0xFFE00000u : 0x80010000u;
  printf("memory %llu\n", (unsigned long long)memsize());
  // The big-buffer readdir: low, with a length of 2 GiB; high, up to the end of memory.
  suite("low", (P)(uintptr_t)low_region, (P)(uintptr_t)low_region + REGION / 2, 0x80000000u);
  suite("high", high, high + (1u << 20), (P)(memsize() - (high + (1u << 20))));
  if (top) top_faults();
  else faults(high);
  return 0;
}
