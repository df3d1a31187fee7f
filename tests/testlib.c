/* Helpers behind testlib.h. */
#define _GNU_SOURCE
#include "testlib.h"

#include <ftw.h>
#include <unistd.h>

char *t_tempdir(const char *name)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char templ[4096];
    snprintf(templ, sizeof templ, "%s/vidx-test-%s-XXXXXX", base, name);
    char *dir = mkdtemp(templ);
    if (!dir) T_FAIL("cannot create a temporary folder under %s", base);
    return strdup(dir);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void t_rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

double t_rel_err(const float *got, const float *want, int64_t n)
{
    double maxdiff = 0, maxref = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates as failure */
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    return maxdiff / (maxref > 1e-6 ? maxref : 1e-6);
}

int t_run(int argc, char **argv, const t_case *cases, size_t count)
{
    int ran = 0;
    for (size_t i = 0; i < count; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
        fprintf(stderr, "-- %s\n", cases[i].name);
        cases[i].fn();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test matches '%s'\n", argc > 1 ? argv[1] : "");
        return 1;
    }
    fprintf(stderr, "%d cases passed\n", ran);
    return 0;
}
