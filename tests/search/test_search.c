/* search/ tests: the query translator (what users type -> FTS5 that never fails), lexical
 * search over a real catalog (BM25 order, phrases, prefixes, exclusion, ranges of adjacent
 * segments, title boost, snippets with highlights in code points, the JSON schema), hostile
 * queries against a real FTS5 index, and the indexer's text cleaning (hostile subtitle text). */
#include "idx_text.h"
#include "srch.h"
#include "st.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>

static void expect_fts(const char *query, const char *want)
{
    vx_err err = {0};
    char *got = NULL;
    T_OK(srch_query_translate(query, &got, &err), &err);
    T_EQ_STR(got, want);
    free(got);
}

static void expect_refused(const char *query, vx_status want)
{
    vx_err err = {0};
    char *got = NULL;
    vx_status st = srch_query_translate(query, &got, &err);
    if (st != want)
        T_FAIL("query [%s]: status %d (%s), expected %d", query, st, got ? got : err.msg, want);
    T_ASSERT(got == NULL);
    T_ASSERT(err.msg[0]);
}

static void test_translate(void)
{
    expect_fts("red car", "\"red\" AND \"car\"");
    expect_fts("  \"red car\" ", "\"red car\"");
    expect_fts("trans*", "\"trans\"*");
    expect_fts("\"red ca\"*", "\"red ca\"*");
    expect_fts("car -truck", "(\"car\") NOT (\"truck\")");
    expect_fts("car -truck -\"fire engine\"", "(\"car\") NOT (\"truck\" OR \"fire engine\")");
    expect_fts("red OR blue car", "(\"red\" OR \"blue\") AND \"car\"");
    expect_fts("OR red", "\"OR\" AND \"red\"");
    expect_fts("red OR", "\"red\"");
    expect_fts("red or blue", "\"red\" AND \"or\" AND \"blue\"");
    /* FTS5 syntax is text */
    expect_fts("NEAR(a b)", "\"NEAR a\" AND \"b\"");
    expect_fts("a AND NOT b", "\"a\" AND \"AND\" AND \"NOT\" AND \"b\"");
    expect_fts("col:word ^start +plus", "\"col word\" AND \"start\" AND \"plus\"");
    expect_fts("\"unbalanced quote", "\"unbalanced quote\"");
    expect_fts("say \"\"hi\"\"", "\"say\" AND \"hi\"");
    expect_fts("e-mail", "\"e mail\"");
    expect_fts("- lone * dash", "\"lone\" AND \"dash\"");
    expect_fts("naïve café", "\"naïve\" AND \"café\"");
    expect_fts("bad\xff\xfeutf8", "\"bad utf8\"");
    expect_fts("tab\tand\nnewline", "\"tab\" AND \"and\" AND \"newline\"");
    expect_refused("", VX_EINVAL);
    expect_refused("   ", VX_EINVAL);
    expect_refused("*", VX_EINVAL);
    expect_refused("-", VX_EINVAL);
    expect_refused("\"", VX_EINVAL);
    expect_refused("\"\"", VX_EINVAL);
    expect_refused("() ^ : + *", VX_EINVAL);
    expect_refused("-word", VX_EINVAL);
    expect_refused("-a -\"b c\"", VX_EINVAL);
    char *longq = malloc(SRCH_QUERY_MAX_BYTES + 2);
    memset(longq, 'a', SRCH_QUERY_MAX_BYTES + 1);
    longq[SRCH_QUERY_MAX_BYTES + 1] = 0;
    expect_refused(longq, VX_ELIMIT);
    free(longq);
    vx_buf many = {0};
    for (int i = 0; i <= SRCH_QUERY_MAX_TERMS; i++)
        vx_buf_printf(&many, NULL, "w%d ", i);
    expect_refused(many.data, VX_ELIMIT);
    vx_buf_free(&many);
}

/* ---- a small catalog ---------------------------------------------------------------------- */

static int64_t video(st_store *s, int64_t lib, const char *loc, int64_t dur)
{
    vx_err err = {0};
    st_video v = {0};
    v.library_id = lib;
    v.location = (char *)loc;
    v.duration_ms = dur;
    v.status = ST_VIDEO_INDEXED;
    int64_t id;
    T_OK(st_video_upsert(s, &v, &id, &err), &err);
    return id;
}

