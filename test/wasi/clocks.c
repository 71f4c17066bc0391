/*
 * clocks.c: clocks and randomness.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox); this
 * program creates nothing but still sets up argv[1]/clocks like the others.
 * Prints one line per check and exits 0 iff all checks pass (see common.h).
 * Never prints times or random bytes: only relations.
 *
 * Covers: CLOCK_REALTIME after 2020-01-01 and before 2100, time() and
 * gettimeofday() agreeing with it, CLOCK_MONOTONIC non-decreasing over 10000
 * reads and advancing across a sleep, clock_getres of both clocks in
 * (0, 1 s], the process/thread CPU-time clocks through raw clock_time_get
 * (observation: optional in preview1), an invalid clock id (EINVAL),
 * getentropy of 64 bytes (not all zero, two draws differ), getentropy of
 * 256 bytes (the maximum) and 257 bytes (EIO in wasi-libc), and the raw
 * random_get with a zero length.
 */
#include "common.h"

#include <sys/time.h>
#include <time.h>
#include <wasi/api.h>

int main(int argc, char **argv) {
  setup(argc, argv, "clocks");
  struct timespec t, r;

  check_ok("clock_gettime REALTIME", clock_gettime(CLOCK_REALTIME, &t));
  check("REALTIME after 2020", t.tv_sec > 1577836800, "too early");
  check("REALTIME before 2100", t.tv_sec < 4102444800LL, "too late");
  check("REALTIME tv_nsec in range", t.tv_nsec >= 0 && t.tv_nsec < 1000000000L, "out of range");
  time_t now = time(NULL);
  check("time() agrees with REALTIME", now >= t.tv_sec && now - t.tv_sec < 60, "disagrees");
  struct timeval tv;
  gettimeofday(&tv, NULL);
  check("gettimeofday agrees", tv.tv_sec >= t.tv_sec && tv.tv_sec - t.tv_sec < 60 && tv.tv_usec >= 0 &&
        tv.tv_usec < 1000000, "disagrees");

  check_ok("clock_gettime MONOTONIC", clock_gettime(CLOCK_MONOTONIC, &t));
  long long prev = (long long)t.tv_sec * 1000000000LL + t.tv_nsec, first = prev;
  int mono_ok = 1;
  for (int i = 0; i < 10000; i++) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long cur = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    if (cur < prev) mono_ok = 0;
    prev = cur;
  }
  check("MONOTONIC non-decreasing over 10000 reads", mono_ok, "went backwards");
  struct timespec ms10 = {0, 10000000L};
  nanosleep(&ms10, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t);
  long long later = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
  check("MONOTONIC advances across a 10ms sleep", later - first >= 10000000LL, "did not advance");

  check_ok("clock_getres REALTIME", clock_getres(CLOCK_REALTIME, &r));
  check("REALTIME resolution in (0, 1s]", (r.tv_sec == 0 && r.tv_nsec > 0) || (r.tv_sec == 1 && r.tv_nsec == 0), "out of range");
  check_ok("clock_getres MONOTONIC", clock_getres(CLOCK_MONOTONIC, &r));
  check("MONOTONIC resolution in (0, 1s]", (r.tv_sec == 0 && r.tv_nsec > 0) || (r.tv_sec == 1 && r.tv_nsec == 0), "out of range");

  /* CPU-time clocks are optional in preview1: observations only. */
  __wasi_timestamp_t ts = 0, ts2 = 0;
  __wasi_errno_t e = __wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &ts);
  volatile unsigned long spin = 0;
  for (unsigned long i = 0; i < 20000000UL; i++) spin += i;
  (void)spin;
  if (e == 0) e = __wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &ts2);
  observe("process cputime clock", "%s", e ? errname(e) : ts2 >= ts ? "ok, non-decreasing" : "ok, went backwards");
  e = __wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &ts);
  observe("thread cputime clock", "%s", e ? errname(e) : "ok");
  e = __wasi_clock_time_get(99, 1, &ts);
  check("invalid clock id", e == __WASI_ERRNO_INVAL, e ? errname(e) : "succeeded");
  e = __wasi_clock_res_get(99, &ts);
  check("invalid clock id for res_get", e == __WASI_ERRNO_INVAL, e ? errname(e) : "succeeded");

  unsigned char a[64], b[64];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  check_ok("getentropy 64", getentropy(a, sizeof a));
  int nonzero = 0;
  for (int i = 0; i < 64; i++) nonzero |= a[i];
  check("entropy not all zero", nonzero, "all zero");
  getentropy(b, sizeof b);
  check("two draws differ", memcmp(a, b, sizeof a) != 0, "identical");
  unsigned char big[257];
  check_ok("getentropy 256", getentropy(big, 256));
  check_err("getentropy 257", getentropy(big, 257), EIO);
  check("random_get 0 bytes", __wasi_random_get(big, 0) == 0, "error");

  return finish();
}
