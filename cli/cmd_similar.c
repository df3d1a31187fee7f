/* vidx similar SEGMENT_ID: the segments most like an indexed one, from its stored vectors
 * (every vector space it has: vision, speech), through the query engine (QRY_SEGMENT). Needs no
 * model: the vectors are in the catalog. Printing is `vidx search`'s. */
#include "cli.h"
#include "qry.h"
#include "srch.h"
#include "st.h"

#include <stdlib.h>
#include <string.h>

int cmd_similar(const cli_globals *g, int argc, char **argv)
{
    qry_request rq = qry_request_default();
    rq.kind = QRY_SEGMENT;
    vx_err err = {0};
    int page = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t n;
        int is_limit = !strncmp(a, "--limit", 7) && (a[7] == 0 || a[7] == '=');
        int is_page = !strncmp(a, "--page", 6) && (a[6] == 0 || a[6] == '=');
        if (is_limit || is_page) {
            size_t len = is_limit ? 7 : 6;
            const char *val = a[len] == '=' ? a + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val) return cli_usage_error("similar", "%.*s needs a number", (int)len, a);
            if (vx_parse_int(val, 1, is_limit ? 1000 : 100000, is_limit ? "--limit" : "--page", &n,
                             &err))
                return cli_usage_error("similar", "%s", err.msg);
            if (is_limit)
                rq.limit = (int)n;
            else
                page = (int)n;
        } else if (!strncmp(a, "-", 1)) {
            return cli_usage_error("similar", "unknown option '%s'", a);
        } else if (rq.segment_id) {
            return cli_usage_error("similar", "give one segment id");
        } else {
            if (vx_parse_int(a, 1, INT64_MAX, "the segment id", &n, &err))
                return cli_usage_error("similar", "%s", err.msg);
            rq.segment_id = n;
        }
    }
    if (!rq.segment_id)
        return cli_usage_error("similar", "give the id of a segment (from vidx search --json)");
    if (page) {
        if ((int64_t)(page - 1) * rq.limit > 100000)
            return cli_usage_error("similar", "--page %d is beyond the last page", page);
        rq.offset = (page - 1) * rq.limit;
    }
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_READ;
    if (st_open(g->data_dir, &so, &s, &err)) return cli_fail(&err);
    qry_engine *e = NULL;
    qry_options qo = qry_options_default(); /* no model: the stored vectors suffice */
    srch_results r = {0};
    int code;
    if (qry_engine_open(&qo, &e, &err) || qry_run(e, s, &rq, &r, NULL, &err))
        code = cli_fail(&err);
    else
        code = cli_print_results(g, &r, NULL, 0);
    srch_results_free(&r);
    qry_engine_close(e);
    st_close(s);
    return code;
}
