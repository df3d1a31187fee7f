/* vidx status: what a data directory holds and whether its indexes reflect the catalog. */
#include "cli.h"
#include "st.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *stats_json(const char *data_dir, const st_stats *s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "data_dir", data_dir);
    cJSON_AddBoolToObject(root, "exists", 1);
    cJSON_AddNumberToObject(root, "schema_version", s->schema_version);
    cJSON_AddNumberToObject(root, "catalog_generation", (double)s->catalog_generation);
    cJSON_AddNumberToObject(root, "libraries", (double)s->libraries);
    cJSON *videos = cJSON_AddObjectToObject(root, "videos");
    cJSON_AddNumberToObject(videos, "total", (double)s->videos);
    for (int i = 0; i < ST_VIDEO_STATUS_COUNT; i++)
        cJSON_AddNumberToObject(videos, st_video_status_name((st_video_status)i),
                                (double)s->videos_by_status[i]);
    cJSON *segments = cJSON_AddObjectToObject(root, "segments");
    cJSON_AddNumberToObject(segments, "total", (double)s->segments);
    cJSON_AddNumberToObject(segments, "window", (double)s->segments_by_level[0]);
    cJSON_AddNumberToObject(segments, "scene", (double)s->segments_by_level[1]);
    cJSON_AddNumberToObject(segments, "video", (double)s->segments_by_level[2]);
    cJSON_AddNumberToObject(root, "embeddings", (double)s->embeddings);
    cJSON_AddNumberToObject(root, "texts", (double)s->texts);
    cJSON_AddNumberToObject(root, "index_runs", (double)s->runs);
    cJSON *spaces = cJSON_AddArrayToObject(root, "indexes");
    for (size_t i = 0; i < s->space_count; i++) {
        const st_space_stats *sp = &s->spaces[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", sp->model);
        cJSON_AddStringToObject(o, "modality", sp->modality);
        cJSON_AddNumberToObject(o, "dim", sp->dim);
        cJSON_AddNumberToObject(o, "vectors", (double)sp->vectors);
        cJSON_AddNumberToObject(o, "file_vectors", (double)sp->file_vectors);
        cJSON_AddNumberToObject(o, "file_generation", (double)sp->file_generation);
        cJSON_AddNumberToObject(o, "file_bytes", (double)sp->file_bytes);
        cJSON_AddStringToObject(o, "state", sp->file_state ? sp->file_state : "");
        cJSON_AddStringToObject(o, "index_type", sp->index_type ? sp->index_type : "");
        cJSON_AddItemToArray(spaces, o);
    }
    cJSON *disk = cJSON_AddObjectToObject(root, "disk_bytes");
    cJSON_AddNumberToObject(disk, "catalog", (double)s->catalog_bytes);
    cJSON_AddNumberToObject(disk, "index", (double)s->index_bytes);
    cJSON_AddNumberToObject(disk, "thumbs", (double)s->thumbs_bytes);
    return root;
}

static void print_json(cJSON *root)
{
    char *text = cJSON_Print(root);
    if (text) puts(text);
    free(text);
    cJSON_Delete(root);
}

static void print_text(const char *data_dir, const st_stats *s)
{
    char cat[32], idx[32], th[32];
    vx_format_size(s->catalog_bytes, cat, sizeof cat);
    vx_format_size(s->index_bytes, idx, sizeof idx);
    vx_format_size(s->thumbs_bytes, th, sizeof th);
    printf("data directory  %s (schema %d, generation %lld)\n", data_dir, s->schema_version,
           (long long)s->catalog_generation);
    printf("libraries       %lld\n", (long long)s->libraries);
    printf("videos          %lld (indexed %lld, pending %lld, failed %lld, missing %lld)\n",
           (long long)s->videos, (long long)s->videos_by_status[ST_VIDEO_INDEXED],
           (long long)s->videos_by_status[ST_VIDEO_PENDING],
           (long long)s->videos_by_status[ST_VIDEO_FAILED],
           (long long)s->videos_by_status[ST_VIDEO_MISSING]);
    printf("segments        %lld (windows %lld, scenes %lld, videos %lld)\n",
           (long long)s->segments, (long long)s->segments_by_level[0],
           (long long)s->segments_by_level[1], (long long)s->segments_by_level[2]);
    printf("texts           %lld\n", (long long)s->texts);
    printf("disk            catalog %s, indexes %s, thumbnails %s\n", cat, idx, th);
    if (s->space_count == 0) {
        printf("vectors         none yet\n");
        return;
    }
    printf("vectors\n");
    printf("  %-34s %-9s %5s %10s %-8s %s\n", "model", "modality", "dim", "vectors", "index",
           "type");
    for (size_t i = 0; i < s->space_count; i++) {
        const st_space_stats *sp = &s->spaces[i];
        printf("  %-34s %-9s %5d %10lld %-8s %s\n", sp->model, sp->modality, sp->dim,
               (long long)sp->vectors, sp->file_state ? sp->file_state : "?",
               sp->index_type && *sp->index_type ? sp->index_type : "-");
    }
}

int cmd_status(const cli_globals *g, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        return cli_usage_error("status", "unexpected argument '%s'", argv[i]);
    vx_err err = {0};
    st_options opts = st_options_default();
    opts.mode = ST_READ;
    st_store *store = NULL;
    vx_status st = st_open(g->data_dir, &opts, &store, &err);
    if (st == VX_ENOTFOUND) {
        /* A fresh machine: nothing is wrong, there is just nothing yet. */
        if (g->json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "data_dir", g->data_dir);
            cJSON_AddBoolToObject(root, "exists", 0);
            print_json(root);
        } else {
            printf("data directory  %s does not exist yet: nothing is indexed.\n", g->data_dir);
        }
        return CLI_EXIT_OK;
    }
    if (st) return cli_fail(&err);
    st_stats stats;
    memset(&stats, 0, sizeof stats);
    st = st_stats_get(store, &stats, &err);
    if (st) {
        st_close(store);
        return cli_fail(&err);
    }
    if (g->json)
        print_json(stats_json(st_data_dir(store), &stats));
    else
        print_text(st_data_dir(store), &stats);
    st_stats_free(&stats);
    st_close(store);
    return CLI_EXIT_OK;
}
