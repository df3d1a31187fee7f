/* query/ tests: the engine without a model (lexical only, filters that keep 1 of 500 segments,
 * paging, errors), with the tiny reference model (text vectors and their cache, speech and vision
 * spaces, vector filters) and on videos indexed by the real indexer (a clip of an indexed video
 * finds that very segment, from a file, from memory and by video id; re-ranking with the
 * matching head runs, reports its cost and orders by the head's logit; bad ranges, unknown ids).
 * Environment: VIDX_TEST_MODEL (a model directory with vision, text and matching head),
 * VIDX_TEST_FFMPEG (the ffmpeg program, for the indexed videos). */
#include "enc.h"
#include "idx.h"
#include "media.h"
#include "qry.h"
#include "testlib.h"

#include <pthread.h>
#include <sys/stat.h>

#define N_OTHER 499 /* segments outside the filter */

/* A catalog of 1 + N_OTHER segments that all say "harbor": the one in library "alpha"
 * (/lib/a/target.mp4, 4 s) says it once among many words (a weak BM25 match), the 499 in
 * library "beta" (/lib/b/vNN.mp4, 80 s, ten segments each with gaps so they never merge) say it
 * three times in four words. With model_id, every segment gets a vision vector of dim; the
 * target's is the opposite of qvec (the worst cosine). */
static st_store *fill(const char *dir, const char *model_id, int dim, const float *qvec,
                      int64_t *target_seg, int64_t *target_video)
{
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    T_OK(st_open(dir, &so, &s, &err), &err);
    int64_t lib_a, lib_b;
    T_OK(st_library_add(s, "alpha", "/lib/a", &lib_a, &err), &err);
    T_OK(st_library_add(s, "beta", "/lib/b", &lib_b, &err), &err);
    T_OK(st_begin(s, &err), &err);
    float *vec = calloc((size_t)(dim > 0 ? dim : 1), sizeof *vec);
    uint32_t rng = 12345;
    int made = 0;
    for (int v = 0; made < 1 + N_OTHER; v++) {
        st_video video = {0};
        char loc[64];
        if (v == 0)
            snprintf(loc, sizeof loc, "/lib/a/target.mp4");
        else
            snprintf(loc, sizeof loc, "/lib/b/v%02d.mp4", v);
        video.library_id = v == 0 ? lib_a : lib_b;
        video.location = loc;
        video.duration_ms = v == 0 ? 4000 : 80000;
        video.mtime_ms = v == 0 ? 1000000 : 2000000;
        video.status = ST_VIDEO_INDEXED;
        int64_t vid;
        T_OK(st_video_upsert(s, &video, &vid, &err), &err);
        for (int k = 0; k < (v == 0 ? 1 : 10) && made < 1 + N_OTHER; k++, made++) {
            st_segment seg = {0};
            seg.video_id = vid;
            seg.start_ms = k * 8000;
            seg.end_ms = k * 8000 + 4000;
            int64_t sid;
            T_OK(st_segment_add(s, &seg, &sid, &err), &err);
            const char *body = v == 0 ? "we walked along the old stone wall past the market and "
                                        "the church until at last we saw the harbor lights far "
                                        "away over the water in the evening"
                                      : "harbor harbor harbor boat";
            T_OK(st_text_add(s, sid, "asr", seg.start_ms, seg.end_ms, body, &err), &err);
            if (v == 0) {
                *target_seg = sid;
                *target_video = vid;
            }
            if (!model_id) continue;
            for (int i = 0; i < dim; i++) {
                rng = rng * 1664525u + 1013904223u;
                vec[i] = v == 0 ? -qvec[i] : (float)((rng >> 8) & 0xffff) / 65536.0f - 0.5f;
            }
            T_OK(st_embedding_put(s, sid, model_id, "vision", dim, vec, &err), &err);
        }
    }
    free(vec);
    T_OK(st_commit(s, &err), &err);
    return s;
}

static int has_segment(const srch_result *x, int64_t id)
{
    for (size_t i = 0; i < x->segment_count; i++)
        if (x->segment_ids[i] == id) return 1;
    return 0;
}

