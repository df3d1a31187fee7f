/* vidx serve: the HTTP JSON API (web/) over the data directory, read-only for searches, with
 * reindex jobs on one background thread (POST /api/reindex, --reindex-every), until SIGTERM or
 * SIGINT; then it stops accepting, lets requests in flight finish, stops a running job after
 * the video in flight and exits 0. The global --model (or VIDX_MODEL) is the query model. */
#include "cli.h"

#ifdef VIDX_HAVE_WEB
#include "web.h"
#include <errno.h>
#include <unistd.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The self-pipe of the stop signals: the one piece of global state, written only by the handler
 * and read only by cmd_serve's thread. */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(stop_pipe[1], &b, 1);
    (void)n;
    errno = saved;
}

int cmd_serve(const cli_globals *g, int argc, char **argv)
{
    web_options o = web_options_default();
    vx_err err = {0};
    o.data_dir = g->data_dir;
    o.token = getenv("VIDX_TOKEN");
    o.model_dir = g->model_dir;
#ifdef VIDX_VERSION
    o.version = VIDX_VERSION;
#endif
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name = a;
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        char opt[32];
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof opt) {
            memcpy(opt, a, (size_t)(eq - a));
            opt[eq - a] = 0;
            name = opt;
            val = eq + 1;
        }
        int takes = !strcmp(name, "--listen") || !strcmp(name, "--threads") ||
                    !strcmp(name, "--token") || !strcmp(name, "--timeout") ||
                    !strcmp(name, "--max-body") || !strcmp(name, "--max-connections") ||
                    !strcmp(name, "--max-upload") || !strcmp(name, "--reindex-every") ||
                    !strcmp(name, "--play-cache") || !strcmp(name, "--play-cache-size");
        if (!takes) return cli_usage_error("serve", "unknown option '%s'", a);
        if (!val) {
            if (i + 1 >= argc) return cli_usage_error("serve", "%s needs a value", name);
            val = argv[++i];
        }
        int64_t n;
        if (!strcmp(name, "--listen")) {
            o.listen = val;
        } else if (!strcmp(name, "--token")) {
            o.token = val;
        } else if (!strcmp(name, "--threads")) {
            if (vx_parse_int(val, 1, 64, "--threads", &n, &err))
                return cli_usage_error("serve", "%s", err.msg);
            o.threads = (int)n;
        } else if (!strcmp(name, "--max-connections")) {
            if (vx_parse_int(val, 1, 10000, "--max-connections", &n, &err))
                return cli_usage_error("serve", "%s", err.msg);
            o.connection_limit = (int)n;
        } else if (!strcmp(name, "--timeout")) {
            if (vx_parse_duration_ms(val, &n, &err) || n < 1000 || n > 3600 * 1000)
                return cli_usage_error("serve", "--timeout must be 1s..1h (got '%s')", val);
            o.timeout_s = (int)(n / 1000);
        } else if (!strcmp(name, "--reindex-every")) {
            if (vx_parse_duration_ms(val, &n, &err) || n < 1000)
                return cli_usage_error("serve",
                                       "--reindex-every must be 1s or more, e.g. 6h "
                                       "(got '%s')",
                                       val);
            o.reindex_every_ms = n;
        } else if (!strcmp(name, "--play-cache")) {
            o.play_cache_dir = val;
        } else if (!strcmp(name, "--play-cache-size")) {
            if (vx_parse_size_bytes(val, &n, &err) || n < 1024 * 1024)
                return cli_usage_error("serve", "--play-cache-size must be 1M or more (got '%s')",
                                       val);
            o.play_cache_bytes = n;
        } else if (!strcmp(name, "--max-upload")) {
            if (vx_parse_size_bytes(val, &n, &err) || n < 1024 || n > (int64_t)16 << 30)
                return cli_usage_error("serve", "--max-upload must be 1k..16G (got '%s')", val);
            o.max_upload_bytes = (size_t)n;
        } else {
            if (vx_parse_size_bytes(val, &n, &err) || n < 1024 || n > 64 * 1024 * 1024)
                return cli_usage_error("serve", "--max-body must be 1k..64M (got '%s')", val);
            o.max_body_bytes = (size_t)n;
        }
    }
    /* A stop signal may land on any thread (libraries start some before us), so a handler
     * writes its number to a pipe that this thread waits on. */
    if (pipe(stop_pipe)) {
        vx_fail(&err, VX_EIO, "pipe: %s", strerror(errno));
        return cli_fail(&err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    web_server *srv;
    if (web_server_start(&o, &srv, &err)) return cli_fail(&err);
    const char *listen_at = o.listen;
    char shown[300];
    const char *colon = strrchr(listen_at, ':');
    snprintf(shown, sizeof shown, "%.*s:%d", (int)(colon ? colon - listen_at : 0), listen_at,
             web_server_port(srv));
    printf("vidx: serving %s on http://%s/ (%d threads%s%s%s)\n", g->data_dir, shown,
           o.threads ? o.threads : 4, o.token && *o.token ? ", token required" : "",
           o.model_dir ? ", model " : ", lexical search only", o.model_dir ? o.model_dir : "");
    fflush(stdout);
    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    vx_log(VX_LOG_INFO, "%s: stopping (requests in flight finish)",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
    web_server_stop(srv);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return CLI_EXIT_OK;
}
#else
int cmd_serve(const cli_globals *g, int argc, char **argv)
{
    vx_err err = {0};
    vx_fail(&err, VX_EUNSUPPORTED, "this vidx was built without libmicrohttpd: no serve");
    return cli_fail(&err);
}
#endif
