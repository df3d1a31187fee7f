/* web/ private: the static web UI (web/ui/: index.html, app.js, app.css) compiled into the binary
 * by web/ui/embed.cmake, and the answer to GET/HEAD of "/" and "/ui/<file>". The UI is served
 * without the access token (it holds no data; it reads ?token= from its own URL and sends it on
 * every API call). */
#ifndef WEB_UI_H
#define WEB_UI_H

#include <microhttpd.h>
#include <stddef.h>

/* One embedded file; data lives for the whole program (static storage) and ends with a NUL
 * byte not counted in len. */
typedef struct web_ui_file {
    const char *name; /* "index.html", "app.js", ... (no folder) */
    const unsigned char *data;
    size_t len;
} web_ui_file;

/* Written by the generated web_ui_data.c. */
extern const web_ui_file web_ui_files[];
extern const size_t web_ui_file_count;
extern const char web_ui_version[]; /* a hash of every file: the ?v= the UI's links carry */

/* "/" is index.html, "/ui/<name>" an embedded file (exact name, no further '/'). Returns 1 and
 * fills *data, *len (static storage) and *mime_type (a static string), or 0 for any other path.
 * Pure. */
int web_ui_find(const char *url_path, const unsigned char **data, size_t *len,
                const char **mime_type);

/* Answers a GET or HEAD of a UI path on conn: Content-Type, Cache-Control (no-cache for
 * index.html and for assets asked without the current ?v=, a year otherwise),
 * Content-Security-Policy and X-Content-Type-Options. Returns the HTTP status queued (200) and
 * sets *ret, or 0 when url_path is not a UI path (nothing queued). */
int web_ui_serve(struct MHD_Connection *conn, const char *url_path, enum MHD_Result *ret);

#endif
