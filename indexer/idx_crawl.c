/* indexer/idx_crawl.c — finding a library's files: name classification, and the crawl behind
 * a small table of sources (local folders here; HTTP(S) listings in idx_http.c): a source
 * only has to report idx_entry values, the run does the rest.
 *
 * Local folders: an explicit stack instead of recursion (deep trees cannot overflow the C
 * stack); symbolic links are followed, and every folder read is remembered by (device,
 * inode) in a hash set, so a link back up the tree is read once and counted as a loop. */
#include "idx.h"
#include "idx_http.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- names -------------------------------------------------------------------------------- */

// clang-format off
static const char *const media_exts[] = {
    /* video */
    "3g2", "3gp", "asf", "avi", "divx", "dv", "f4v", "flv", "h264", "hevc", "m1v", "m2t", "m2ts",
    "m2v", "m4v", "mj2", "mjpeg", "mk3d", "mkv", "mod", "mov", "mp4", "mpe", "mpeg", "mpg", "mts",
    "mxf", "nut", "ogm", "ogv", "qt", "rm", "rmvb", "tod", "ts", "vob", "webm", "wmv", "y4m",
    /* audio (recorded; audio-only files fail until the speech modality arrives) */
    "aac", "ac3", "aif", "aiff", "alac", "amr", "ape", "au", "flac", "m4a", "mka", "mp2", "mp3",
    "oga", "ogg", "opus", "ra", "wav", "weba", "wma",
};
// clang-format on

// clang-format off
static const char *const not_media_exts[] = {
    "7z", "ass", "bak", "bmp", "bz2", "c", "cfg", "css", "csv", "db", "doc", "docx", "epub",
    "exe", "gif", "gz", "h", "heic", "htm", "html", "ico", "idx", "ini", "iso", "jpeg", "jpg",
    "js", "json", "log", "lrc", "md", "md5", "nfo", "odt", "pdf", "png", "ppt", "py", "rar",
    "rtf", "sfv", "sh", "sha1", "sha256", "sql", "sqlite", "srt", "ssa", "sub", "svg", "tar",
    "tif", "tiff", "toml", "torrent", "txt", "url", "vtt", "webp", "xls", "xlsx", "xml", "xz",
    "yaml", "yml", "zip", "zst",
};
// clang-format on

/* Suffixes of files still being written by downloaders, editors and copy tools. */
// clang-format off
static const char *const temp_suffixes[] = {
    ".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".opdownload", ".!qb",
    ".!ut", ".swp", ".swx", ".filepart", ".aria2", "~",
};
// clang-format on

static int ends_with_ci(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strcasecmp(s + len - n, suffix) == 0;
}

static int in_list(const char *ext, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(ext, list[i]) == 0) return 1;
    return 0;
}

idx_file_kind idx_classify_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || name[0] == '.') return IDX_FILE_HIDDEN;
    for (size_t i = 0; i < sizeof temp_suffixes / sizeof *temp_suffixes; i++)
        if (ends_with_ci(name, len, temp_suffixes[i])) return IDX_FILE_TEMPORARY;
    /* Emacs autosaves and lock files, Office lock files. */
    if ((name[0] == '#' && name[len - 1] == '#') || !strncmp(name, "~$", 2))
        return IDX_FILE_TEMPORARY;
    const char *dot = strrchr(name, '.');
    if (!dot || !dot[1]) return IDX_FILE_UNKNOWN;
    if (in_list(dot + 1, media_exts, sizeof media_exts / sizeof *media_exts)) return IDX_FILE_MEDIA;
    if (in_list(dot + 1, not_media_exts, sizeof not_media_exts / sizeof *not_media_exts))
        return IDX_FILE_NOT_MEDIA;
    return IDX_FILE_UNKNOWN;
}

void idx_crawl_stats_free(idx_crawl_stats *stats)
{
    if (!stats) return;
    for (size_t i = 0; i < stats->unreadable_count; i++)
        free(stats->unreadable[i]);
    free(stats->unreadable);
    stats->unreadable = NULL;
    stats->unreadable_count = 0;
}

/* ---- the local folder source -------------------------------------------------------------- */

/* Open-addressing set of (device, inode) pairs. */
typedef struct dir_set {
    struct dir_key {
        dev_t dev;
        ino_t ino;
        int used;
    } * slots;
    size_t cap, count;
} dir_set;

static size_t dir_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)dev * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ino;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return (size_t)h;
}