static void expect_error(qry_engine *e, st_store *s, const qry_request *rq, vx_status want)
{
    vx_err err = {0};
    srch_results r;
    vx_status st = qry_run(e, s, rq, &r, NULL, &err);
    if (st != want) T_FAIL("status %d (%s), expected %d", st, err.msg, want);
    T_ASSERT(err.msg[0]);
    T_EQ_INT(r.count, 0);
    T_ASSERT(r.items == NULL);
}

/* Paging: pages of 5 are the 10 first results cut in two, ranks continue, total is shared. */
static void check_paging(qry_engine *e, st_store *s, qry_request rq)
{
    vx_err err = {0};
    srch_results all, p1, p2;
    qry_stats stats;
    rq.limit = 10;
    rq.offset = 0;
    T_OK(qry_run(e, s, &rq, &all, &stats, &err), &err);
    T_EQ_INT(all.count, 10);
    T_EQ_INT(stats.total, all.total);
    rq.limit = 5;
    T_OK(qry_run(e, s, &rq, &p1, NULL, &err), &err);
    rq.offset = 5;
    T_OK(qry_run(e, s, &rq, &p2, NULL, &err), &err);
    T_EQ_INT(p1.count, 5);
    T_EQ_INT(p2.count, 5);
    T_EQ_INT(p2.total, all.total);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(p1.items[i].rank, i + 1);
        T_EQ_INT(p2.items[i].rank, i + 6);
        T_EQ_INT(p1.items[i].segment_ids[0], all.items[i].segment_ids[0]);
        T_EQ_INT(p2.items[i].segment_ids[0], all.items[i + 5].segment_ids[0]);
    }
    /* past the end: no results, not an error; total then counts every match there is */
    rq.offset = 5000;
    srch_results none;
    T_OK(qry_run(e, s, &rq, &none, NULL, &err), &err);
    T_EQ_INT(none.count, 0);
    T_EQ_INT(none.total, 1 + N_OTHER);
    srch_results_free(&all);
    srch_results_free(&p1);
    srch_results_free(&p2);
    srch_results_free(&none);
}

