/* Unit tests for common/: errors, parsing, buffers, atomic files, the thread pool. */
#include "testlib.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_strerror_covers_every_status(void)
{
    for (int s = 0; s < VX_STATUS_COUNT; s++) {
        const char *text = vx_strerror((vx_status)s);
        T_ASSERT(text && *text);
        T_ASSERT(strcmp(text, "unknown status") != 0);
    }
}

static void test_fail_and_prefix(void)
{
    vx_err err = {0};
    T_EQ_INT(vx_fail(&err, VX_EIO, "cannot read %s\nsecond line", "a.mp4"), VX_EIO);
    T_EQ_INT(err.status, VX_EIO);
    T_EQ_STR(err.msg, "cannot read a.mp4 second line");
    vx_err_prefix(&err, "video %d", 7);
    T_EQ_STR(err.msg, "video 7: cannot read a.mp4 second line");
    vx_err_clear(&err);
    T_EQ_INT(err.status, VX_OK);
    T_EQ_STR(err.msg, "");
    /* A NULL err is allowed everywhere. */
    T_EQ_INT(vx_fail(NULL, VX_EINVAL, "x"), VX_EINVAL);
}

static void test_durations(void)
{
    vx_err err = {0};
    int64_t ms = 0;
    struct { const char *text; int64_t ms; } good[] = {
        {"90", 90000}, {"90s", 90000}, {"1500ms", 1500}, {"4m", 240000}, {"6h", 21600000},
        {"1h30m", 5400000}, {"2d", 172800000}, {"0.5s", 500}, {"4.5s", 4500},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        T_OK(vx_parse_duration_ms(good[i].text, &ms, &err), &err);
        T_EQ_INT(ms, good[i].ms);
    }
    const char *bad[] = {"", "-4s", "4x", "h", "1h30", "abc", "1e400s", "4 s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(vx_parse_duration_ms(bad[i], &ms, &err), VX_EINVAL);
        T_ASSERT(strlen(err.msg) > 0);
    }
    char text[32];
    vx_format_duration(3723000, text, sizeof text);
    T_EQ_STR(text, "1h02m03s");
    vx_format_duration(4500, text, sizeof text);
    T_EQ_STR(text, "4.5s");
}

static void test_sizes_and_ints(void)
{
    vx_err err = {0};
    int64_t v = 0;
    T_OK(vx_parse_size_bytes("512", &v, &err), &err);
    T_EQ_INT(v, 512);
    T_OK(vx_parse_size_bytes("64k", &v, &err), &err);
    T_EQ_INT(v, 65536);
    T_OK(vx_parse_size_bytes("10MB", &v, &err), &err);
    T_EQ_INT(v, 10485760);
    T_OK(vx_parse_size_bytes("2GiB", &v, &err), &err);
    T_EQ_INT(v, 2147483648LL);
    T_EQ_INT(vx_parse_size_bytes("12Q", &v, &err), VX_EINVAL);
    T_EQ_INT(vx_parse_size_bytes("-1", &v, &err), VX_EINVAL);
    T_OK(vx_parse_int("8", 1, 64, "--jobs", &v, &err), &err);
    T_EQ_INT(v, 8);
    T_EQ_INT(vx_parse_int("65", 1, 64, "--jobs", &v, &err), VX_EINVAL);
    T_EQ_STR(err.msg, "--jobs: 65 is outside 1..64");
    T_EQ_INT(vx_parse_int("8x", 1, 64, "--jobs", &v, &err), VX_EINVAL);
    char text[32];
    vx_format_size(1536 * 1024, text, sizeof text);
    T_EQ_STR(text, "1.5 MiB");
}

static void test_buf(void)
{
    vx_err err = {0};
    vx_buf buf = {0};
    for (int i = 0; i < 1000; i++) T_OK(vx_buf_printf(&buf, &err, "%d,", i), &err);
    T_ASSERT(buf.len > 2000);
    T_ASSERT(!strncmp(buf.data, "0,1,2,", 6));
    T_EQ_INT(buf.data[buf.len], '\0');
    vx_buf_free(&buf);
    vx_buf_free(&buf);
    T_ASSERT(vx_calloc_array(SIZE_MAX / 2, 4, &err) == NULL);
    T_EQ_INT(err.status, VX_ENOMEM);
}

