/*
 * args_env.c: arguments and environment.
 * Convention: argv[1] is the preopened directory (e.g. /sandbox), as for
 * every program; it is not touched here. Every further argument is echoed
 * and also looked up as an environment variable name. The runners pass a
 * fixed environment (run-node-wasi.mjs: FIXED_ENV), so the output is
 * deterministic. Exits 0 iff the checks pass (see common.h).
 *
 * Covers: args_sizes_get/args_get (argc, every argv byte-exact, including
 * empty and non-ASCII arguments; byte lengths are printed so an encoding
 * change shows), environ_sizes_get/environ_get (the sorted environment,
 * getenv of named variables, an empty value vs an unset variable).
 */
#include "common.h"

extern char **environ;

static int cmpstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("argc: %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]: \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
  check("argc >= 2 (name and preopen dir)", argc >= 2, "missing argv[1]");
  check("argv[argc] is NULL", argv[argc] == NULL, "not NULL");

  for (int i = 2; i < argc; i++) {
    const char *v = getenv(argv[i]);
    if (v)
      printf("getenv(%s): \"%s\" (%zu bytes)\n", argv[i], v, strlen(v));
    else
      printf("getenv(%s): unset\n", argv[i]);
  }

  int n = 0;
  while (environ && environ[n]) n++;
  printf("environ count: %d\n", n);
  char **sorted = malloc(sizeof(char *) * (size_t)(n + 1));
  int malformed = 0;
  for (int i = 0; i < n; i++) {
    sorted[i] = environ[i];
    if (!strchr(environ[i], '=')) malformed++;
  }
  qsort(sorted, (size_t)n, sizeof *sorted, cmpstr);
  for (int i = 0; i < n; i++) printf("environ: \"%s\"\n", sorted[i]);
  free(sorted);
  check("every environ entry has '='", malformed == 0, "entry without '='");

  return finish();
}
