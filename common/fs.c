/* Clocks and file helpers: atomic writes (temp, fsync, rename, fsync dir), mkdir -p. */
#include "vx.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t vx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t vx_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

vx_status vx_fsync_dir(const char *dir, vx_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return vx_fail(err, VX_EIO, "cannot open folder %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL)
        return vx_fail(err, VX_EIO, "cannot sync folder %s: %s", dir, strerror(e));
    return VX_OK;
}

vx_status vx_write_file_atomic(const char *path, const void *bytes, size_t len, vx_err *err)
{
    char *tmp = vx_asprintf(err, "%s.tmp.%ld", path, (long)getpid());
    if (!tmp) return VX_ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        vx_fail(err, VX_EIO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return VX_EIO;
    }
    const char *p = bytes;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            vx_fail(err, VX_EIO, "cannot write %s: %s", tmp, strerror(errno));
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        vx_fail(err, VX_EIO, "cannot sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        vx_fail(err, VX_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(tmp);
    char *copy = vx_strdup(path, err);
    if (!copy) return VX_ENOMEM;
    vx_status st = vx_fsync_dir(dirname(copy), err);
    free(copy);
    return st;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return VX_EIO;
}

vx_status vx_mkdirs(const char *path, vx_err *err)
{
    char *copy = vx_strdup(path, err);
    if (!copy) return VX_ENOMEM;
    for (char *p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
                vx_fail(err, VX_EIO, "cannot create folder %s: %s", copy, strerror(errno));
                free(copy);
                return VX_EIO;
            }
            *p = saved;
            if (!saved) break;
        }
    }
    free(copy);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return vx_fail(err, VX_EIO, "%s exists and is not a folder", path);
    return VX_OK;
}

vx_status vx_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, vx_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vx_fail(err, errno == ENOENT ? VX_ENOTFOUND : VX_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    vx_buf buf = {0};
    char chunk[65536];
    size_t n;
    vx_status st = VX_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf.len + n > max_bytes) {
            st = vx_fail(err, VX_ELIMIT, "%s is larger than %zu bytes", path, max_bytes);
            break;
        }
        if ((st = vx_buf_append(&buf, chunk, n, err))) break;
    }
    if (!st && ferror(f)) st = vx_fail(err, VX_EIO, "cannot read %s", path);
    fclose(f);
    if (st) {
        vx_buf_free(&buf);
        return st;
    }
    if (!buf.data && (st = vx_buf_append(&buf, "", 0, err))) return st;
    *out = buf.data;
    if (out_len) *out_len = buf.len;
    return VX_OK;
}
