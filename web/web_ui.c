/* web/ private: finds and serves the embedded web UI files (web_ui.h); the files themselves are
 * in the generated web_ui_data.c. */
#include "web_ui.h"

#include <string.h>

static const char *mime_of_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    return "application/octet-stream";
}

int web_ui_find(const char *url_path, const unsigned char **data, size_t *len,
                const char **mime_type)
{
    if (!url_path) return 0;
    const char *name;
    if (!strcmp(url_path, "/"))
        name = "index.html";
    else if (!strncmp(url_path, "/ui/", 4) && url_path[4] && !strchr(url_path + 4, '/'))
        name = url_path + 4;
    else
        return 0;
    for (size_t i = 0; i < web_ui_file_count; i++) {
        if (strcmp(web_ui_files[i].name, name)) continue;
        *data = web_ui_files[i].data;
        *len = web_ui_files[i].len;
        *mime_type = mime_of_name(name);
        return 1;
    }
    return 0;
}

int web_ui_serve(struct MHD_Connection *conn, const char *url_path, enum MHD_Result *ret)
{
    const unsigned char *data;
    size_t len;
    const char *mime;
    if (!web_ui_find(url_path, &data, &len, &mime)) return 0;
    /* the data is static: MHD sends it without a copy */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        *ret = MHD_NO;
        return 500;
    }
    /* index.html names its assets with ?v=VERSION, so an asset asked with the current version
     * never changes and may be cached for long; anything else is revalidated */
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "v");
    int versioned = strcmp(url_path, "/") && v && !strcmp(v, web_ui_version);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, mime);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            versioned ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    *ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return MHD_HTTP_OK;
}
