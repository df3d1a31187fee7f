/* vidx search: a text query (lexical, and by meaning with a model), a clip (--clip FILE) or a
 * range of an indexed video (--video ID) through the query engine (query/), printed as ranked
 * ranges with a snippet, or as JSON in the one result schema (docs/api.md). Also `vidx similar`'s
 * printing. Opens the catalog read-only, so it runs beside an indexer. */
#include "cli.h"
#include "qry.h"
#include "srch.h"
#include "st.h"

#include <cjson/cJSON.h>
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

int cli_print_results(const cli_globals *g, const srch_results *r, const qry_stats *stats,
                      int rerank_asked)
{
    vx_err err = {0};
    if (g->json) {
        char *text = srch_results_json(r, 1, &err);
        if (!text) return cli_fail(&err);
        if (rerank_asked && stats) {
            cJSON *root = cJSON_Parse(text);
            cJSON *rr = root ? cJSON_AddObjectToObject(root, "rerank") : NULL;
            char *with = NULL;
            if (rr) {
                cJSON_AddBoolToObject(rr, "ran", stats->reranked > 0);
                cJSON_AddNumberToObject(rr, "segments", stats->reranked);
                cJSON_AddNumberToObject(rr, "took_ms", stats->rerank_ms);
                cJSON_AddBoolToObject(rr, "budget_hit", stats->rerank_budget_hit != 0);
                cJSON_AddNumberToObject(rr, "cache_hits", stats->rerank_cache_hits);
                with = cJSON_Print(root);
            }
            cJSON_Delete(root);
            free(text);
            if (!with) {
                vx_fail(&err, VX_ENOMEM, "out of memory writing JSON");
                return cli_fail(&err);
            }
            text = with;
        }
        puts(text);
        free(text);
        return CLI_EXIT_OK;
    }
    if (r->count == 0) {
        if (r->total > 0)
            printf("no results on this page (%" PRId64 " in all)\n", r->total);
        else
            printf("no matches for %s\n", r->query);
        return CLI_EXIT_OK;
    }
    int tty = isatty(STDOUT_FILENO);
    for (size_t i = 0; i < r->count; i++) {
        const srch_result *x = &r->items[i];
        printf("%2d. %s  ", x->rank, x->video.path);
        print_time(x->start_ms);
        printf("–");
        print_time(x->end_ms);
        printf("  score %.3f", x->score);
        if (x->reranked) printf("  match %.3f", x->rerank_score);
        printf("  [%s", x->match_source);
        for (size_t k = 0; k < x->source_count; k++)
            if (strcmp(x->sources[k], x->match_source)) printf(",%s", x->sources[k]);
        printf("]\n    at ");
        print_time(x->match_start_ms);
        if (x->snippet && x->snippet[0]) {
            printf(": ");
            print_snippet(x, tty);
        }
        printf("\n");
    }
    if (r->total > (int64_t)(r->offset + r->count))
        printf("(%zu of %" PRId64 "; --page for more)\n", r->count, r->total);
    if (stats && stats->reranked)
        printf("(top %d re-ranked by the matching head in %.0f ms%s)\n", stats->reranked,
               stats->rerank_ms, stats->rerank_budget_hit ? ", stopped by the time budget" : "");
    return CLI_EXIT_OK;
}

/* "vision,speech" -> bits; an unknown name is a usage error. */
static vx_status parse_modalities(const char *text, unsigned *out, vx_err *err)
{
    *out = 0;
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;
        for (int m = 0; m < SRCH_MODALITY_COUNT; m++) {
            const char *name = srch_modality_name((srch_modality)m);
            if (n == strlen(name) && !strncmp(p, name, n)) {
                *out |= 1u << m;
                found = 1;
            }
        }
        if (!found && n)
            return vx_fail(err, VX_EINVAL,
                           "unknown modality '%.*s' (lexical, vision, speech, audio)", (int)n, p);
        p += n + (comma ? 1 : 0);
    }
    if (!*out) return vx_fail(err, VX_EINVAL, "--modalities needs at least one name");
    return VX_OK;
}