/* Adds (dev, ino); *added is 0 when it was there already. */
static vx_status dir_set_add(dir_set *set, dev_t dev, ino_t ino, int *added, vx_err *err)
{
    if ((set->count + 1) * 2 > set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 64;
        struct dir_key *slots = vx_calloc_array(ncap, sizeof *slots, err);
        if (!slots) return VX_ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i].used) continue;
            size_t j = dir_hash(set->slots[i].dev, set->slots[i].ino) & (ncap - 1);
            while (slots[j].used)
                j = (j + 1) & (ncap - 1);
            slots[j] = set->slots[i];
        }
        free(set->slots);
        set->slots = slots;
        set->cap = ncap;
    }
    size_t j = dir_hash(dev, ino) & (set->cap - 1);
    while (set->slots[j].used) {
        if (set->slots[j].dev == dev && set->slots[j].ino == ino) {
            *added = 0;
            return VX_OK;
        }
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = (struct dir_key){dev, ino, 1};
    set->count++;
    *added = 1;
    return VX_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static vx_status note_unreadable(idx_crawl_stats *stats, const char *path, vx_err *err)
{
    char **grown = realloc(stats->unreadable, (stats->unreadable_count + 1) * sizeof *grown);
    if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory crawling");
    stats->unreadable = grown;
    if (!(grown[stats->unreadable_count] = vx_strdup(path, err))) return VX_ENOMEM;
    stats->unreadable_count++;
    return VX_OK;
}

/* Reads one folder's names (sorted). */
static vx_status read_names(const char *dir, char ***out, size_t *out_count, int *unreadable,
                            vx_err *err)
{
    *out = NULL;
    *out_count = 0;
    *unreadable = 0;
    DIR *d = opendir(dir);
    if (!d) {
        vx_log(VX_LOG_WARN, "cannot read folder %s: %s", dir, strerror(errno));
        *unreadable = 1;
        return VX_OK;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    vx_status st = VX_OK;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **grown = realloc(names, ncap * sizeof *grown);
            if (!grown) {
                st = vx_fail(err, VX_ENOMEM, "out of memory reading %s", dir);
                break;
            }
            names = grown;
            cap = ncap;
        }
        if (!(names[count] = vx_strdup(de->d_name, err))) {
            st = VX_ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (st) {
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
        return st;
    }
    if (count) qsort(names, count, sizeof *names, cmp_names);
    *out = names;
    *out_count = count;
    return VX_OK;
}

static vx_status crawl_local(const char *root, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                             vx_err *err)
{
    struct stat sb;
    if (stat(root, &sb) != 0)
        return vx_fail(err, VX_ENOTFOUND, "library folder %s: %s", root, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return vx_fail(err, VX_ENOTFOUND, "library root %s is not a folder", root);

    dir_set seen = {0};
    char **stack = NULL; /* folders still to read (malloc'd paths) */
    size_t depth = 0, cap = 0;
    vx_status st = VX_OK;
    int added;
    if ((st = dir_set_add(&seen, sb.st_dev, sb.st_ino, &added, err))) goto done;
    if (!(stack = malloc(16 * sizeof *stack))) {
        st = vx_fail(err, VX_ENOMEM, "out of memory crawling %s", root);
        goto done;
    }
    cap = 16;
    if (!(stack[depth] = vx_strdup(root, err))) {
        st = VX_ENOMEM;
        goto done;
    }
    depth++;

    while (depth > 0 && !st) {
        char *dir = stack[--depth];
        char **names;
        size_t count;
        int unreadable;
        st = read_names(dir, &names, &count, &unreadable, err);
        if (!st && unreadable) {
            stats->errors++;
            st = note_unreadable(stats, dir, err);
        }
        if (!st && !unreadable) stats->dirs++;
        /* Subfolders are pushed in reverse so they are read in name order. */
        size_t first_sub = depth;
        for (size_t i = 0; i < count && !st; i++) {
            const char *name = names[i];
            idx_file_kind kind = idx_classify_name(name);
            if (kind == IDX_FILE_HIDDEN) {
                stats->hidden_skipped++;
                continue;
            }
            char *path =
                vx_asprintf(err, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
            if (!path) {
                st = VX_ENOMEM;
                break;
            }
            if (stat(path, &sb) != 0) {
                /* A dangling link or a file removed since readdir. */
                vx_log(VX_LOG_DEBUG, "skipping %s: %s", path, strerror(errno));
                stats->other_skipped++;
                free(path);
                continue;
            }
            if (S_ISDIR(sb.st_mode)) {
                if ((st = dir_set_add(&seen, sb.st_dev, sb.st_ino, &added, err))) {
                    free(path);
                    break;
                }
                if (!added) {
                    vx_log(VX_LOG_DEBUG, "skipping %s: folder already read (symbolic link loop)",
                           path);
                    stats->loops_skipped++;
                    free(path);
                    continue;
                }
                if (depth == cap) {
                    char **grown = realloc(stack, cap * 2 * sizeof *grown);
                    if (!grown) {
                        free(path);
                        st = vx_fail(err, VX_ENOMEM, "out of memory crawling %s", root);
                        break;
                    }
                    stack = grown;
                    cap *= 2;
                }
                stack[depth++] = path;
                continue;
            }
            if (kind == IDX_FILE_TEMPORARY) {
                stats->temp_skipped++;
            } else if (kind == IDX_FILE_NOT_MEDIA || !S_ISREG(sb.st_mode) ||
                       (kind == IDX_FILE_UNKNOWN && sb.st_size == 0)) {
                stats->other_skipped++;
            } else {
                idx_entry e = {
                    .location = path,
                    .local_path = path,
                    .size_bytes = (int64_t)sb.st_size,
                    .mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000,
                    .kind = kind,
                };
                stats->files++;
                if (fn && fn(ctx, &e)) st = vx_fail(err, VX_EINTERRUPTED, "crawl stopped");
            }
            free(path);
        }
        /* Reverse the subfolders pushed from this folder (LIFO pops them in name order). */
        for (size_t a = first_sub, b = depth; a + 1 < b; a++, b--) {
            char *t = stack[a];
            stack[a] = stack[b - 1];
            stack[b - 1] = t;
        }
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
        free(dir);
    }
done:
    while (depth > 0)
        free(stack[--depth]);
    free(stack);
    free(seen.slots);
    return st;
}

static vx_status crawl_local_with(const char *root, const idx_crawl_options *co, idx_entry_fn fn,
                                  void *ctx, idx_crawl_stats *stats, vx_err *err)
{
    (void)co;
    return crawl_local(root, fn, ctx, stats, err);
}

/* The crawl sources, chosen by the root's prefix; a new one only fills idx_entry values. */
static const struct crawl_source {
    const char *prefix; /* matched case-insensitively at the start of root; "" = anything */
    vx_status (*crawl)(const char *root, const idx_crawl_options *co, idx_entry_fn fn, void *ctx,
                       idx_crawl_stats *stats, vx_err *err);
} crawl_sources[] = {
    {"http://", idx__http_crawl},
    {"https://", idx__http_crawl},
    {"", crawl_local_with},
};

vx_status idx_crawl_with(const char *root, const idx_crawl_options *co, idx_entry_fn fn, void *ctx,
                         idx_crawl_stats *stats, vx_err *err)
{
    memset(stats, 0, sizeof *stats);
    for (size_t i = 0; i < sizeof crawl_sources / sizeof *crawl_sources; i++) {
        size_t n = strlen(crawl_sources[i].prefix);
        if (strncasecmp(root, crawl_sources[i].prefix, n) == 0)
            return crawl_sources[i].crawl(root, co, fn, ctx, stats, err);
    }
    return vx_fail(err, VX_EUNSUPPORTED, "%s: no crawler for this kind of location", root);
}

vx_status idx_crawl(const char *root, idx_entry_fn fn, void *ctx, idx_crawl_stats *stats,
                    vx_err *err)
{
    return idx_crawl_with(root, NULL, fn, ctx, stats, err);
}

/* ---- identity and windows (pure) ---------------------------------------------------------- */

idx_match idx_identity_match(const idx_identity *stored, const idx_identity *seen)
{
    if (stored->size_bytes == seen->size_bytes && stored->mtime_ms == seen->mtime_ms)
        return IDX_MATCH_SAME;
    if (!seen->content_hash) return IDX_MATCH_NEEDS_HASH;
    if (stored->size_bytes == seen->size_bytes && stored->content_hash &&
        strcmp(stored->content_hash, seen->content_hash) == 0)
        return IDX_MATCH_SAME;
    return IDX_MATCH_CHANGED;
}

size_t idx_windows(int64_t duration_ms, int64_t window_ms, int64_t overlap_ms, idx_window *out,
                   size_t cap)
{
    if (duration_ms <= 0 || window_ms <= 0 || overlap_ms < 0 || overlap_ms >= window_ms) return 0;
    int64_t step = window_ms - overlap_ms;
    size_t n = 0;
    for (int64_t start = 0; start < duration_ms; start += step) {
        int64_t end = start + window_ms < duration_ms ? start + window_ms : duration_ms;
        int keep = end - start == window_ms || end - start >= IDX_MIN_LAST_WINDOW_MS || n == 0;
        if (keep) {
            if (n < cap) out[n] = (idx_window){start, end};
            n++;
        }
        if (end >= duration_ms) break;
    }
    return n;
}
