/* indexer/idx_watch.c — watching local library folders with inotify, so `vidx index --watch`
 * re-crawls a library soon after its files change, and only once new files are complete.
 *
 * DESIGN
 *   One inotify descriptor; a watch on every folder under each root (hidden folders and the
 *   ignored folder excepted), added again for folders that appear later (their files, which
 *   may have been written before the watch existed, are taken as new). A file that is
 *   created, written or moved in becomes pending with its size and the time it last changed;
 *   each tick (250 ms) stats the pending files: a size that moved restarts the clock, a size
 *   unchanged for settle_ms settles the file and marks its root dirty. Deletions and moves
 *   (IN_DELETE, IN_MOVED_FROM/TO, folders included) mark the root dirty at once: the crawl
 *   tells moves from deletions. A dirty root with no unsettled file is handed to the
 *   callback, which runs the indexer; events meanwhile wait in the kernel's queue (an
 *   overflow marks every root dirty). Runs in the calling thread; no global state. */
#define _GNU_SOURCE
#include "idx.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_TICK_MS 250
#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM |              \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct watch_dir {
    int wd;
    char *path;
    size_t root;
} watch_dir;

typedef struct pending_file {
    char *path;
    size_t root;
    int64_t size_bytes;
    int64_t changed_ms;
} pending_file;

typedef struct watcher {
    int fd;
    const idx_watch_options *o;
    watch_dir *dirs;
    size_t dir_count, dir_cap;
    pending_file *files;
    size_t file_count, file_cap;
    int *dirty; /* per root */
    size_t root_count;
} watcher;

static int64_t now_ms(void)
{
    return vx_now_ns() / 1000000;
}

static int ignored_path(const watcher *w, const char *path)
{
    const char *ig = w->o->ignore_dir;
    if (!ig || !*ig) return 0;
    size_t n = strlen(ig);
    return !strncmp(path, ig, n) && (path[n] == '/' || !path[n]);
}

static watch_dir *find_dir(watcher *w, int wd)
{
    for (size_t i = 0; i < w->dir_count; i++)
        if (w->dirs[i].wd == wd) return &w->dirs[i];
    return NULL;
}

static void drop_dir_at(watcher *w, size_t i)
{
    free(w->dirs[i].path);
    w->dirs[i] = w->dirs[--w->dir_count];
}

static void drop_file_at(watcher *w, size_t i)
{
    free(w->files[i].path);
    w->files[i] = w->files[--w->file_count];
}

/* A file was created or written: pending, its clock restarted. */
static vx_status touch_file(watcher *w, const char *path, size_t root, vx_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return VX_OK;
    for (size_t i = 0; i < w->file_count; i++)
        if (!strcmp(w->files[i].path, path)) {
            w->files[i].size_bytes = (int64_t)sb.st_size;
            w->files[i].changed_ms = now_ms();
            return VX_OK;
        }
    if (w->file_count == w->file_cap) {
        size_t ncap = w->file_cap ? w->file_cap * 2 : 16;
        pending_file *grown = realloc(w->files, ncap * sizeof *grown);
        if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory watching %s", path);
        w->files = grown;
        w->file_cap = ncap;
    }
    char *copy = vx_strdup(path, err);
    if (!copy) return VX_ENOMEM;
    w->files[w->file_count++] = (pending_file){copy, root, (int64_t)sb.st_size, now_ms()};
    return VX_OK;
}

static void forget_file(watcher *w, const char *path)
{
    for (size_t i = 0; i < w->file_count; i++)
        if (!strcmp(w->files[i].path, path)) {
            drop_file_at(w, i);
            return;
        }
}

/* Watches path and every folder below it. With new_tree (a folder that appeared while
 * watching), its files are taken as pending: they may predate the watch. */