/* A time as seconds ("12", "12.5") or a duration ("1500ms", "1m30s"). */
static vx_status parse_time_ms(const char *text, const char *what, int64_t *out, vx_err *err)
{
    char *end = NULL;
    double s = strtod(text, &end);
    if (end != text && !*end) {
        if (!(s >= 0 && s < 1e9))
            return vx_fail(err, VX_EINVAL, "%s must be a time of 0 or more seconds (got '%s')",
                           what, text);
        *out = (int64_t)(s * 1000 + 0.5);
        return VX_OK;
    }
    vx_status st = vx_parse_duration_ms(text, out, err);
    if (st) return vx_fail(err, st, "%s: %s", what, err ? err->msg : "bad time");
    return VX_OK;
}

/* Logs once what ran of what the user could have, and how to get the rest. */
static void say_modalities(const qry_engine *e, const qry_request *rq, const srch_results *r)
{
    if (rq->kind != QRY_TEXT) return;
    if (!qry_engine_model_id(e)) {
        vx_log(VX_LOG_INFO,
               "modalities: lexical (speech, subtitles, on-screen text, titles); vision search "
               "needs a model with a text tower: index and search with --model DIR (or "
               "VIDX_MODEL)");
        return;
    }
    unsigned can = qry_engine_text_modalities(e);
    if (!(can & (1u << SRCH_VISION)))
        vx_log(VX_LOG_INFO, "the model has no text tower (or no vision tower): this search is "
                            "lexical only; vision search needs a model with both");
    else if ((r->missing_mask & (1u << SRCH_VISION)) && !(r->active_mask & ~1u))
        vx_log(VX_LOG_INFO,
               "the catalog has no vectors of model %s (nothing indexed with it): this search "
               "is lexical only",
               qry_engine_model_id(e));
    else if (rq->modalities & r->missing_mask)
        vx_log(VX_LOG_INFO,
               "some modalities asked for have no vectors of model %s in the "
               "catalog: they did not run",
               qry_engine_model_id(e));
}

#define NEXT_VALUE(name)                                                                           \
    const char *val =                                                                              \
        a[strlen(name)] == '=' ? a + strlen(name) + 1 : (i + 1 < argc ? argv[++i] : NULL);         \
    if (!val) {                                                                                    \
        code = cli_usage_error("search", "%s needs a value", name);                                \
        goto done;                                                                                 \
    }

static int is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

