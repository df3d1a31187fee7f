/* indexer/idx_library.c — a library's options kept in the catalog (storage's key/value
 * library_options), so a library is re-crawled by name as it was first indexed, and the
 * canonical form of a root. The names and value formats of the keys live here only. */
#include "idx_http.h"
#include "idx_library.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int idx__is_manifest_url(const char *url)
{
    if (!idx__is_url(url)) return 0;
    size_t n = strcspn(url, "?#");
    static const char *const exts[] = {".txt", ".m3u", ".m3u8"};
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strncasecmp(url + n - e, exts[i], e)) return 1;
    }
    return 0;
}

vx_status idx__root_absolute(const char *root, char *abs, size_t cap, vx_err *err)
{
    if (idx__is_url(root)) {
        size_t n = strlen(root);
        int slash = n > 0 && root[n - 1] != '/' && !idx__is_manifest_url(root);
        if (n + 2 > cap) return vx_fail(err, VX_EINVAL, "URL too long: %.64s…", root);
        snprintf(abs, cap, "%s%s", root, slash ? "/" : "");
        return VX_OK;
    }
    char buf[PATH_MAX];
    if (!realpath(root, buf))
        return vx_fail(err, VX_ENOTFOUND, "library folder %s: %s", root, strerror(errno));
    if (strlen(buf) + 1 > cap) return vx_fail(err, VX_EINVAL, "path too long: %.64s…", buf);
    snprintf(abs, cap, "%s", buf);
    return VX_OK;
}

vx_status idx__library_options_save(st_store *s, int64_t library_id, const idx_options *o,
                                    vx_err *err)
{
    struct {
        const char *key;
        int64_t value;
    } ints[] = {{"window_ms", o->window_ms},
                {"overlap_ms", o->overlap_ms},
                {"asr", o->asr != 0},
                {"ocr", o->ocr != 0},
                {"subtitles", o->subtitles != 0},
                {"thumbnails", o->thumbnails != 0},
                {"snap_to_shots", o->snap_to_shots != 0},
                {"every_ms", o->every_ms > 0 ? o->every_ms : 0}};
    vx_status st = st_begin(s, err);
    if (st) return st;
    for (size_t i = 0; i < sizeof ints / sizeof *ints && !st; i++) {
        char text[32];
        snprintf(text, sizeof text, "%" PRId64, ints[i].value);
        st = st_library_option_set(s, library_id, ints[i].key, text, err);
    }
    /* Absolute, so a run from another folder finds the same model. */
    char model_abs[PATH_MAX];
    const char *model = o->model_dir;
    if (model && realpath(model, model_abs)) model = model_abs;
    if (!st) st = st_library_option_set(s, library_id, "model_dir", model, err);
    if (!st) st = st_library_option_set(s, library_id, "precision", o->precision, err);
    if (!st) return st_commit(s, err);
    st_rollback(s);
    return st;
}

void idx_library_config_free(idx_library_config *cfg)
{
    if (!cfg) return;
    free(cfg->name);
    free(cfg->root);
    free(cfg->model_dir);
    free(cfg->precision);
    memset(cfg, 0, sizeof *cfg);
}

/* Parses a stored integer value in [min, max]. */
static vx_status stored_int(const st_library_option *opt, const char *library, int64_t min,
                            int64_t max, int64_t *out, vx_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(opt->value, &end, 10);
    if (errno || end == opt->value || *end || v < min || v > max)
        return vx_fail(err, VX_ECORRUPT,
                       "library '%s': stored option %s = \"%.64s\" is not a number in %" PRId64
                       "..%" PRId64,
                       library, opt->key, opt->value, min, max);
    *out = v;
    return VX_OK;
}

vx_status idx_library_options(st_store *s, const char *name, idx_library_config *out, vx_err *err)
{
    memset(out, 0, sizeof *out);
    out->options = idx_options_default();
    if (!name) return vx_fail(err, VX_EINVAL, "a library name is needed");
    st_library lib;
    vx_status st = st_library_find(s, name, &lib, err);
    if (st) return st;
    out->name = lib.name;
    out->root = lib.root;
    int64_t id = lib.id;
    st_library_option *opts = NULL;
    size_t n = 0;
    if ((st = st_library_options_get(s, id, &opts, &n, err))) return st;
    idx_options *o = &out->options;
    for (size_t i = 0; i < n && !st; i++) {
        const st_library_option *opt = &opts[i];
        int64_t v = 0;
        if (!strcmp(opt->key, "model_dir")) {
            if (!(out->model_dir = vx_strdup(opt->value, err))) st = VX_ENOMEM;
        } else if (!strcmp(opt->key, "precision")) {
            if (strcmp(opt->value, "fp32") && strcmp(opt->value, "bf16"))
                st = vx_fail(err, VX_ECORRUPT,
                             "library '%s': stored option precision = \"%.64s\" is not fp32 or "
                             "bf16",
                             name, opt->value);
            else if (!(out->precision = vx_strdup(opt->value, err)))
                st = VX_ENOMEM;
        } else if (!strcmp(opt->key, "window_ms")) {
            if (!(st = stored_int(opt, name, 1, INT64_C(86400000), &v, err))) o->window_ms = v;
        } else if (!strcmp(opt->key, "overlap_ms")) {
            if (!(st = stored_int(opt, name, 0, INT64_C(86400000), &v, err))) o->overlap_ms = v;
        } else if (!strcmp(opt->key, "every_ms")) {
            if (!(st = stored_int(opt, name, 0, INT64_MAX, &v, err))) o->every_ms = v;
        } else {
            int *flag = !strcmp(opt->key, "asr")             ? &o->asr
                        : !strcmp(opt->key, "ocr")           ? &o->ocr
                        : !strcmp(opt->key, "subtitles")     ? &o->subtitles
                        : !strcmp(opt->key, "thumbnails")    ? &o->thumbnails
                        : !strcmp(opt->key, "snap_to_shots") ? &o->snap_to_shots
                                                             : NULL;
            /* Unknown keys come from a newer vidx: kept, not understood. */
            if (flag && !(st = stored_int(opt, name, 0, 1, &v, err))) *flag = (int)v;
        }
    }
    st_library_options_free(opts, n);
    if (!st && o->overlap_ms >= o->window_ms)
        st = vx_fail(err, VX_ECORRUPT,
                     "library '%s': stored overlap %" PRId64 " ms is not shorter than its window "
                     "%" PRId64 " ms",
                     name, o->overlap_ms, o->window_ms);
    o->library = out->name;
    o->root = out->root;
    o->model_dir = out->model_dir;
    o->precision = out->precision;
    return st;
}

vx_status idx_library_for_root(st_store *s, const char *root, char **out_name, vx_err *err)
{
    *out_name = NULL;
    char abs[PATH_MAX];
    vx_status st = idx__root_absolute(root, abs, sizeof abs, err);
    if (st == VX_ENOTFOUND) { /* a folder that does not exist belongs to no library */
        vx_err_clear(err);
        return VX_OK;
    }
    if (st) return st;
    st_library *libs = NULL;
    size_t n = 0;
    if ((st = st_library_list(s, &libs, &n, err))) return st;
    for (size_t i = 0; i < n && !st; i++)
        if (!strcmp(libs[i].root, abs)) {
            if (!(*out_name = vx_strdup(libs[i].name, err))) st = VX_ENOMEM;
            break;
        }
    st_libraries_free(libs, n);
    return st;
}