static vx_status add_tree(watcher *w, const char *path, size_t root, int new_tree, vx_err *err)
{
    if (ignored_path(w, path)) return VX_OK;
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return VX_OK; /* gone meanwhile */
        if (errno == ENOSPC)
            return vx_fail(err, VX_ELIMIT,
                           "cannot watch %s: too many folders for inotify (raise "
                           "fs.inotify.max_user_watches)",
                           path);
        vx_log(VX_LOG_WARN, "cannot watch %s: %s", path, strerror(errno));
        return VX_OK;
    }
    if (find_dir(w, wd)) return VX_OK; /* the same folder through a link: read once */
    if (w->dir_count == w->dir_cap) {
        size_t ncap = w->dir_cap ? w->dir_cap * 2 : 16;
        watch_dir *grown = realloc(w->dirs, ncap * sizeof *grown);
        if (!grown) return vx_fail(err, VX_ENOMEM, "out of memory watching %s", path);
        w->dirs = grown;
        w->dir_cap = ncap;
    }
    char *copy = vx_strdup(path, err);
    if (!copy) return VX_ENOMEM;
    w->dirs[w->dir_count++] = (watch_dir){wd, copy, root};
    DIR *d = opendir(path);
    if (!d) return VX_OK;
    vx_status st = VX_OK;
    struct dirent *de;
    while (!st && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* ., .., hidden */
        char *child = vx_asprintf(err, "%s/%s", path, de->d_name);
        if (!child) {
            st = VX_ENOMEM;
            break;
        }
        struct stat sb;
        if (stat(child, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                st = add_tree(w, child, root, new_tree, err);
            else if (new_tree && S_ISREG(sb.st_mode))
                st = touch_file(w, child, root, err);
        }
        free(child);
    }
    closedir(d);
    return st;
}

/* A folder moved away or deleted: its watches (and those below it) go. */
static void drop_tree(watcher *w, const char *path)
{
    size_t n = strlen(path);
    for (size_t i = w->dir_count; i-- > 0;)
        if (!strncmp(w->dirs[i].path, path, n) &&
            (w->dirs[i].path[n] == '/' || !w->dirs[i].path[n])) {
            inotify_rm_watch(w->fd, w->dirs[i].wd);
            drop_dir_at(w, i);
        }
    for (size_t i = w->file_count; i-- > 0;)
        if (!strncmp(w->files[i].path, path, n) && w->files[i].path[n] == '/') drop_file_at(w, i);
}

static vx_status handle_event(watcher *w, const struct inotify_event *ev, vx_err *err)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        vx_log(VX_LOG_WARN, "inotify queue overflowed: re-crawling every library");
        for (size_t r = 0; r < w->root_count; r++)
            w->dirty[r] = 1;
        return VX_OK;
    }
    watch_dir *d = find_dir(w, ev->wd);
    if (!d) return VX_OK;
    if (ev->mask & IN_IGNORED) {
        drop_dir_at(w, (size_t)(d - w->dirs));
        return VX_OK;
    }
    size_t root = d->root;
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        w->dirty[root] = 1;
        return VX_OK;
    }
    if (!ev->len || !ev->name[0]) return VX_OK;
    idx_file_kind kind = idx_classify_name(ev->name);
    if (kind == IDX_FILE_HIDDEN) return VX_OK;
    char *path = vx_asprintf(err, "%s/%s", d->path, ev->name);
    if (!path) return VX_ENOMEM;
    vx_status st = VX_OK;
    if (ignored_path(w, path)) {
        /* the data directory: the indexer's own writes */
    } else if (ev->mask & IN_ISDIR) {
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) st = add_tree(w, path, root, 1, err);
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) drop_tree(w, path);
        if (ev->mask & (IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) w->dirty[root] = 1;
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        forget_file(w, path);
        if (kind != IDX_FILE_TEMPORARY && kind != IDX_FILE_NOT_MEDIA) w->dirty[root] = 1;
    } else if (kind != IDX_FILE_TEMPORARY && kind != IDX_FILE_NOT_MEDIA) {
        /* created, written, closed, moved in: taken once its size settles */
        st = touch_file(w, path, root, err);
    }
    free(path);
    return st;
}