int cmd_search(const cli_globals *g, int argc, char **argv)
{
    qry_request rq = qry_request_default();
    vx_buf query = {0};
    vx_err err = {0};
    int words = 0, page = 0, code = CLI_EXIT_OK;
    int have_start = 0, have_end = 0;
    const char *library = NULL;
    st_store *s = NULL;
    qry_engine *e = NULL;
    srch_results r = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_opt(a, "--limit")) {
            NEXT_VALUE("--limit");
            int64_t n;
            if (vx_parse_int(val, 1, 1000, "--limit", &n, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
            rq.limit = (int)n;
        } else if (is_opt(a, "--page")) {
            NEXT_VALUE("--page");
            int64_t n;
            if (vx_parse_int(val, 1, 100000, "--page", &n, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
            page = (int)n;
        } else if (is_opt(a, "--modalities")) {
            NEXT_VALUE("--modalities");
            if (parse_modalities(val, &rq.modalities, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
        } else if (is_opt(a, "--library")) {
            NEXT_VALUE("--library");
            library = val;
        } else if (is_opt(a, "--path-prefix")) {
            NEXT_VALUE("--path-prefix");
            rq.filter.path_prefix = val;
        } else if (is_opt(a, "--rerank")) {
            NEXT_VALUE("--rerank");
            int64_t n;
            if (vx_parse_int(val, 0, 256, "--rerank", &n, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
            rq.rerank = (int)n;
        } else if (is_opt(a, "--rerank-budget")) {
            NEXT_VALUE("--rerank-budget");
            int64_t ms;
            if (vx_parse_duration_ms(val, &ms, &err) || ms <= 0) {
                code = cli_usage_error("search", "--rerank-budget: %s",
                                       err.msg[0] ? err.msg : "must be above 0");
                goto done;
            }
            rq.rerank_budget_ms = (double)ms;
        } else if (is_opt(a, "--clip")) {
            NEXT_VALUE("--clip");
            rq.kind = QRY_CLIP_FILE;
            rq.clip_path = val;
        } else if (is_opt(a, "--video")) {
            NEXT_VALUE("--video");
            int64_t n;
            if (vx_parse_int(val, 1, INT64_MAX, "--video", &n, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
            rq.kind = QRY_CLIP_VIDEO;
            rq.video_id = n;
        } else if (is_opt(a, "--start") || is_opt(a, "--end")) {
            int start = is_opt(a, "--start");
            const char *name = start ? "--start" : "--end";
            NEXT_VALUE(name);
            if (parse_time_ms(val, name, start ? &rq.start_ms : &rq.end_ms, &err)) {
                code = cli_usage_error("search", "%s", err.msg);
                goto done;
            }
            *(start ? &have_start : &have_end) = 1;
        } else if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                if (vx_buf_printf(&query, &err, "%s%s", words++ ? " " : "", argv[i])) {
                    code = cli_fail(&err);
                    goto done;
                }
            break;
        } else if (!strncmp(a, "--", 2)) {
            /* "-word" excludes a word: only "--" options are options here. */
            code = cli_usage_error("search", "unknown option '%s'", a);
            goto done;
        } else if (vx_buf_printf(&query, &err, "%s%s", words++ ? " " : "", a)) {
            code = cli_fail(&err);
            goto done;
        }
    }
    if (rq.kind != QRY_TEXT && words) {
        code = cli_usage_error("search", "give either words or --clip/--video, not both");
        goto done;
    }
    if (rq.kind == QRY_TEXT && !words) {
        code = cli_usage_error("search", "give the words to search for (or --clip FILE, "
                                         "--video ID)");
        goto done;
    }
    if (rq.kind == QRY_TEXT && (have_start || have_end)) {
        code = cli_usage_error("search", "--start and --end go with --clip or --video");
        goto done;
    }
    if (rq.kind == QRY_CLIP_VIDEO && !have_start) {
        code = cli_usage_error("search", "--video needs --start (and --end, default start + 4s)");
        goto done;
    }
    if (page) {
        if ((int64_t)(page - 1) * rq.limit > 100000) {
            code = cli_usage_error("search", "--page %d is beyond the last page searched", page);
            goto done;
        }
        rq.offset = (page - 1) * rq.limit;
    }
    rq.text = query.data;
    st_options so = st_options_default();
    so.mode = ST_READ;
    if (st_open(g->data_dir, &so, &s, &err)) {
        code = cli_fail(&err);
        goto done;
    }
    if (library) {
        st_library lib;
        if (st_library_find(s, library, &lib, &err)) {
            code = cli_fail(&err);
            goto done;
        }
        rq.filter.library_id = lib.id;
        st_library_clear(&lib);
    }
    qry_options qo = qry_options_default();
    qo.model_dir = g->model_dir;
    qo.text_cache_entries = 1; /* one query per process */
    qo.token_cache_bytes = 1;  /* nothing to reuse within one query */
    if (qry_engine_open(&qo, &e, &err)) {
        code = cli_fail(&err);
        goto done;
    }
    qry_stats stats;
    if (qry_run(e, s, &rq, &r, &stats, &err)) {
        if (rq.kind == QRY_TEXT) say_modalities(e, &rq, &r);
        code = cli_fail(&err);
        goto done;
    }
    say_modalities(e, &rq, &r);
    code = cli_print_results(g, &r, &stats, rq.rerank > 0);
done:
    srch_results_free(&r);
    qry_engine_close(e);
    st_close(s);
    vx_buf_free(&query);
    return code;
}