static int64_t seg(st_store *s, int64_t vid, int64_t start)
{
    vx_err err = {0};
    st_segment g = {
        .video_id = vid, .level = ST_LEVEL_WINDOW, .start_ms = start, .end_ms = start + 4000};
    int64_t id;
    T_OK(st_segment_add(s, &g, &id, &err), &err);
    return id;
}

static void text(st_store *s, int64_t sid, const char *source, int64_t a, int64_t b,
                 const char *body)
{
    vx_err err = {0};
    T_OK(st_text_add(s, sid, source, a, b, body, &err), &err);
}

static st_store *fill(const char *dir, int64_t *v1, int64_t *v2, int64_t *v3)
{
    vx_err err = {0};
    st_store *s;
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    T_OK(st_open(dir, &o, &s, &err), &err);
    int64_t lib;
    T_OK(st_library_add(s, "lib", "/videos", &lib, &err), &err);
    T_OK(st_begin(s, &err), &err);
    *v1 = video(s, lib, "/videos/harbour_tour.mp4", 16000);
    int64_t a0 = seg(s, *v1, 0), a1 = seg(s, *v1, 4000), a2 = seg(s, *v1, 8000),
            a3 = seg(s, *v1, 12000);
    text(s, a0, "title", 0, 16000, "harbour_tour.mp4");
    text(s, a0, "asr", 500, 3500, "welcome aboard the ferry");
    text(s, a1, "asr", 4100, 7900, "the red lighthouse stands on the rocks");
    text(s, a2, "subtitle", 8000, 11000, "the lighthouse keeper lived here");
    text(s, a3, "ocr", 12000, 16000, "EXIT");
    *v2 = video(s, lib, "/videos/garage.mkv", 8000);
    int64_t b0 = seg(s, *v2, 0), b1 = seg(s, *v2, 4000);
    /* speech with word times: word i said at [400 i, 400 i + 300) */
    st_word_time times[10];
    for (int i = 0; i < 10; i++)
        times[i] = (st_word_time){400 * i, 400 * i + 300};
    T_OK(st_text_add_timed(s, b0, "asr", 0, 3900, "a red car and a red truck in the garage", times,
                           10, &err),
         &err);
    text(s, b1, "subtitle", 4000, 8000, "Ça va? «naïve» café – the red car");
    *v3 = video(s, lib, "/videos/lighthouse.webm", 4000);
    int64_t c0 = seg(s, *v3, 0);
    text(s, c0, "title", 0, 4000, "lighthouse.webm");
    T_OK(st_commit(s, &err), &err);
    return s;
}

static srch_results search(st_store *s, const char *q, int limit)
{
    vx_err err = {0};
    srch_options o = srch_options_default();
    o.limit = limit;
    srch_results r;
    T_OK(srch_search(s, q, &o, &r, &err), &err);
    return r;
}

