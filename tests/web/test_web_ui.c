/* The web UI compiled into the binary (web/web_ui.h): "/" and "/ui/<file>" find the files of
 * web/ui/ byte for byte (index.html with its version placeholder filled in), with their MIME
 * types; any other path finds nothing. Reads the sources from VIDX_UI_DIR, so a stale or broken
 * embedding step fails here even where no browser is installed. */
#include "testlib.h"
#include "web_ui.h"

static unsigned char *read_source(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", VIDX_UI_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) T_FAIL("cannot open %s", path);
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            T_ASSERT(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (!got) break;
        n += got;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* index.html as served: every "__VX_UI_VERSION__" replaced by web_ui_version. */
static char *expected_index(size_t *len)
{
    size_t n;
    char *src = (char *)read_source("index.html", &n);
    static const char ph[] = "__VX_UI_VERSION__";
    size_t vlen = strlen(web_ui_version), plen = sizeof ph - 1;
    char *out = malloc(n * 2 + 1);
    T_ASSERT(out);
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (r + plen <= n && !memcmp(src + r, ph, plen)) {
            memcpy(out + w, web_ui_version, vlen);
            w += vlen;
            r += plen;
        } else {
            out[w++] = src[r++];
        }
    }
    out[w] = 0;
    free(src);
    *len = w;
    return out;
}

static void test_root_is_index(void)
{
    const unsigned char *data;
    size_t len;
    const char *mime;
    T_EQ_INT(web_ui_find("/", &data, &len, &mime), 1);
    T_EQ_STR(mime, "text/html; charset=utf-8");
    size_t want_len;
    char *want = expected_index(&want_len);
    T_EQ_INT(len, want_len);
    T_ASSERT(!memcmp(data, want, len));
    T_EQ_INT(data[len], 0); /* the header promises a NUL after the data */
    T_ASSERT(!strstr((const char *)data, "__VX_UI_VERSION__"));
    char link[64];
    snprintf(link, sizeof link, "/ui/app.js?v=%s", web_ui_version);
    T_ASSERT(strstr((const char *)data, link));
    free(want);
}

static void test_version(void)
{
    T_EQ_INT(strlen(web_ui_version), 12);
    for (const char *p = web_ui_version; *p; p++)
        T_ASSERT((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
}

static void test_every_file_byte_for_byte(void)
{
    static const struct {
        const char *name, *mime;
    } want[] = {
        {"app.js", "text/javascript; charset=utf-8"},
        {"app.css", "text/css; charset=utf-8"},
        {"icon.svg", "image/svg+xml"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "/ui/%s", want[i].name);
        const unsigned char *data;
        size_t len;
        const char *mime;
        T_EQ_INT(web_ui_find(url, &data, &len, &mime), 1);
        T_EQ_STR(mime, want[i].mime);
        size_t src_len;
        unsigned char *src = read_source(want[i].name, &src_len);
        T_EQ_INT(len, src_len);
        T_ASSERT(!memcmp(data, src, len));
        free(src);
    }
    /* the table holds each file once, index.html included */
    int index_seen = 0;
    for (size_t i = 0; i < web_ui_file_count; i++) {
        index_seen += !strcmp(web_ui_files[i].name, "index.html");
        for (size_t k = i + 1; k < web_ui_file_count; k++)
            T_ASSERT(strcmp(web_ui_files[i].name, web_ui_files[k].name));
    }
    T_EQ_INT(index_seen, 1);
}

static void test_other_paths_find_nothing(void)
{
    static const char *const paths[] = {
        "",
        "/ui",
        "/ui/",
        "/ui/app.js/",
        "/ui//app.js",
        "/ui/../web.c",
        "/ui/x/app.js",
        "/index.html",
        "/ui/APP.JS",
        "/ui/app.j",
        "/ui/app.jsx",
        "//",
        "/api/search",
        "/ui/.",
        "/ui/..",
        "/ui/app.js\xff",
        "/UI/app.js",
    };
    const unsigned char *data = NULL;
    size_t len = 0;
    const char *mime = NULL;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (web_ui_find(paths[i], &data, &len, &mime)) T_FAIL("'%s' found a file", paths[i]);
    T_EQ_INT(web_ui_find(NULL, &data, &len, &mime), 0);
    T_ASSERT(data == NULL && len == 0 && mime == NULL); /* untouched on a miss */
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"root_is_index", test_root_is_index},
        {"version", test_version},
        {"every_file_byte_for_byte", test_every_file_byte_for_byte},
        {"other_paths_find_nothing", test_other_paths_find_nothing},
    };
    return T_RUN(argc, argv, cases);
}
