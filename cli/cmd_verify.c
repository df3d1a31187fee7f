/* vidx verify [--repair]: checks the catalog and every vector index, optionally fixes them. */
#include "cli.h"
#include "st.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cmd_verify(const cli_globals *g, int argc, char **argv)
{
    int repair = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repair"))
            repair = 1;
        else
            return cli_usage_error("verify", "unexpected argument '%s'", argv[i]);
    }
    vx_err err = {0};
    st_options opts = st_options_default();
    opts.mode = repair ? ST_WRITE : ST_READ;
    st_store *store = NULL;
    vx_status st = st_open(g->data_dir, &opts, &store, &err);
    if (st == VX_ENOTFOUND && !repair) {
        fprintf(stderr, "vidx: error: no catalog in %s (nothing indexed yet?)\n", g->data_dir);
        return CLI_EXIT_FAILURE;
    }
    if (st) return cli_fail(&err);
    st_verify_report report;
    memset(&report, 0, sizeof report);
    st = st_verify(store, repair, &report, &err);
    st_close(store);
    if (st) return cli_fail(&err);

    size_t unrepaired = report.count - report.repaired;
    if (g->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "data_dir", g->data_dir);
        cJSON_AddBoolToObject(root, "ok", unrepaired == 0);
        cJSON_AddBoolToObject(root, "repair", repair);
        cJSON_AddNumberToObject(root, "problems", (double)report.count);
        cJSON_AddNumberToObject(root, "repaired", (double)report.repaired);
        cJSON *list = cJSON_AddArrayToObject(root, "details");
        for (size_t i = 0; i < report.count; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "kind", st_problem_kind_name(report.problems[i].kind));
            cJSON_AddStringToObject(o, "what", report.problems[i].what);
            cJSON_AddBoolToObject(o, "repaired", report.problems[i].repaired);
            cJSON_AddItemToArray(list, o);
        }
        char *text = cJSON_Print(root);
        if (text) puts(text);
        free(text);
        cJSON_Delete(root);
    } else {
        for (size_t i = 0; i < report.count; i++)
            printf("%-15s %s%s\n", st_problem_kind_name(report.problems[i].kind),
                   report.problems[i].what, report.problems[i].repaired ? "  [repaired]" : "");
        if (report.count == 0)
            printf("ok: catalog and indexes are consistent\n");
        else if (unrepaired == 0)
            printf("repaired %zu problem%s\n", report.count, report.count == 1 ? "" : "s");
        else
            printf("%zu problem%s found%s\n", unrepaired, unrepaired == 1 ? "" : "s",
                   repair ? " that could not be repaired" : "; run 'vidx verify --repair'");
    }
    st_verify_report_free(&report);
    return unrepaired ? CLI_EXIT_PROBLEMS : CLI_EXIT_OK;
}