static void test_search(void)
{
    char *dir = t_tempdir("srch-search");
    int64_t v1, v2, v3;
    st_store *s = fill(dir, &v1, &v2, &v3);

    /* adjacent segments merge into one range; titles boost and stand alone */
    srch_results r = search(s, "lighthouse", 10);
    T_EQ_INT(r.count, 2);
    int found_range = 0, found_title = 0;
    for (size_t i = 0; i < r.count; i++) {
        srch_result *x = &r.items[i];
        T_EQ_INT(x->rank, (int)i + 1);
        T_ASSERT(x->scored_mask & (1u << SRCH_LEXICAL));
        if (x->video.id == v1) {
            found_range = 1;
            T_EQ_INT(x->start_ms, 4000);
            T_EQ_INT(x->end_ms, 12000);
            T_EQ_INT(x->segment_count, 2);
            T_EQ_INT(x->source_count, 2);
            T_EQ_STR(x->sources[0], "asr");
            T_EQ_STR(x->sources[1], "subtitle");
            T_EQ_STR(x->video.title, "harbour_tour");
            T_EQ_INT(x->video.duration_ms, 16000);
        } else {
            T_EQ_INT(x->video.id, v3);
            found_title = 1;
            T_EQ_STR(x->match_source, "title");
            T_EQ_INT(x->start_ms, 0);
            T_EQ_INT(x->end_ms, 4000);
        }
    }
    T_ASSERT(found_range && found_title);
    T_ASSERT(r.items[0].score >= r.items[1].score);
    srch_results_free(&r);

    /* a phrase; exclusion; prefix; OR */
    r = search(s, "\"red car\"", 10);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].video.id, v2);
    T_EQ_INT(r.items[0].start_ms, 0);
    T_EQ_INT(r.items[0].end_ms, 8000);
    srch_results_free(&r);
    r = search(s, "red -truck", 10);
    T_EQ_INT(r.count, 2);
    for (size_t i = 0; i < r.count; i++)
        if (r.items[i].video.id == v2) {
            T_EQ_INT(r.items[i].start_ms, 4000); /* the asr text mentions a truck */
            T_EQ_STR(r.items[i].match_source, "subtitle");
        }
    srch_results_free(&r);
    r = search(s, "lightho*", 10);
    T_EQ_INT(r.count, 2);
    srch_results_free(&r);
    r = search(s, "ferry OR garage", 10);
    T_EQ_INT(r.count, 2);
    srch_results_free(&r);
    r = search(s, "EXIT", 10);
    T_EQ_INT(r.count, 1);
    T_EQ_STR(r.items[0].match_source, "ocr");
    T_EQ_INT(r.items[0].start_ms, 12000);
    srch_results_free(&r);
    /* the match's time is the matched words' when word times exist */
    r = search(s, "truck", 10);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].match_start_ms, 2400);
    T_EQ_INT(r.items[0].match_end_ms, 2700);
    srch_results_free(&r);
    r = search(s, "\"RED truck\" -zebra", 10);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].match_start_ms, 2000);
    T_EQ_INT(r.items[0].match_end_ms, 2700);
    srch_results_free(&r);
    r = search(s, "gar* truck", 10);
    T_EQ_INT(r.items[0].match_start_ms, 2400); /* the first matching word */
    srch_results_free(&r);
    r = search(s, "zebra", 10);
    T_EQ_INT(r.count, 0);
    srch_results_free(&r);

    /* snippet highlights count code points, diacritics fold */
    r = search(s, "naive", 10);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].highlight_count, 1);
    T_EQ_STR(r.items[0].snippet, "Ça va? «naïve» café – the red car");
    T_EQ_INT(r.items[0].highlights[0].start, 8);
    T_EQ_INT(r.items[0].highlights[0].end, 13);
    srch_results_free(&r);

    /* limit */
    r = search(s, "the", 1);
    T_EQ_INT(r.count, 1);
    srch_results_free(&r);

    /* the JSON schema */
    r = search(s, "red", 10);
    vx_err err = {0};
    char *json = srch_results_json(&r, 0, &err);
    T_ASSERT(json);
    cJSON *root = cJSON_Parse(json);
    T_ASSERT(root);
    T_EQ_STR(cJSON_GetObjectItem(root, "query")->valuestring, "red");
    T_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(root, "modalities")));
    cJSON *res = cJSON_GetObjectItem(root, "results");
    T_EQ_INT(cJSON_GetArraySize(res), (int)r.count);
    cJSON *first = cJSON_GetArrayItem(res, 0);
    T_EQ_INT(cJSON_GetObjectItem(first, "rank")->valueint, 1);
    T_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(first, "scores"), "lexical")));
    cJSON *v = cJSON_GetObjectItem(first, "video");
    T_ASSERT(cJSON_IsString(cJSON_GetObjectItem(v, "path")));
    T_ASSERT(cJSON_IsString(cJSON_GetObjectItem(v, "title")));
    T_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(v, "duration_ms")));
    cJSON *m = cJSON_GetObjectItem(first, "match");
    T_ASSERT(cJSON_IsString(cJSON_GetObjectItem(m, "snippet")));
    T_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(m, "highlights")));
    T_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(first, "sources")));
    T_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(first, "segment_ids")));
    cJSON_Delete(root);
    free(json);
    srch_results_free(&r);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* storage's additions for search: st_text_find (joins, snippet marks, bad expressions) and
 * st_text_list (what a move copies). */
