/* vidx search: lexical search over the catalog (search/), printed as ranked ranges with a
 * snippet, or as JSON in the one result schema (docs/api.md). With --model DIR (or VIDX_MODEL)
 * of a model with a text tower, the query also goes through that tower and searches the
 * catalog's vision vectors of the model (search by meaning), fused with the lexical scores.
 * Opens the catalog read-only, so it runs beside an indexer. */
#include "cli.h"
#include "enc.h"
#include "srch.h"
#include "st.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_time(int64_t ms)
{
    int64_t s = ms / 1000;
    if (s >= 3600)
        printf("%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
    else
        printf("%d:%02d", (int)(s / 60), (int)(s % 60));
    printf(".%d", (int)(ms % 1000 / 100));
}

/* The snippet with highlights as [brackets] (or bold on a terminal). */
static void print_snippet(const srch_result *x, int tty)
{
    const char *p = x->snippet ? x->snippet : "";
    int cp = 0;
    size_t h = 0;
    for (; *p; p++) {
        if ((*(const unsigned char *)p & 0xc0) != 0x80) {
            while (h < x->highlight_count && x->highlights[h].end <= cp &&
                   x->highlights[h].end > 0 && x->highlights[h].start < cp) {
                fputs(tty ? "\x1b[0m" : "]", stdout);
                h++;
            }
            if (h < x->highlight_count && x->highlights[h].start == cp)
                fputs(tty ? "\x1b[1m" : "[", stdout);
            cp++;
        }
        /* line breaks in a cue read as spaces */
        putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
    }
    if (h < x->highlight_count) fputs(tty ? "\x1b[0m" : "]", stdout);
}

int cmd_search(const cli_globals *g, int argc, char **argv)
{
    srch_options o = srch_options_default();
    vx_buf query = {0};
    vx_err err = {0};
    int words = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--limit") || !strncmp(a, "--limit=", 8)) {
            const char *val = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            int64_t n;
            if (!val || vx_parse_int(val, 1, 1000, "--limit", &n, &err)) {
                vx_buf_free(&query);
                return cli_usage_error("search", "%s", val ? err.msg : "--limit needs a number");
            }
            o.limit = (int)n;
            continue;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                if (vx_buf_printf(&query, &err, "%s%s", words++ ? " " : "", argv[i])) {
                    vx_buf_free(&query);
                    return cli_fail(&err);
                }
            break;
        }
        /* "-word" excludes a word: only "--" options are options here. */
        if (!strncmp(a, "--", 2)) {
            vx_buf_free(&query);
            return cli_usage_error("search", "unknown option '%s'", a);
        }
        if (vx_buf_printf(&query, &err, "%s%s", words++ ? " " : "", a)) {
            vx_buf_free(&query);
            return cli_fail(&err);
        }
    }
    if (!words) {
        vx_buf_free(&query);
        return cli_usage_error("search", "give the words to search for");
    }
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_READ;
    if (st_open(g->data_dir, &so, &s, &err)) {
        vx_buf_free(&query);
        return cli_fail(&err);
    }
    /* The query through the model's text tower: its vector in the shared text-video space. */
    enc_model *model = NULL;
    float *qvec = NULL;
    const char *how = NULL; /* why vision search does not run; said once, on stderr */
    if (g->model_dir) {
        enc_text *text = NULL;
        vx_status mst = enc_model_open(g->model_dir, &model, &err);
        const enc_model_info *info = mst ? NULL : enc_model_get_info(model);
        if (mst) {
            /* fall through to cli_fail below */
        } else if (!info->has_text || !info->has_vision) {
            how = "the model has no text tower (or no vision tower): this search is lexical "
                  "only; vision search needs a model with both";
        } else if (!(mst = enc_text_create(model, 0, &text, &err))) {
            int dim = enc_text_embed_dim(text);
            if (!(qvec = malloc((size_t)dim * sizeof *qvec)))
                mst = vx_fail(&err, VX_ENOMEM, "out of memory");
            else if (!(mst = enc_text_embed(text, query.data, query.len, qvec, &err))) {
                o.query_vector = qvec;
                o.query_dim = dim;
                o.vision_model = info->model_id;
            }
        }
        enc_text_free(text);
        if (mst) {
            free(qvec);
            enc_model_close(model);
            vx_buf_free(&query);
            st_close(s);
            return cli_fail(&err);
        }
    } else {
        how = "modalities: lexical (speech, subtitles, on-screen text, titles); vision search "
              "needs a model with a text tower: index and search with --model DIR (or "
              "VIDX_MODEL)";
    }
    if (how) vx_log(VX_LOG_INFO, "%s", how);
    srch_results r;
    vx_status st = srch_search(s, query.data, &o, &r, &err);
    vx_buf_free(&query);
    free(qvec);
    if (!st && (r.missing_mask & (1u << SRCH_VISION)))
        vx_log(VX_LOG_INFO,
               "the catalog has no vectors of model %s (nothing indexed with it): this search "
               "is lexical only",
               o.vision_model);
    enc_model_close(model);
    if (st) {
        st_close(s);
        return cli_fail(&err);
    }
    int code = CLI_EXIT_OK;
    if (g->json) {
        char *text = srch_results_json(&r, 1, &err);
        if (text) {
            puts(text);
            free(text);
        } else {
            code = cli_fail(&err);
        }
    } else if (r.count == 0) {
        printf("no matches for %s\n", r.query);
    } else {
        int tty = isatty(STDOUT_FILENO);
        for (size_t i = 0; i < r.count; i++) {
            const srch_result *x = &r.items[i];
            printf("%2d. %s  ", x->rank, x->video.path);
            print_time(x->start_ms);
            printf("–");
            print_time(x->end_ms);
            printf("  score %.3f  [%s", x->score, x->match_source);
            for (size_t k = 0; k < x->source_count; k++)
                if (strcmp(x->sources[k], x->match_source)) printf(",%s", x->sources[k]);
            printf("]\n    at ");
            print_time(x->match_start_ms);
            printf(": ");
            print_snippet(x, tty);
            printf("\n");
        }
    }
    srch_results_free(&r);
    st_close(s);
    return code;
}