static void test_files(void)
{
    vx_err err = {0};
    char *dir = t_tempdir("common");
    char path[4096];
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    T_OK(vx_mkdirs(path, &err), &err);
    T_OK(vx_mkdirs(path, &err), &err);
    snprintf(path, sizeof path, "%s/a/b/c/file.txt", dir);
    T_OK(vx_write_file_atomic(path, "hello", 5, &err), &err);
    T_OK(vx_write_file_atomic(path, "world!", 6, &err), &err);
    char *data;
    size_t len;
    T_OK(vx_read_file(path, 1 << 20, &data, &len, &err), &err);
    T_EQ_INT(len, 6);
    T_EQ_STR(data, "world!");
    free(data);
    T_EQ_INT(vx_read_file(path, 3, &data, &len, &err), VX_ELIMIT);
    snprintf(path, sizeof path, "%s/missing", dir);
    T_EQ_INT(vx_read_file(path, 10, &data, &len, &err), VX_ENOTFOUND);
    t_rmtree(dir);
    free(dir);
}

typedef struct counter {
    pthread_mutex_t lock;
    long sum;
} counter;

static void add_job(void *arg)
{
    counter *c = arg;
    pthread_mutex_lock(&c->lock);
    c->sum += 1;
    pthread_mutex_unlock(&c->lock);
}

static void test_pool(void)
{
    vx_err err = {0};
    counter c = {PTHREAD_MUTEX_INITIALIZER, 0};
    vx_pool *pool = vx_pool_create(3, 4, &err);
    T_ASSERT(pool);
    for (int i = 0; i < 1000; i++) T_OK(vx_pool_submit(pool, add_job, &c, &err), &err);
    vx_pool_wait(pool);
    T_EQ_INT(c.sum, 1000);
    for (int i = 0; i < 10; i++) T_OK(vx_pool_submit(pool, add_job, &c, &err), &err);
    vx_pool_destroy(pool);
    T_EQ_INT(c.sum, 1010);
    vx_pool_destroy(NULL);
    T_ASSERT(vx_pool_create(0, 1, &err) == NULL);
    T_ASSERT(vx_cpu_count() >= 1);
}

static void test_utf8(void)
{
    const unsigned char ok[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    T_EQ_INT(vx_utf8_len(ok, 1), 1);
    T_EQ_INT(vx_utf8_len(ok + 1, 2), 2);
    T_EQ_INT(vx_utf8_len(ok + 3, 3), 3);
    T_EQ_INT(vx_utf8_len(ok + 6, 4), 4);
    T_EQ_INT(vx_utf8_len(ok + 6, 3), 0); /* truncated */
    T_ASSERT(vx_utf8_valid((const char *)ok, sizeof ok - 1));
    const char *bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\x80", "\xff", "ab\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_ASSERT(!vx_utf8_valid(bad[i], strlen(bad[i])));
    T_ASSERT(!vx_utf8_valid("a\0b", 3));
    T_ASSERT(vx_utf8_valid("", 0));
}

static void test_progress_without_terminal(void)
{
    vx_err err = {0};
    vx_progress *p = vx_progress_create("files", 10, &err);
    T_ASSERT(p);
    for (int i = 0; i <= 10; i++) vx_progress_update(p, i, "1.0 files/s");
    vx_progress_finish(p);
    vx_progress_finish(NULL);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"strerror_covers_every_status", test_strerror_covers_every_status},
        {"fail_and_prefix", test_fail_and_prefix},
        {"durations", test_durations},
        {"sizes_and_ints", test_sizes_and_ints},
        {"buf", test_buf},
        {"files", test_files},
        {"pool", test_pool},
        {"utf8", test_utf8},
        {"progress_without_terminal", test_progress_without_terminal},
    };
    return T_RUN(argc, argv, cases);
}
