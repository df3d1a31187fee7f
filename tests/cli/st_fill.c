/* Test helper for the CLI integration tests: fills a data directory through storage/'s public
 * API the way the indexer will, so `vidx status` and `vidx verify` run on real catalogs and
 * real FAISS indexes.
 *
 *   st_fill DATA fill VIDEOS SEGMENTS   VIDEOS videos of SEGMENTS segments with vectors, saved
 *   st_fill DATA loop SEED              commits videos forever; prints "committed ID SEGMENTS"
 *                                       after each COMMIT returns (for the kill test)
 *   st_fill DATA hold SECONDS           holds the writer lock for SECONDS */
#include "st.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 16
#define MODEL "test-model-v1"

static uint64_t rng;
static double next_uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int die(const vx_err *err)
{
    fprintf(stderr, "st_fill: %s\n", err->msg);
    return 1;
}

/* One video with its segments, vectors and texts, in one transaction. */
static vx_status add_video(st_store *s, int64_t lib, const char *location, int segments,
                           int64_t *out_id, vx_err *err)
{
    vx_status st = st_begin(s, err);
    if (st) return st;
    st_video v = {0};
    v.library_id = lib;
    v.location = (char *)location;
    v.size_bytes = 1000 + segments;
    v.mtime_ms = 1700000000000LL;
    v.content_hash = "00ff";
    v.duration_ms = segments * 4000LL;
    v.status = ST_VIDEO_INDEXED;
    if ((st = st_video_upsert(s, &v, out_id, err))) goto fail;
    for (int i = 0; i < segments; i++) {
        st_segment seg = {0};
        seg.video_id = *out_id;
        seg.level = ST_LEVEL_WINDOW;
        seg.start_ms = i * 4000LL;
        seg.end_ms = seg.start_ms + 4000;
        int64_t sid;
        if ((st = st_segment_add(s, &seg, &sid, err))) goto fail;
        float vec[DIM];
        for (int d = 0; d < DIM; d++) vec[d] = (float)(next_uniform() * 2 - 1);
        if ((st = st_embedding_put(s, sid, MODEL, "vision", DIM, vec, err))) goto fail;
        char text[64];
        snprintf(text, sizeof text, "segment %d of %s", i, location);
        if ((st = st_text_add(s, sid, "subtitle", seg.start_ms, seg.end_ms, text, err))) goto fail;
    }
    return st_commit(s, err);
fail:
    st_rollback(s);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: st_fill DATA fill|loop|hold ARG [ARG]\n");
        return 2;
    }
    vx_err err = {0};
    st_options opts = st_options_default();
    opts.mode = ST_WRITE;
    st_store *s = NULL;
    if (st_open(argv[1], &opts, &s, &err)) return die(&err);
    const char *mode = argv[2];
    int64_t lib;
    st_library found;
    if (st_library_find(s, "lib", &found, &err) == VX_OK) {
        lib = found.id;
        st_library_clear(&found);
    } else if (st_library_add(s, "lib", "/media/lib", &lib, &err)) {
        return die(&err);
    }

    if (!strcmp(mode, "hold")) {
        printf("holding\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[3]));
    } else if (!strcmp(mode, "fill")) {
        int videos = atoi(argv[3]), segments = argc > 4 ? atoi(argv[4]) : 3;
        rng = 42;
        for (int i = 0; i < videos; i++) {
            char loc[64];
            snprintf(loc, sizeof loc, "/media/lib/video%03d.mp4", i);
            int64_t id;
            if (add_video(s, lib, loc, segments, &id, &err)) return die(&err);
        }
        if (st_flush(s, &err)) return die(&err);
        printf("filled %d videos\n", videos);
    } else if (!strcmp(mode, "loop")) {
        rng = (uint64_t)atoll(argv[3]) * 2654435761ULL + 1;
        for (long i = 0;; i++) {
            char loc[96];
            snprintf(loc, sizeof loc, "/media/lib/loop-%s-%06ld.mp4", argv[3], i);
            int segments = 1 + (int)(next_uniform() * 60);
            int64_t id;
            if (add_video(s, lib, loc, segments, &id, &err)) return die(&err);
            /* Only now is the video durable: report it. */
            printf("committed %lld %d\n", (long long)id, segments);
            fflush(stdout);
            if (i % 7 == 3 && st_flush(s, &err)) return die(&err);
        }
    } else {
        fprintf(stderr, "st_fill: unknown mode %s\n", mode);
        return 2;
    }
    st_close(s);
    return 0;
}