static void test_nomodel(void)
{
    char *dir = t_tempdir("qry-nomodel");
    int64_t target, target_video;
    st_store *s = fill(dir, NULL, 0, NULL, &target, &target_video);
    vx_err err = {0};
    qry_engine *e = NULL;
    qry_options qo = qry_options_default();
    T_OK(qry_engine_open(&qo, &e, &err), &err);
    T_ASSERT(qry_engine_model_id(e) == NULL);
    T_EQ_INT(qry_engine_text_modalities(e), 1u << SRCH_LEXICAL);
    T_EQ_INT(qry_engine_can_clip(e), 0);
    T_EQ_INT(qry_engine_can_rerank(e), 0);

    qry_request rq = qry_request_default();
    rq.text = "harbor";
    srch_results r;
    qry_stats stats;
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(r.count, 10);
    T_EQ_INT(r.active_mask, 1u << SRCH_LEXICAL);
    for (size_t i = 0; i < r.count; i++)
        T_ASSERT(!has_segment(&r.items[i], target)); /* the weak match is far down */
    T_ASSERT(stats.total >= 10);
    srch_results_free(&r);

    /* each filter that keeps only the target (1 of 500 segments) still finds it */
    for (int f = 0; f < 4; f++) {
        qry_request fr = rq;
        st_library lib;
        switch (f) {
        case 0:
            T_OK(st_library_find(s, "alpha", &lib, &err), &err);
            fr.filter.library_id = lib.id;
            st_library_clear(&lib);
            break;
        case 1:
            fr.filter.path_prefix = "/lib/a/";
            break;
        case 2:
            fr.filter.max_duration_ms = 5000;
            break;
        case 3:
            fr.filter.modified_before_ms = 1500000;
            break;
        }
        T_OK(qry_run(e, s, &fr, &r, &stats, &err), &err);
        if (r.count != 1) T_FAIL("filter %d: %zu results, expected 1", f, r.count);
        T_ASSERT(has_segment(&r.items[0], target));
        T_EQ_INT(r.items[0].video.id, target_video);
        T_EQ_INT(stats.total, 1);
        srch_results_free(&r);
    }
    /* a filter nothing passes: no results, no error; a prefix with LIKE's wildcards is literal */
    rq.filter.path_prefix = "/lib/%";
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    T_EQ_INT(r.count, 0);
    srch_results_free(&r);
    rq.filter.path_prefix = NULL;
    check_paging(e, s, rq);

    /* errors */
    qry_request bad = rq;
    bad.limit = 0;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.offset = -1;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.text = NULL;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.text = "-harbor"; /* only excluded words, and nothing else can run */
    expect_error(e, s, &bad, VX_EINVAL);
    static char longq[SRCH_QUERY_MAX_BYTES + 2];
    memset(longq, 'a', sizeof longq - 1);
    bad.text = longq;
    expect_error(e, s, &bad, VX_ELIMIT);
    bad.text = "bad \xff\xfe utf-8 harbor \x01"; /* any bytes: no crash, still found */
    T_OK(qry_run(e, s, &bad, &r, NULL, &err), &err);
    srch_results_free(&r);
    bad = rq;
    bad.rerank = 5;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.modalities = 1u << SRCH_VISION;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.filter.min_duration_ms = 9000;
    bad.filter.max_duration_ms = 5000;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = qry_request_default();
    bad.kind = QRY_CLIP_FILE;
    bad.clip_path = "/nonexistent.mp4";
    expect_error(e, s, &bad, VX_EINVAL); /* no vision tower */
    bad.kind = QRY_SEGMENT;
    bad.segment_id = 987654321;
    expect_error(e, s, &bad, VX_ENOTFOUND);
    bad.segment_id = target; /* exists, has no vectors */
    expect_error(e, s, &bad, VX_EUNSUPPORTED);
    bad.kind = (qry_kind)77;
    expect_error(e, s, &bad, VX_EINVAL);
    qry_engine_close(e);

    /* a bad model directory is an error naming it */
    qo.model_dir = dir; /* a data directory, not a model */
    T_ASSERT(qry_engine_open(&qo, &e, &err) != VX_OK);
    T_ASSERT(e == NULL);
    T_ASSERT(err.msg[0]);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

static const char *model_dir(void)
{
    const char *m = getenv("VIDX_TEST_MODEL");
    if (!m || !m[0]) T_FAIL("VIDX_TEST_MODEL is not set");
    return m;
}

static void test_model(void)
{
    vx_err err = {0};
    /* the query vector, independently of the engine: the encoder's text tower */
    enc_model *m = NULL;
    enc_text *t = NULL;
    T_OK(enc_model_open(model_dir(), &m, &err), &err);
    T_OK(enc_text_create(m, 1, &t, &err), &err);
    int dim = enc_text_embed_dim(t);
    float *q = malloc((size_t)dim * sizeof *q), *q2 = malloc((size_t)dim * sizeof *q2);
    const char *text = "harbor lights at night";
    T_OK(enc_text_embed(t, text, strlen(text), q, &err), &err);
    const char *other = "a kite over the dunes";
    T_OK(enc_text_embed(t, other, strlen(other), q2, &err), &err);
    const char *model_id = enc_model_get_info(m)->model_id;

    char *dir = t_tempdir("qry-model");
    int64_t target, target_video;
    st_store *s = fill(dir, model_id, dim, q, &target, &target_video);
    qry_engine *e = NULL;
    qry_options qo = qry_options_default();
    qo.model_dir = model_dir();
    qo.threads = 1;
    qo.text_cache_entries = 2;
    T_OK(qry_engine_open(&qo, &e, &err), &err);
    T_EQ_STR(qry_engine_model_id(e), model_id);
    T_EQ_INT(qry_engine_text_modalities(e),
             (1u << SRCH_LEXICAL) | (1u << SRCH_VISION) | (1u << SRCH_SPEECH));
    T_EQ_INT(qry_engine_can_clip(e), 1);
    T_EQ_INT(qry_engine_can_rerank(e), 1);

    /* vision: the catalog's vectors, cosines against the text tower's vector */
    qry_request rq = qry_request_default();
    rq.text = text;
    rq.modalities = 1u << SRCH_VISION;
    srch_results r;
    qry_stats stats;
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(stats.text_cache_hit, 0);
    T_ASSERT(stats.embed_ms > 0);
    T_EQ_INT(r.active_mask, 1u << SRCH_VISION);
    T_EQ_INT(r.count, 10);
    for (size_t i = 0; i < r.count; i++) {
        T_ASSERT(r.items[i].scored_mask & (1u << SRCH_VISION));
        T_ASSERT(!has_segment(&r.items[i], target)); /* its cosine is -1: the last */
        if (i) T_ASSERT(r.items[i].score <= r.items[i - 1].score);
    }
    srch_results_free(&r);
    /* the same text again: from the cache, same results */
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(stats.text_cache_hit, 1);
    T_EQ_INT(stats.embed_ms, 0);
    srch_results_free(&r);
    /* two others fill the 2-entry cache and push the first out */
    qry_request r2 = rq;
    r2.text = other;
    T_OK(qry_run(e, s, &r2, &r, &stats, &err), &err);
    T_EQ_INT(stats.text_cache_hit, 0);
    srch_results_free(&r);
    r2.text = "third query";
    T_OK(qry_run(e, s, &r2, &r, &stats, &err), &err);
    srch_results_free(&r);
    r2.text = other;
    T_OK(qry_run(e, s, &r2, &r, &stats, &err), &err);
    T_EQ_INT(stats.text_cache_hit, 1);
    srch_results_free(&r);
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(stats.text_cache_hit, 0);
    srch_results_free(&r);

    /* the text tower sees the words, not the syntax: excluded terms, OR, quotes and '*' go */
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    qry_request syn = rq;
    syn.text = "\"harbor lights\" -boat at OR night* -\"old town\"";
    srch_results r3;
    T_OK(qry_run(e, s, &syn, &r3, NULL, &err), &err);
    T_EQ_INT(r3.count, r.count);
    for (size_t i = 0; i < r.count; i++)
        T_NEAR(r3.items[i].scores[SRCH_VISION], r.items[i].scores[SRCH_VISION], 1e-6);
    srch_results_free(&r);
    srch_results_free(&r3);

    /* a vector filter keeping the target (1 of 500) finds it although its cosine is the worst */
    rq.filter.path_prefix = "/lib/a/";
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    T_EQ_INT(r.count, 1);
    T_ASSERT(has_segment(&r.items[0], target));
    T_NEAR(r.items[0].scores[SRCH_VISION], -1.0, 1e-5);
    srch_results_free(&r);
    rq.filter.path_prefix = NULL;
    check_paging(e, s, rq);

    /* speech: one segment's speech vector is the other text's; the speech space alone finds
     * it first with cosine 1, and fused with the others it ranks first too */
    int64_t speech_seg = target + 17;
    T_OK(st_embedding_put(s, speech_seg, model_id, "speech", dim, q2, &err), &err);
    T_OK(st_embedding_put(s, speech_seg + 2, model_id, "speech", dim, q, &err), &err);
    rq = qry_request_default();
    rq.text = other;
    rq.modalities = 1u << SRCH_SPEECH;
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    T_EQ_INT(r.active_mask, 1u << SRCH_SPEECH);
    T_EQ_INT(r.count, 2);
    T_ASSERT(has_segment(&r.items[0], speech_seg));
    T_NEAR(r.items[0].scores[SRCH_SPEECH], 1.0, 1e-5);
    T_EQ_STR(r.items[0].match_source, "speech");
    srch_results_free(&r);
    /* all modalities: the speech match is among the fused results with its speech score
     * (its rank depends on its vision score: a range without speech is not penalised) */
    rq.modalities = 0;
    rq.limit = 1000;
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    T_EQ_INT(r.active_mask & ~(1u << SRCH_LEXICAL), (1u << SRCH_VISION) | (1u << SRCH_SPEECH));
    int seen = 0;
    for (size_t i = 0; i < r.count; i++) {
        T_ASSERT(r.items[i].score >= 0 && r.items[i].score <= 1);
        if (!has_segment(&r.items[i], speech_seg)) continue;
        seen = 1;
        T_NEAR(r.items[i].scores[SRCH_SPEECH], 1.0, 1e-5);
    }
    T_ASSERT(seen);
    srch_results_free(&r);

    /* find similar from the stored vectors */
    rq = qry_request_default();
    rq.kind = QRY_SEGMENT;
    rq.segment_id = speech_seg;
    T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
    T_ASSERT(r.count > 0);
    for (size_t i = 0; i < r.count; i++)
        T_ASSERT(!has_segment(&r.items[i], speech_seg));
    srch_results_free(&r);

    qry_engine_close(e);
    st_close(s);
    t_rmtree(dir);
    free(dir);
    enc_text_free(t);
    enc_model_close(m);
    free(q);
    free(q2);
}

/* One engine serves many threads (qry.h), each with its own read-only store: the towers and
 * the caches are shared, the answers are the single-threaded ones. */
typedef struct thread_job {
    qry_engine *e;
    const char *data_dir;
    const char *texts[3];
    int64_t want_first[3];
    int failures;
} thread_job;

static void *query_thread(void *arg)
{
    thread_job *j = arg;
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    if (st_open(j->data_dir, &so, &s, &err)) {
        j->failures++;
        return NULL;
    }
    for (int k = 0; k < 12; k++) {
        qry_request rq = qry_request_default();
        rq.text = j->texts[k % 3];
        srch_results r;
        if (qry_run(j->e, s, &rq, &r, NULL, &err) || !r.count ||
            r.items[0].segment_ids[0] != j->want_first[k % 3])
            j->failures++;
        srch_results_free(&r);
    }
    st_close(s);
    return NULL;
}

static void test_threads(void)
{
    vx_err err = {0};
    qry_engine *e = NULL;
    qry_options qo = qry_options_default();
    qo.model_dir = model_dir();
    qo.threads = 1;
    qo.text_cache_entries = 2; /* smaller than the texts: entries are evicted under load */
    T_OK(qry_engine_open(&qo, &e, &err), &err);
    enc_model *m = NULL;
    T_OK(enc_model_open(model_dir(), &m, &err), &err);
    int dim = enc_model_get_info(m)->embed_dim;
    enc_model_close(m);
    float *q = calloc((size_t)dim, sizeof *q);
    q[0] = 1;
    char *dir = t_tempdir("qry-threads");
    int64_t target, target_video;
    st_store *w = fill(dir, qry_engine_model_id(e), dim, q, &target, &target_video);
    free(q);
    T_OK(st_flush(w, &err), &err);
    st_close(w);
    thread_job job = {e, dir, {"harbor", "boat at night", "harbor boat"}, {0}, 0};
    st_store *s = NULL;
    st_options so = st_options_default();
    T_OK(st_open(dir, &so, &s, &err), &err);
    for (int i = 0; i < 3; i++) {
        qry_request rq = qry_request_default();
        rq.text = job.texts[i];
        srch_results r;
        T_OK(qry_run(e, s, &rq, &r, NULL, &err), &err);
        T_ASSERT(r.count > 0);
        job.want_first[i] = r.items[0].segment_ids[0];
        srch_results_free(&r);
    }
    st_close(s);
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = job;
        T_EQ_INT(pthread_create(&th[i], NULL, query_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(jobs[i].failures, 0);
    }
    qry_engine_close(e);
    t_rmtree(dir);
    free(dir);
}

/* Two 8-second videos made by FFmpeg, indexed with the model by the real indexer. */
static st_store *indexed_library(const char *dir, char paths[2][512], int64_t video_ids[2])
{
    const char *ffmpeg = getenv("VIDX_TEST_FFMPEG");
    if (!ffmpeg || !ffmpeg[0]) T_FAIL("VIDX_TEST_FFMPEG is not set");
    char lib[256], cmd[2048];
    T_ASSERT(strlen(dir) < 200);
    snprintf(lib, sizeof lib, "%s/lib", dir);
    T_ASSERT(mkdir(lib, 0755) == 0);
    const char *patterns[2] = {"testsrc", "smptebars"};
    for (int i = 0; i < 2; i++) {
        snprintf(paths[i], 512, "%s/%s.mp4", lib, patterns[i]);
        snprintf(cmd, sizeof cmd,
                 "'%s' -nostdin -hide_banner -loglevel error -y -f lavfi -i "
                 "%s=size=96x64:rate=10:duration=8 -pix_fmt yuv420p '%s'",
                 ffmpeg, patterns[i], paths[i]);
        T_EQ_INT(system(cmd), 0);
    }
    vx_err err = {0};
    st_store *s = NULL;
    st_options so = st_options_default();
    so.mode = ST_WRITE;
    char data[512];
    snprintf(data, sizeof data, "%s/data", dir);
    T_OK(st_open(data, &so, &s, &err), &err);
    idx_options io = idx_options_default();
    io.root = lib;
    io.model_dir = model_dir();
    io.precision = "fp32"; /* the re-ranking check below recomputes tokens in fp32 */
    io.asr = io.ocr = io.subtitles = io.thumbnails = 0;
    io.jobs = 1;
    io.encoder_threads = 1;
    idx_summary sum;
    T_OK(idx_run(s, &io, &sum, &err), &err);
    T_EQ_INT(sum.indexed, 2);
    idx_summary_free(&sum);
    for (int i = 0; i < 2; i++) {
        st_video v;
        T_OK(st_video_find(s, sum.library_id ? sum.library_id : 1, paths[i], &v, &err), &err);
        video_ids[i] = v.id;
        st_video_clear(&v);
    }
    return s;
}

static void expect_self(qry_engine *e, st_store *s, const qry_request *rq, int64_t video_id,
                        int64_t start_ms)
{
    vx_err err = {0};
    srch_results r;
    qry_stats stats;
    T_OK(qry_run(e, s, rq, &r, &stats, &err), &err);
    T_ASSERT(r.count > 0);
    T_EQ_INT(r.active_mask, 1u << SRCH_VISION);
    T_EQ_INT(r.items[0].video.id, video_id);
    T_EQ_INT(r.items[0].match_start_ms, start_ms);
    T_NEAR(r.items[0].scores[SRCH_VISION], 1.0, 1e-4); /* the very vector the indexer stored */
    T_ASSERT(!strncmp(r.query, "clip:", 5));
    T_ASSERT(stats.embed_ms > 0);
    srch_results_free(&r);
}

/* The matching head's logit for text and the window of video_id starting at start_ms,
 * computed here from media/ and encoder/ directly (decode, preprocess, tokens, head). */
static double independent_logit(st_store *s, int64_t video_id, int64_t start_ms, const char *text)
{
    vx_err err = {0};
    st_video v;
    T_OK(st_video_get(s, video_id, &v, &err), &err);
    st_segment *segs = NULL;
    size_t nsegs = 0;
    T_OK(st_segment_list(s, video_id, 0, &segs, &nsegs, &err), &err);
    int64_t end_ms = -1;
    for (size_t i = 0; i < nsegs; i++)
        if (segs[i].start_ms == start_ms) end_ms = segs[i].end_ms;
    T_ASSERT(end_ms > start_ms);
    enc_model *m = NULL;
    enc_vision *vis = NULL;
    enc_text *t = NULL;
    T_OK(enc_model_open(model_dir(), &m, &err), &err);
    T_OK(enc_vision_create(m, 0, 0, 1, ENC_PRECISION_FP32, &vis, &err), &err);
    T_OK(enc_text_create(m, 1, &t, &err), &err);
    media_reader *r = NULL;
    T_OK(media_open(v.location, MEDIA_NEED_VIDEO, &r, &err), &err);
    media_frames frames = {0};
    T_OK(media_sample_window(r, start_ms, end_ms, enc_vision_frames(vis), &frames, &err), &err);
    media_preproc *pp = NULL;
    int px = enc_vision_image_size(vis);
    T_OK(media_preproc_create(px, px, MEDIA_IMAGENET_MEAN, MEDIA_IMAGENET_STD, &pp, &err), &err);
    float *pixels = malloc(media_preproc_tensor_floats(pp, frames.count) * sizeof *pixels);
    T_OK(media_preproc_frames(pp, &frames, pixels, &err), &err);
    int64_t n = enc_vision_token_count(vis);
    float *tokens = malloc((size_t)n * (size_t)enc_vision_width(vis) * sizeof *tokens);
    float *emb = malloc((size_t)enc_vision_embed_dim(vis) * sizeof *emb);
    T_OK(enc_vision_forward(vis, pixels, emb, tokens, &err), &err);
    int len = enc_text_max_len(t);
    int32_t *ids = malloc((size_t)len * sizeof *ids), *mask = malloc((size_t)len * sizeof *mask);
    T_OK(enc_text_tokenize(t, text, strlen(text), ids, mask, NULL, NULL, &err), &err);
    float logit = 0;
    T_OK(enc_text_itm(t, ids, mask, tokens, n, &logit, &err), &err);
    free(ids);
    free(mask);
    free(emb);
    free(tokens);
    free(pixels);
    media_preproc_free(pp);
    media_frames_free(&frames);
    media_close(r);
    enc_text_free(t);
    enc_vision_free(vis);
    enc_model_close(m);
    st_segments_free(segs, nsegs);
    st_video_clear(&v);
    return logit;
}

static void test_clip(void)
{
    char *dir = t_tempdir("qry-clip");
    char paths[2][512];
    int64_t vids[2];
    st_store *s = indexed_library(dir, paths, vids);
    vx_err err = {0};
    qry_engine *e = NULL;
    qry_options qo = qry_options_default();
    qo.model_dir = model_dir();
    qo.threads = 1;
    qo.precision = "fp32"; /* as the library was indexed, and as the reference below computes */
    T_OK(qry_engine_open(&qo, &e, &err), &err);

    qry_request rq = qry_request_default();
    rq.kind = QRY_CLIP_FILE;
    rq.clip_path = paths[0]; /* testsrc moves: its windows differ */
    rq.start_ms = 4000;
    rq.end_ms = 8000;
    expect_self(e, s, &rq, vids[0], 4000);
    rq.clip_path = paths[1];
    rq.start_ms = 0;
    rq.end_ms = 0; /* the default window: the first 4 s, the first segment */
    expect_self(e, s, &rq, vids[1], 0);

    FILE *f = fopen(paths[0], "rb");
    T_ASSERT(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    T_ASSERT(n > 0 && n < sizeof buf);
    rq = qry_request_default();
    rq.kind = QRY_CLIP_MEMORY;
    rq.clip_data = buf;
    rq.clip_size = n;
    rq.start_ms = 4000;
    rq.end_ms = 8000;
    expect_self(e, s, &rq, vids[0], 4000);

    rq = qry_request_default();
    rq.kind = QRY_CLIP_VIDEO;
    rq.video_id = vids[0];
    rq.start_ms = 0;
    rq.end_ms = 4000;
    expect_self(e, s, &rq, vids[0], 0);

    /* errors: bad ranges, unknown ids, a clip that is not a video, a text-only modality */
    qry_request bad = rq;
    bad.start_ms = 9000; /* after the end (8 s) */
    bad.end_ms = 0;
    expect_error(e, s, &bad, VX_EINVAL);
    bad.start_ms = 3000;
    bad.end_ms = 2000;
    expect_error(e, s, &bad, VX_EINVAL);
    bad.start_ms = -1;
    expect_error(e, s, &bad, VX_EINVAL);
    bad.start_ms = INT64_MAX; /* no overflow adding the default window */
    bad.end_ms = 0;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = rq;
    bad.video_id = 424242;
    expect_error(e, s, &bad, VX_ENOTFOUND);
    bad = rq;
    bad.modalities = 1u << SRCH_LEXICAL;
    expect_error(e, s, &bad, VX_EINVAL);
    bad = qry_request_default();
    bad.kind = QRY_CLIP_MEMORY;
    bad.clip_data = "not a video at all";
    bad.clip_size = 18;
    T_ASSERT(qry_run(e, s, &bad, &(srch_results){0}, NULL, &err) != VX_OK);
    bad.kind = QRY_CLIP_FILE;
    bad.clip_path = "/nonexistent/clip.mp4";
    T_ASSERT(qry_run(e, s, &bad, &(srch_results){0}, NULL, &err) != VX_OK);

    /* re-ranking: each video's windows merge into one range; both get the matching head's
     * logit and are ordered by it */
    rq = qry_request_default();
    rq.text = "colour bars";
    rq.rerank = 2;
    rq.rerank_budget_ms = 60000;
    srch_results r;
    qry_stats stats;
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(stats.reranked, 2);
    T_ASSERT(stats.rerank_ms > 0);
    T_EQ_INT(stats.rerank_budget_hit, 0);
    for (size_t i = 0; i < r.count; i++) {
        T_EQ_INT(r.items[i].rank, (int)i + 1);
        T_EQ_INT(r.items[i].reranked, 1);
        if (i) T_ASSERT(r.items[i].rerank_score <= r.items[i - 1].rerank_score);
    }
    T_EQ_INT(stats.rerank_cache_hits, 0);
    for (size_t i = 0; i < r.count; i++) {
        double want =
            independent_logit(s, r.items[i].video.id, r.items[i].match_start_ms, "colour bars");
        T_NEAR(r.items[i].rerank_score, want, 1e-4 * (fabs(want) > 1 ? fabs(want) : 1));
    }
    double first = r.items[0].rerank_score;
    int64_t first_seg = r.items[0].segment_ids[0];
    srch_results_free(&r);
    /* again: the tokens come from the cache, the logits are the same */
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(stats.reranked, 2);
    T_EQ_INT(stats.rerank_cache_hits, 2);
    T_NEAR(r.items[0].rerank_score, first, 1e-6);
    T_EQ_INT(r.items[0].segment_ids[0], first_seg);
    srch_results_free(&r);
    /* a token quota below one segment's tokens caches nothing, and changes nothing else */
    qry_engine *small = NULL;
    qry_options so = qo;
    so.token_cache_bytes = 1;
    T_OK(qry_engine_open(&so, &small, &err), &err);
    for (int k = 0; k < 2; k++) {
        T_OK(qry_run(small, s, &rq, &r, &stats, &err), &err);
        T_EQ_INT(stats.reranked, 2);
        T_EQ_INT(stats.rerank_cache_hits, 0);
        T_NEAR(r.items[0].rerank_score, first, 1e-6);
        srch_results_free(&r);
    }
    qry_engine_close(small);
    /* paging applies after re-ranking: page 2 of 1 continues the re-ranked order */
    rq.limit = 1;
    rq.offset = 1;
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.items[0].rank, 2);
    T_EQ_INT(r.items[0].reranked, 1);
    srch_results_free(&r);
    /* a budget that is gone before the first segment: nothing re-ranked, and it says so */
    rq.offset = 0;
    rq.rerank_budget_ms = 1e-6;
    T_OK(qry_run(e, s, &rq, &r, &stats, &err), &err);
    T_EQ_INT(stats.rerank_budget_hit, 1);
    T_EQ_INT(stats.reranked, 0);
    T_EQ_INT(r.items[0].reranked, 0);
    srch_results_free(&r);
    bad = rq;
    bad.rerank = 300;
    expect_error(e, s, &bad, VX_EINVAL);

    qry_engine_close(e);
    st_close(s);
    t_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"nomodel", test_nomodel},
        {"model", test_model},
        {"clip", test_clip},
        {"threads", test_threads},
    };
    return T_RUN(argc, argv, cases);
}