/* Settles pending files whose size stayed put for settle_ms. */
static void settle_files(watcher *w, int64_t settle_ms)
{
    int64_t t = now_ms();
    for (size_t i = w->file_count; i-- > 0;) {
        pending_file *f = &w->files[i];
        struct stat sb;
        if (stat(f->path, &sb) != 0) {
            w->dirty[f->root] = 1;
            drop_file_at(w, i);
            continue;
        }
        if ((int64_t)sb.st_size != f->size_bytes) {
            f->size_bytes = (int64_t)sb.st_size;
            f->changed_ms = t;
        } else if (t - f->changed_ms >= settle_ms) {
            vx_log(VX_LOG_DEBUG, "settled: %s (%lld bytes)", f->path, (long long)f->size_bytes);
            w->dirty[f->root] = 1;
            drop_file_at(w, i);
        }
    }
}

static int root_has_pending(const watcher *w, size_t root)
{
    for (size_t i = 0; i < w->file_count; i++)
        if (w->files[i].root == root) return 1;
    return 0;
}

static int stop_requested(const idx_watch_options *o)
{
    return o->stop && *o->stop;
}

vx_status idx_watch(const char *const *roots, size_t root_count, const idx_watch_options *opts,
                    idx_watch_fn fn, void *ctx, vx_err *err)
{
    idx_watch_options o = {0};
    if (opts) o = *opts;
    if (o.settle_ms <= 0) o.settle_ms = IDX_DEFAULT_SETTLE_MS;
    if (root_count == 0) return vx_fail(err, VX_EINVAL, "nothing to watch");
    for (size_t r = 0; r < root_count; r++) {
        struct stat sb;
        if (!roots[r] || roots[r][0] != '/' || stat(roots[r], &sb) != 0 || !S_ISDIR(sb.st_mode))
            return vx_fail(err, VX_EINVAL, "%s: only local folders can be watched",
                           roots[r] ? roots[r] : "(null)");
    }
    watcher w;
    memset(&w, 0, sizeof w);
    w.o = &o;
    w.root_count = root_count;
    w.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w.fd < 0) return vx_fail(err, VX_EIO, "inotify: %s", strerror(errno));
    vx_status st = VX_OK;
    if (!(w.dirty = vx_calloc_array(root_count, sizeof *w.dirty, err))) st = VX_ENOMEM;
    for (size_t r = 0; r < root_count && !st; r++) {
        st = add_tree(&w, roots[r], r, 0, err);
        w.dirty[r] = o.initial_crawl;
    }
    if (!st)
        vx_log(VX_LOG_INFO, "watching %zu folder%s under %zu librar%s (settle %lld ms)",
               w.dir_count, w.dir_count == 1 ? "" : "s", root_count, root_count == 1 ? "y" : "ies",
               (long long)o.settle_ms);
    /* inotify_event needs this alignment; the buffer holds many events. */
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!st && !stop_requested(&o)) {
        struct pollfd pfd = {.fd = w.fd, .events = POLLIN};
        int ready = poll(&pfd, 1, WATCH_TICK_MS);
        if (ready < 0 && errno != EINTR) {
            st = vx_fail(err, VX_EIO, "waiting for inotify: %s", strerror(errno));
            break;
        }
        if (stop_requested(&o)) break;
        for (;;) {
            ssize_t n = read(w.fd, buf, sizeof buf);
            if (n <= 0) break; /* EAGAIN: drained */
            for (char *p = buf; p < buf + n && !st;) {
                const struct inotify_event *ev = (const struct inotify_event *)p;
                st = handle_event(&w, ev, err);
                p += sizeof *ev + ev->len;
            }
            if (st) break;
        }
        if (st) break;
        settle_files(&w, o.settle_ms);
        for (size_t r = 0; r < root_count && !stop_requested(&o); r++) {
            if (!w.dirty[r] || root_has_pending(&w, r)) continue;
            w.dirty[r] = 0;
            if (fn(ctx, r)) {
                o.stop = NULL; /* the callback asked: leave the loop below */
                goto out;
            }
        }
    }
out:
    for (size_t i = 0; i < w.dir_count; i++)
        free(w.dirs[i].path);
    free(w.dirs);
    for (size_t i = 0; i < w.file_count; i++)
        free(w.files[i].path);
    free(w.files);
    free(w.dirty);
    close(w.fd);
    return st;
}
