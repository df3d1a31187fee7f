/* Tiny test helpers shared by the unit tests: assertions that print both values (as libuv's
 * task.h), a fresh temporary folder per test, and a named-case runner. Each test program is
 * its own process under ctest, which kills it at its timeout. */
#ifndef VX_TESTLIB_H
#define VX_TESTLIB_H

#include "vx.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_FAIL(...)                                                                            \
    do {                                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stderr, __VA_ARGS__);                                                          \
        fprintf(stderr, "\n");                                                                 \
        abort();                                                                               \
    } while (0)

#define T_ASSERT(cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) T_FAIL("assertion failed: %s", #cond);                                    \
    } while (0)

#define T_EQ_INT(a, b)                                                                         \
    do {                                                                                       \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                \
        if (t_a_ != t_b_) T_FAIL("%s == %s: got %lld, expected %lld", #a, #b, t_a_, t_b_);     \
    } while (0)

#define T_EQ_STR(a, b)                                                                         \
    do {                                                                                       \
        const char *t_a_ = (a), *t_b_ = (b);                                                   \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                         \
            T_FAIL("%s == %s: got \"%s\", expected \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)",    \
                   t_b_ ? t_b_ : "(null)");                                                    \
    } while (0)

#define T_NEAR(a, b, tol)                                                                      \
    do {                                                                                       \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                         \
        if (!(fabs(t_a_ - t_b_) <= (tol)))                                                     \
            T_FAIL("%s ~ %s: got %.9g, expected %.9g (tol %g)", #a, #b, t_a_, t_b_,            \
                   (double)(tol));                                                             \
    } while (0)

/* Asserts a vx_status call succeeded, printing the error message otherwise. */
#define T_OK(call, errp)                                                                       \
    do {                                                                                       \
        vx_status t_st_ = (call);                                                              \
        if (t_st_ != VX_OK)                                                                    \
            T_FAIL("%s failed: %s (%s)", #call, (errp)->msg, vx_strerror(t_st_));              \
    } while (0)

/* The project's tensor error (DECISIONS.md §2): max|got − want| / max(max|want|, 1e-6) over the
 * whole tensor. A NaN anywhere in got makes it NaN, so `err <= tol` fails. */
double t_rel_err(const float *got, const float *want, int64_t n);

/* Creates a fresh folder under $TMPDIR (or /tmp) named after the test; returns a static-
 * lifetime malloc'd path the test may leak. */
char *t_tempdir(const char *name);
/* Removes a folder tree (best effort). */
void t_rmtree(const char *path);

/* Runs the cases whose name matches argv[1] (all when absent), printing each name. */
typedef struct t_case {
    const char *name;
    void (*fn)(void);
} t_case;
int t_run(int argc, char **argv, const t_case *cases, size_t count);
#define T_RUN(argc, argv, cases) t_run(argc, argv, cases, sizeof(cases) / sizeof((cases)[0]))

#endif
