/* indexer/idx_library.h — private to indexer/: a root's canonical form (shared by idx_run and
 * the stored-options look-ups) and saving a run's options with its library. */
#ifndef IDX_LIBRARY_H
#define IDX_LIBRARY_H

#include "idx.h"

/* 1 when url (http(s)) names a manifest, a text file of URLs, by its name: the path (before
 * any '?' or '#') ends in ".txt", ".m3u" or ".m3u8" (any case). Pure. */
int idx__is_manifest_url(const char *url);

/* root as the catalog stores it: a local folder through realpath (VX_ENOTFOUND when it does
 * not resolve), a URL with a '/' added unless it has one or names a manifest. abs: cap bytes. */
vx_status idx__root_absolute(const char *root, char *abs, size_t cap, vx_err *err);

/* Stores o's library options (idx.h, "stored library options") for library_id, in one
 * transaction (none may be open). */
vx_status idx__library_options_save(st_store *s, int64_t library_id, const idx_options *o,
                                    vx_err *err);

#endif