static void test_storage_text(void)
{
    char *dir = t_tempdir("srch-storage");
    int64_t v1, v2, v3;
    st_store *s = fill(dir, &v1, &v2, &v3);
    vx_err err = {0};
    st_text_match *m = NULL;
    size_t n = 0;
    T_OK(st_text_find(s, "\"lighthouse\"", 10, "<", ">", 8, &m, &n, &err), &err);
    T_EQ_INT(n, 3);
    for (size_t i = 0; i < n; i++) {
        T_ASSERT(m[i].location && m[i].source && m[i].snippet);
        T_ASSERT(strstr(m[i].snippet, "<"));
        if (i) T_ASSERT(m[i - 1].score >= m[i].score);
        if (!strcmp(m[i].source, "subtitle")) {
            T_EQ_INT(m[i].video_id, v1);
            T_EQ_INT(m[i].seg_start_ms, 8000);
            T_EQ_INT(m[i].seg_end_ms, 12000);
            T_EQ_INT(m[i].start_ms, 8000);
            T_EQ_INT(m[i].end_ms, 11000);
            T_EQ_INT(m[i].duration_ms, 16000);
            T_EQ_STR(m[i].location, "/videos/harbour_tour.mp4");
            T_EQ_STR(m[i].snippet, "the <lighthouse> keeper lived here");
        }
    }
    st_text_matches_free(m, n);
    T_EQ_INT(st_text_find(s, "NEAR(", 10, NULL, NULL, 8, &m, &n, &err), VX_EINVAL);
    T_ASSERT(m == NULL && n == 0 && err.msg[0]);
    T_EQ_INT(st_text_find(s, "x", 10, NULL, NULL, 0, &m, &n, &err), VX_EINVAL);
    st_segment *segs = NULL;
    size_t nseg = 0;
    T_OK(st_segment_list(s, v1, -1, &segs, &nseg, &err), &err);
    T_EQ_INT(nseg, 4);
    st_text *texts = NULL;
    size_t nt = 0;
    T_OK(st_text_list(s, segs[0].id, &texts, &nt, &err), &err);
    T_EQ_INT(nt, 2);
    T_EQ_STR(texts[0].source, "title");
    T_EQ_STR(texts[1].body, "welcome aboard the ferry");
    T_EQ_INT(texts[1].start_ms, 500);
    T_EQ_INT(texts[1].end_ms, 3500);
    T_ASSERT(texts[1].word_times == NULL && texts[1].word_count == 0);
    st_texts_free(texts, nt);
    st_segments_free(segs, nseg);
    T_OK(st_segment_list(s, v2, -1, &segs, &nseg, &err), &err);
    T_OK(st_text_list(s, segs[0].id, &texts, &nt, &err), &err);
    T_EQ_INT(nt, 1);
    T_EQ_INT(texts[0].word_count, 10);
    T_EQ_INT(texts[0].word_times[9].start_ms, 3600);
    T_EQ_INT(texts[0].word_times[9].end_ms, 3900);
    st_texts_free(texts, nt);
    T_OK(st_text_list(s, 999999, &texts, &nt, &err), &err);
    T_EQ_INT(nt, 0);
    st_texts_free(texts, nt);
    st_segments_free(segs, nseg);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* Whatever a user types: a translator refusal with a message, or a search that runs. */
static void test_hostile_queries(void)
{
    char *dir = t_tempdir("srch-hostile");
    int64_t v1, v2, v3;
    st_store *s = fill(dir, &v1, &v2, &v3);
    static const char *const queries[] = {
        "\"",
        "\"\"",
        "\"\"\"",
        "*",
        "**",
        "-",
        "--",
        "- -",
        "NEAR(",
        "NEAR(a b",
        "NEAR(a,b)",
        "a NEAR b",
        "AND",
        "OR",
        "NOT",
        "a OR",
        "OR OR OR",
        "a AND",
        "(",
        ")",
        "((a)",
        "a)",
        "{a b}:c",
        "col:red",
        "-\"",
        "-*",
        "red*car",
        "*red",
        "red**",
        "\"red\"*car",
        "^",
        "^red",
        "+",
        "a + b",
        "'",
        "a'b",
        "\\",
        "%",
        "_",
        "\x01\x02",
        "\xc3",
        "\xf0\x9f\x98",
        "😀",
        "red 😀 car",
        "\xef\xbb\xbfred",
        "rowid:1",
        "texts_fts:red",
        "red NOT",
        "NOT red",
        "-red red",
        "\"a\" \"",
        "…",
        "¿",
        "ß",
        "İ",
        "日本語",
        "a\"b\"c",
        "\"-red\"",
        "-\"red",
        "red -",
        "red -*",
        "red - car",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        vx_err err = {0};
        srch_results r;
        srch_options o = srch_options_default();
        vx_status st = srch_search(s, queries[i], &o, &r, &err);
        if (st != VX_OK && st != VX_EINVAL)
            T_FAIL("query [%s]: %s (%s)", queries[i], vx_strerror(st), err.msg);
        if (st == VX_EINVAL) {
            /* only the translator may refuse, never FTS5 */
            T_ASSERT(!strstr(err.msg, "fts5") && !strstr(err.msg, "syntax"));
            T_ASSERT(err.msg[0]);
        } else {
            srch_results_free(&r);
        }
    }
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static void expect_clean(const char *in, size_t len, size_t max, const char *want)
{
    char *got = idx__text_clean(in, len, max);
    T_ASSERT(got);
    T_EQ_STR(got, want);
    free(got);
}

static void test_text_clean(void)
{
    expect_clean("plain", 5, 100, "plain");
    expect_clean("  <i>Hello</i>\n  <font color=\"red\">world</font>  ", 47, 100, "Hello world");
    expect_clean("{\\an8}top {\\i1}line", 19, 100, "top line");
    expect_clean("a < b > c", 9, 100, "a < b > c");
    expect_clean("caf\xe9 na\xefve", 10, 100, "café naïve"); /* Latin-1 */
    expect_clean("\xef\xbb\xbf"
                 "bom",
                 6, 100, "bom");
    expect_clean("ctl\x01\x02\x7f"
                 "chars",
                 11, 100, "ctl chars");
    expect_clean("aé", 3, 2, "a"); /* cut at a character boundary */
    expect_clean("", 0, 10, "");
    /* a 10 MB line is cut */
    size_t big = 10u << 20;
    char *line = malloc(big);
    memset(line, 'x', big);
    char *got = idx__text_clean(line, big, IDX_TEXT_PIECE_MAX);
    T_ASSERT(got && strlen(got) == IDX_TEXT_PIECE_MAX);
    free(got);
    free(line);
}

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    T_ASSERT(f);
    fclose(f);
}

static void test_sidecars(void)
{
    char *dir = t_tempdir("srch-sidecar");
    const char *names[] = {"talk.mp4",           "talk.srt",  "talk.en.vtt",
                           "talk.fr.forced.ASS", "talk.txt",  "talks.srt",
                           "talk.srt.bak",       "other.srt", "talk"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        touch(dir, names[i]);
    char video[512];
    snprintf(video, sizeof video, "%s/talk.mp4", dir);
    vx_err err = {0};
    char **side = NULL;
    size_t n = 0;
    T_OK(idx__sidecar_subtitles(video, &side, &n, &err), &err);
    T_EQ_INT(n, 3);
    char want[512];
    snprintf(want, sizeof want, "%s/talk.en.vtt", dir);
    T_EQ_STR(side[0], want);
    snprintf(want, sizeof want, "%s/talk.fr.forced.ASS", dir);
    T_EQ_STR(side[1], want);
    snprintf(want, sizeof want, "%s/talk.srt", dir);
    T_EQ_STR(side[2], want);
    idx__strings_free(side, n);
    T_OK(idx__sidecar_subtitles("/nonexistent/dir/v.mp4", &side, &n, &err), &err);
    T_EQ_INT(n, 0);
    /* encodings: UTF-8 and UTF-16 with a BOM pass; Latin-1 is converted */
    char *u = NULL;
    size_t ulen = 0;
    T_OK(idx__subtitle_bytes_utf8("caf\xc3\xa9", 5, &u, &ulen, &err), &err);
    T_ASSERT(u == NULL);
    T_OK(idx__subtitle_bytes_utf8("\xff\xfe"
                                  "a\0",
                                  4, &u, &ulen, &err),
         &err);
    T_ASSERT(u == NULL);
    T_OK(idx__subtitle_bytes_utf8("caf\xe9", 4, &u, &ulen, &err), &err);
    T_ASSERT(u != NULL);
    T_EQ_INT(ulen, 5);
    T_EQ_STR(u, "café");
    free(u);
    t_rmtree(dir);
    free(dir);
}

/* ---- similar segments --------------------------------------------------------------------- */

static void put_vec(st_store *s, int64_t sid, const char *modality, int dim, float a, float b,
                    float c, float d)
{
    vx_err err = {0};
    float v[4] = {a, b, c, d};
    T_OK(st_embedding_put(s, sid, "m", modality, dim, v, &err), &err);
}

static void test_similar(void)
{
    char *dir = t_tempdir("srch-similar");
    vx_err err = {0};
    st_store *s;
    st_options o = st_options_default();
    o.mode = ST_WRITE;
    T_OK(st_open(dir, &o, &s, &err), &err);
    int64_t lib;
    T_OK(st_library_add(s, "lib", "/videos", &lib, &err), &err);
    T_OK(st_begin(s, &err), &err);
    int64_t v1 = video(s, lib, "/videos/one.mp4", 12000),
            v2 = video(s, lib, "/videos/two.mp4", 8000);
    int64_t v3 = video(s, lib, "/videos/three.mp4", 4000);
    int64_t a0 = seg(s, v1, 0), a1 = seg(s, v1, 4000), a2 = seg(s, v1, 8000);
    int64_t b0 = seg(s, v2, 0), b1 = seg(s, v2, 4000), c0 = seg(s, v3, 0);
    put_vec(s, a0, "vision", 4, 1, 0, 0, 0);
    put_vec(s, a1, "vision", 4, 0.9f, 0.1f, 0, 0);
    put_vec(s, a2, "vision", 4, 0, 1, 0, 0);
    put_vec(s, b0, "vision", 4, 0.8f, 0.6f, 0, 0);
    put_vec(s, b1, "vision", 4, 0, 0, 1, 0);
    T_OK(st_commit(s, &err), &err);

    /* vision only: itself left out, touching hits merge, best first */
    srch_options so = srch_options_default();
    srch_results r;
    T_OK(srch_similar(s, a0, &so, &r, &err), &err);
    T_EQ_INT(r.active_mask, 1u << SRCH_VISION);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(r.items[0].video.id, v1);
    T_EQ_INT(r.items[0].start_ms, 4000);
    T_EQ_INT(r.items[0].end_ms, 12000);
    T_EQ_INT(r.items[0].segment_count, 2);
    T_EQ_INT(r.items[0].segment_ids[0], a1);
    T_NEAR(r.items[0].score, 0.9 / sqrt(0.82), 1e-5);
    T_EQ_INT(r.items[0].match_start_ms, 4000);
    T_EQ_STR(r.items[0].match_source, "vision");
    T_EQ_INT(r.items[1].video.id, v2);
    T_NEAR(r.items[1].score, 0.8, 1e-5);
    T_EQ_INT(r.items[1].rank, 2);
    for (size_t i = 0; i < r.count; i++)
        for (size_t k = 0; k < r.items[i].segment_count; k++)
            T_ASSERT(r.items[i].segment_ids[k] != a0 && r.items[i].segment_ids[k] != c0);
    char *json = srch_results_json(&r, 0, &err);
    T_ASSERT(json && strstr(json, "\"query\":\"segment:") && strstr(json, "\"vision\":"));
    free(json);
    srch_results_free(&r);
    so.limit = 1;
    T_OK(srch_similar(s, a0, &so, &r, &err), &err);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].video.id, v1);
    srch_results_free(&r);

    /* a second modality: the fused score is the mean over the modalities that took part */
    T_OK(st_begin(s, &err), &err);
    put_vec(s, a0, "audio", 3, 1, 0, 0, 0);
    put_vec(s, b1, "audio", 3, 1, 0, 0, 0);
    T_OK(st_commit(s, &err), &err);
    so.limit = 10;
    T_OK(srch_similar(s, a0, &so, &r, &err), &err);
    T_EQ_INT(r.active_mask, (1u << SRCH_VISION) | (1u << SRCH_AUDIO));
    T_EQ_INT(r.count, 2);
    T_EQ_INT(r.items[0].video.id, v2);
    T_NEAR(r.items[0].score, 0.5, 1e-5);
    T_NEAR(r.items[0].scores[SRCH_VISION], 0.8, 1e-5);
    T_NEAR(r.items[0].scores[SRCH_AUDIO], 1.0, 1e-5);
    T_EQ_INT(r.items[0].source_count, 2);
    T_EQ_STR(r.items[0].sources[0], "audio");
    T_NEAR(r.items[1].score, 0.9 / sqrt(0.82) / 2, 1e-5);
    srch_results_free(&r);

    /* no vectors, unknown id, bad limit */
    T_EQ_INT(srch_similar(s, c0, &so, &r, &err), VX_EUNSUPPORTED);
    T_ASSERT(strstr(err.msg, "model") != NULL);
    T_EQ_INT(r.count, 0);
    T_EQ_INT(srch_similar(s, 999999, &so, &r, &err), VX_ENOTFOUND);
    so.limit = 0;
    T_EQ_INT(srch_similar(s, a0, &so, &r, &err), VX_EINVAL);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

/* Normalisation and fusion on hand-made inputs, then srch_search with a query vector. */
static void test_fusion(void)
{
    T_NEAR(srch_norm_minmax(0.3, 0.1, 0.5), 0.5, 1e-12);
    T_NEAR(srch_norm_minmax(0.1, 0.1, 0.5), 0.0, 1e-12);
    T_NEAR(srch_norm_minmax(0.5, 0.1, 0.5), 1.0, 1e-12);
    T_NEAR(srch_norm_minmax(0.7, 0.1, 0.5), 1.0, 1e-12); /* clamped */
    T_NEAR(srch_norm_minmax(0.2, 0.2, 0.2), 1.0, 1e-12); /* one candidate */
    double n[SRCH_MODALITY_COUNT] = {0};
    n[SRCH_LEXICAL] = 1.0;
    n[SRCH_VISION] = 0.4;
    unsigned lex = 1u << SRCH_LEXICAL, vis = 1u << SRCH_VISION;
    T_NEAR(srch_fuse(n, lex | vis, lex | vis), 0.7, 1e-12);
    T_NEAR(srch_fuse(n, vis, lex | vis), 0.2, 1e-12); /* missing lexical counts 0 */
    T_NEAR(srch_fuse(n, lex, lex | vis), 0.5, 1e-12);
    T_NEAR(srch_fuse(n, lex | vis, vis), 0.4, 1e-12); /* only vision found anything */
    T_NEAR(srch_fuse(n, lex | vis, lex), 1.0, 1e-12);
    T_NEAR(srch_fuse(n, lex | vis, 0), 0.0, 1e-12);
    /* both modalities beat either alone at equal strength */
    n[SRCH_VISION] = 1.0;
    T_ASSERT(srch_fuse(n, lex | vis, lex | vis) > srch_fuse(n, vis, lex | vis));
    /* weighted: a modality with weight 0 (a stream the range lacks) leaves both sums */
    unsigned sp = 1u << SRCH_SPEECH;
    double w[SRCH_MODALITY_COUNT] = {1, 1, 0, 0.5};
    n[SRCH_VISION] = 0.4;
    n[SRCH_SPEECH] = 1.0;
    T_NEAR(srch_fuse_weighted(n, w, lex | vis | sp, lex | vis | sp), (1 + 0.4 + 0.5) / 2.5, 1e-12);
    T_NEAR(srch_fuse_weighted(n, w, vis | sp, lex | vis | sp), (0.4 + 0.5) / 2.5, 1e-12);
    T_NEAR(srch_fuse_weighted(n, w, vis, vis | sp), 0.4 / 1.5, 1e-12); /* speech missed: 0 */
    w[SRCH_SPEECH] = 0;                                                /* no speech at all */
    T_NEAR(srch_fuse_weighted(n, w, vis, vis | sp), 0.4, 1e-12);
    w[SRCH_VISION] = 0;
    T_NEAR(srch_fuse_weighted(n, w, vis, vis | sp), 0.0, 1e-12); /* nothing applies */
    double ones[SRCH_MODALITY_COUNT] = {1, 1, 1, 1};
    T_NEAR(srch_fuse_weighted(n, ones, lex | vis, lex | vis), srch_fuse(n, lex | vis, lex | vis),
           1e-12);
    /* speech quality: subtitles are trusted, a few recognised words less */
    T_NEAR(srch_speech_quality(3, 0), 1.0, 1e-12);
    T_NEAR(srch_speech_quality(0, 0), 0.0, 1e-12);
    T_NEAR(srch_speech_quality(0, 1), SRCH_SPEECH_MIN_WEIGHT, 1e-12);
    T_NEAR(srch_speech_quality(0, 4), 4 / SRCH_SPEECH_FULL_WORDS, 1e-12);
    T_NEAR(srch_speech_quality(0, 100), 1.0, 1e-12);
    n[SRCH_VISION] = 1.0;

    char *dir = t_tempdir("srch-fusion");
    int64_t v1, v2, v3;
    st_store *s = fill(dir, &v1, &v2, &v3);
    vx_err err = {0};
    /* vision vectors: harbour_tour's segment at 4 s is the best, garage's second, lighthouse's
     * worst */
    st_segment *segs = NULL;
    size_t nsegs = 0;
    T_OK(st_begin(s, &err), &err);
    int64_t ids[3] = {v1, v2, v3};
    float vecs[3][4] = {{0.8f, 0.6f, 0, 0}, {0.6f, 0.8f, 0, 0}, {0, 0, 1, 0}};
    for (int k = 0; k < 3; k++) {
        T_OK(st_segment_list(s, ids[k], -1, &segs, &nsegs, &err), &err);
        for (size_t i = 0; i < nsegs; i++)
            if (segs[i].start_ms == (k == 0 ? 4000 : 0))
                T_OK(st_embedding_put(s, segs[i].id, "m", "vision", 4, vecs[k], &err), &err);
        st_segments_free(segs, nsegs);
    }
    T_OK(st_commit(s, &err), &err);
    float q[4] = {1, 0, 0, 0};
    srch_options o = srch_options_default();
    o.query_vector = q;
    o.query_dim = 4;
    o.vision_model = "m";
    srch_results r;
    /* "lighthouse": lexical finds harbour_tour (4-12 s) and lighthouse.webm (title) */
    T_OK(srch_search(s, "lighthouse", &o, &r, &err), &err);
    T_EQ_INT(r.active_mask, (1u << SRCH_LEXICAL) | (1u << SRCH_VISION));
    T_EQ_INT(r.missing_mask, 0);
    T_EQ_INT(r.count, 3);
    for (size_t i = 0; i + 1 < r.count; i++)
        T_ASSERT(r.items[i].score >= r.items[i + 1].score);
    T_EQ_INT(r.items[0].video.id, v1); /* lexical and the best vision hit agree */
    T_ASSERT(r.items[0].scored_mask == ((1u << SRCH_LEXICAL) | (1u << SRCH_VISION)));
    T_NEAR(r.items[0].scores[SRCH_VISION], 0.8, 1e-5); /* the raw cosine */
    double lex_best = 0;
    for (size_t i = 0; i < r.count; i++)
        if ((r.items[i].scored_mask & 1u << SRCH_LEXICAL) &&
            r.items[i].scores[SRCH_LEXICAL] > lex_best)
            lex_best = r.items[i].scores[SRCH_LEXICAL];
    T_NEAR(r.items[0].score, (r.items[0].scores[SRCH_LEXICAL] / lex_best + 1.0) / 2, 1e-9);
    for (size_t i = 0; i < r.count; i++)
        if (r.items[i].video.id == v3) /* lexical best, worst vision cosine (norm 0) */
            T_NEAR(r.items[i].score, 0.5, 1e-9);
    int found_garage = 0;
    for (size_t i = 0; i < r.count; i++) {
        if (r.items[i].video.id != v2) continue;
        found_garage = 1;
        T_EQ_INT(r.items[i].scored_mask, 1u << SRCH_VISION);
        T_EQ_STR(r.items[i].match_source, "vision");
        T_NEAR(r.items[i].score, (0.6 - 0.0) / (0.8 - 0.0) / 2, 1e-5);
        T_EQ_INT(r.items[i].start_ms, 0);
        T_EQ_INT(r.items[i].end_ms, 4000);
    }
    T_ASSERT(found_garage);
    char *json = srch_results_json(&r, 0, &err);
    T_ASSERT(json && strstr(json, "\"modalities\":[\"lexical\",\"vision\"]"));
    free(json);
    srch_results_free(&r);
    /* only excluded words: the lexical part cannot run, the vision part answers */
    T_OK(srch_search(s, "-lighthouse", &o, &r, &err), &err);
    T_EQ_INT(r.active_mask, 1u << SRCH_VISION);
    T_EQ_INT(r.count, 3);
    T_EQ_INT(r.items[0].video.id, v1);
    T_NEAR(r.items[0].score, 1.0, 1e-9);
    srch_results_free(&r);
    /* a model with no vectors: lexical only, and said */
    o.vision_model = "other";
    T_OK(srch_search(s, "lighthouse", &o, &r, &err), &err);
    T_EQ_INT(r.active_mask, 1u << SRCH_LEXICAL);
    T_EQ_INT(r.missing_mask, 1u << SRCH_VISION);
    srch_results_free(&r);
    T_EQ_INT(srch_search(s, "-lighthouse", &o, &r, &err), VX_EINVAL);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"translate", test_translate},       {"search", test_search},
        {"storage_text", test_storage_text}, {"hostile_queries", test_hostile_queries},
        {"text_clean", test_text_clean},     {"sidecars", test_sidecars},
        {"similar", test_similar},           {"fusion", test_fusion},
    };
    return T_RUN(argc, argv, cases);
}
