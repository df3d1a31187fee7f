/* Fuzz target for search/'s query translator: any bytes as a user-typed query. The translator
 * either refuses with a message (VX_EINVAL, VX_ELIMIT) or returns an FTS5 expression that
 * SQLite's FTS5 accepts: every expression is run against a real (tiny) catalog made once in a
 * temporary folder, and any FTS5 error aborts. Seed corpus: tests/fuzz/corpus/query/. */
#include "srch.h"
#include "st.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static st_store *store; /* made on the first input, kept for the process */

static st_store *open_store(void)
{
    char dir[] = "/tmp/vidx-fuzz-query-XXXXXX";
    if (!mkdtemp(dir)) abort();
    vx_err err = {0};
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    st_store *s;
    int64_t lib, vid, sid;
    if (st_open(dir, &o, &s, &err) || st_library_add(s, "l", "/l", &lib, &err)) abort();
    st_video v = {0};
    v.library_id = lib;
    v.location = "/l/a.mp4";
    v.duration_ms = 4000;
    st_segment g = {.level = ST_LEVEL_WINDOW, .start_ms = 0, .end_ms = 4000};
    if (st_video_upsert(s, &v, &vid, &err)) abort();
    g.video_id = vid;
    if (st_segment_add(s, &g, &sid, &err) ||
        st_text_add(s, sid, "asr", 0, 4000, "the red car near the naïve café OR not", &err))
        abort();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store) {
        setenv("VIDX_LOG", "error", 0);
        store = open_store();
    }
    char *query = malloc(size + 1);
    if (!query) return 0;
    memcpy(query, data, size);
    query[size] = 0; /* a NUL inside ends the query, as it would in a C string */
    vx_err err = {0};
    char *fts = NULL;
    vx_status st = srch_query_translate(query, &fts, &err);
    if (st != VX_OK) {
        if ((st != VX_EINVAL && st != VX_ELIMIT) || !err.msg[0] || fts) abort();
        free(query);
        return 0;
    }
    /* quotes balance: the output is made of whole "strings" */
    size_t quotes = 0;
    for (const char *p = fts; *p; p++)
        quotes += *p == '"';
    if (quotes % 2) abort();
    st_text_match *m = NULL;
    size_t n = 0;
    if (st_text_find(store, fts, 5, "[", "]", 8, &m, &n, &err) != VX_OK) abort();
    st_text_matches_free(m, n);
    srch_results r;
    srch_options o = srch_options_default();
    if (srch_search(store, query, &o, &r, &err) != VX_OK) abort();
    srch_results_free(&r);
    free(fts);
    free(query);
    return 0;
}
