/* Tests of encoder/tokenizer.c: WordPiece and CLIP BPE against ids from HF `tokenizers`
 * (reference.js; golden files committed here, the full sets made at test time), pre_text against
 * Python's own code (pre_text_ref.py), and the API's edges.
 *
 *   test_tokenizer [CASE]                  unit tests and golden files
 *   test_tokenizer compare KIND VOCAB CASES  every case of a reference file (KIND: wordpiece|clip)
 *   test_tokenizer pre_text CASES          pre_text against pre_text_ref.py's output */
#include "testlib.h"
#include "enc.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>

#ifndef TOK_SRC_DIR
#error "TOK_SRC_DIR must name tests/tokenizer"
#endif

static char *read_text(const char *path, size_t *len)
{
    vx_err err;
    char *text = NULL;
    T_OK(vx_read_file(path, (size_t)1 << 30, &text, len, &err), &err);
    return text;
}

static cJSON *read_json(const char *path)
{
    size_t len = 0;
    char *text = read_text(path, &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) T_FAIL("%s: not JSON", path);
    free(text);
    return root;
}

static unsigned char *from_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = malloc(n + 1);
    T_ASSERT(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        T_ASSERT(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (unsigned char)v;
    }
    *len = n;
    return out;
}

/* Prints bytes with non-printable ones escaped, at most 160 of them. */
static void print_escaped(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len && i < 160; i++) {
        if (s[i] >= 32 && s[i] < 127 && s[i] != '\\')
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    if (len > 160) fprintf(stderr, "...(%zu bytes)", len);
}

static enc_tok *load(const char *kind, const char *path)
{
    vx_err err;
    enc_tok *tok = NULL;
    if (strcmp(kind, "clip") == 0)
        T_OK(enc_tok_clip_load(path, &tok, &err), &err);
    else
        T_OK(enc_tok_wordpiece_load(path, &tok, &err), &err);
    return tok;
}

/* Compares every case of a reference file; returns the number compared (aborts on mismatch
 * after printing up to 10 of them). */
static size_t compare_cases(const enc_tok *tok, const char *cases_path)
{
    cJSON *root = read_json(cases_path);
    cJSON *cases = cJSON_GetObjectItem(root, "cases");
    T_ASSERT(cJSON_IsArray(cases));
    size_t compared = 0, failed = 0;
    int32_t *ids = NULL, *mask = NULL;
    size_t cap = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        size_t len = 0;
        unsigned char *text = from_hex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        size_t max_len = (size_t)cJSON_GetObjectItem(c, "max_len")->valuedouble;
        cJSON *want = cJSON_GetObjectItem(c, "ids");
        size_t n_want = (size_t)cJSON_GetArraySize(want);
        if (max_len > cap) {
            cap = max_len;
            ids = realloc(ids, cap * sizeof(int32_t));
            mask = realloc(mask, cap * sizeof(int32_t));
            T_ASSERT(ids && mask);
        }
        vx_err err;
        size_t n = 0;
        int truncated = -1;
        T_OK(enc_tok_encode(tok, (const char *)text, len, max_len, ids, mask, &n, &truncated, &err),
             &err);
        bool ok = n == n_want;
        int32_t pad = enc_tok_get_specials(tok).pad;
        for (size_t k = 0; ok && k < max_len; k++) {
            int32_t expect =
                k < n_want ? (int32_t)cJSON_GetArrayItem(want, (int)k)->valuedouble : pad;
            if (ids[k] != expect || mask[k] != (k < n_want ? 1 : 0)) ok = false;
        }
        if (!ok) {
            if (failed < 10) {
                fprintf(stderr, "case %zu (max_len %zu) \"", compared, max_len);
                print_escaped(text, len);
                fprintf(stderr, "\"\n  want:");
                for (size_t k = 0; k < n_want && k < 40; k++)
                    fprintf(stderr, " %d", (int)cJSON_GetArrayItem(want, (int)k)->valuedouble);
                fprintf(stderr, "\n  got: ");
                for (size_t k = 0; k < n && k < 40; k++)
                    fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n");
            }
            failed++;
        }
        compared++;
        free(text);
    }
    free(ids);
    free(mask);
    cJSON_Delete(root);
    if (failed)
        T_FAIL("%s: %zu of %zu cases differ from the reference", cases_path, failed, compared);
    return compared;
}

/* ---- unit tests ------------------------------------------------------------------------------ */

static const char small_vocab[] = "[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
                                  "the\ndog\nrun\n##s\n##ning\nun\n##aff\n##able\n,\n!\na\n";

static enc_tok *small(void)
{
    vx_err err;
    enc_tok *tok = NULL;
    T_OK(enc_tok_wordpiece_from_memory(small_vocab, sizeof(small_vocab) - 1, &tok, &err), &err);
    return tok;
}

static void encode_str(const enc_tok *tok, const char *s, size_t max_len, int32_t *ids, size_t *n,
                       int *truncated)
{
    vx_err err;
    T_OK(enc_tok_encode(tok, s, strlen(s), max_len, ids, NULL, n, truncated, &err), &err);
}

static void test_small_vocab(void)
{
    enc_tok *tok = small();
    T_EQ_INT(enc_tok_get_kind(tok), ENC_TOK_WORDPIECE);
    T_EQ_INT(enc_tok_vocab_size(tok), 17);
    T_EQ_INT(enc_tok_piece_id(tok, "##aff", 5), 12);
    T_EQ_INT(enc_tok_piece_id(tok, "cat", 3), -1);
    T_EQ_STR(enc_tok_piece(tok, 13), "##able");
    T_ASSERT(enc_tok_piece(tok, 17) == NULL && enc_tok_piece(tok, -1) == NULL);
    enc_tok_specials sp = enc_tok_get_specials(tok);
    T_EQ_INT(sp.begin, 3);
    T_EQ_INT(sp.end, 4);
    T_EQ_INT(sp.pad, 0);
    T_EQ_INT(sp.unk, 2);

    int32_t ids[16], mask[16];
    size_t n = 0;
    int truncated = -1;
    vx_err err;
    const char *s = "The dog runs, UNAFFABLE! cat";
    T_OK(enc_tok_encode(tok, s, strlen(s), 16, ids, mask, &n, &truncated, &err), &err);
    const int32_t want[] = {3, 6, 7, 8, 9, 14, 11, 12, 13, 15, 2, 4, 0, 0, 0, 0};
    T_EQ_INT(n, 12);
    T_EQ_INT(truncated, 0);
    for (int k = 0; k < 16; k++) {
        T_EQ_INT(ids[k], want[k]);
        T_EQ_INT(mask[k], k < 12 ? 1 : 0);
    }
    /* truncation keeps [SEP] last */
    encode_str(tok, s, 5, ids, &n, &truncated);
    T_EQ_INT(n, 5);
    T_EQ_INT(truncated, 1);
    T_EQ_INT(ids[3], 8);
    T_EQ_INT(ids[4], 4);
    /* exactly fitting is not truncation */
    encode_str(tok, "the dog", 4, ids, &n, &truncated);
    T_EQ_INT(truncated, 0);
    T_EQ_INT(ids[3], 4);
    encode_str(tok, "the dog", 2, ids, &n, &truncated);
    T_EQ_INT(n, 2);
    T_EQ_INT(truncated, 1);
    /* special tokens typed in the text, exact case only */
    encode_str(tok, "a[MASK]a [mask]", 16, ids, &n, NULL);
    T_EQ_INT(ids[1], 16);
    T_EQ_INT(ids[2], 5);
    T_EQ_INT(ids[3], 16);
    T_EQ_INT(ids[4], 2); /* "[" not in the vocabulary: [UNK] */
    /* bad arguments */
    T_EQ_INT(enc_tok_encode(tok, "x", 1, 1, ids, NULL, NULL, NULL, &err), VX_EINVAL);
    T_EQ_INT(enc_tok_encode(tok, NULL, 1, 8, ids, NULL, NULL, NULL, &err), VX_EINVAL);
    T_EQ_INT(enc_tok_encode(NULL, "x", 1, 8, ids, NULL, NULL, NULL, &err), VX_EINVAL);
    T_OK(enc_tok_encode(tok, NULL, 0, 8, ids, NULL, &n, NULL, &err), &err);
    T_EQ_INT(n, 2);
    enc_tok_free(tok);
    enc_tok_free(NULL);
}

static void test_vocab_loading(void)
{
    vx_err err;
    enc_tok *tok = NULL;
    /* CRLF lines and trailing spaces are trimmed; a piece listed twice keeps its last line; no
     * final newline */
    const char crlf[] = "[PAD]\r\n[UNK]  \r\n[CLS]\r\n[SEP]\r\nhello\r\nhello\r\nworld";
    T_OK(enc_tok_wordpiece_from_memory(crlf, sizeof(crlf) - 1, &tok, &err), &err);
    T_EQ_INT(enc_tok_vocab_size(tok), 7);
    T_EQ_INT(enc_tok_piece_id(tok, "[UNK]", 5), 1);
    T_EQ_INT(enc_tok_piece_id(tok, "hello", 5), 5);
    T_EQ_INT(enc_tok_piece_id(tok, "world", 5), 6);
    enc_tok_free(tok);
    const char no_unk[] = "[PAD]\n[CLS]\n[SEP]\n";
    T_EQ_INT(enc_tok_wordpiece_from_memory(no_unk, sizeof(no_unk) - 1, &tok, &err), VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "[UNK]") != NULL);
    T_ASSERT(tok == NULL);
    T_EQ_INT(enc_tok_wordpiece_from_memory("", 0, &tok, &err), VX_EFORMAT);
    T_EQ_INT(enc_tok_wordpiece_load("/nonexistent/vocab.txt", &tok, &err), VX_ENOTFOUND);
    T_ASSERT(strstr(err.msg, "/nonexistent/vocab.txt") != NULL);
}

static void test_golden_wordpiece(void)
{
    enc_tok *tok = load("wordpiece", TOK_SRC_DIR "/golden_vocab.txt");
    size_t n = compare_cases(tok, TOK_SRC_DIR "/golden_wordpiece.json");
    printf("  golden wordpiece: %zu cases identical\n", n);
    enc_tok_free(tok);
}

static void test_pre_text_fixed(void)
{
    static const struct {
        const char *in, *out;
        size_t max_words;
    } cases[] = {
        {"A man, wearing a hat, is RUNNING!", "a man wearing a hat is running", 0},
        {"<PERSON> walks a dog.", "person walks a dog", 0},
        {"a man/woman in a red-shirt", "a man woman in a red shirt", 0},
        {"  leading  and\t\ttrailing \n", "leading and trailing", 0},
        {"single\ttab kept", "single\ttab kept", 0},
        {"one two three four", "one two", 2},
        {"x -- y", "x y", 0},
        {"ÉCOLE Ünïcödé", "école ünïcödé", 0},
        {"", "", 0},
        {"?!.,", "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vx_err err;
        char *out = NULL;
        size_t len = 0;
        T_OK(enc_tok_pre_text(cases[i].in, strlen(cases[i].in), cases[i].max_words, &out, &len,
                              &err),
             &err);
        T_EQ_STR(out, cases[i].out);
        T_EQ_INT(len, strlen(cases[i].out));
        free(out);
    }
}

/* A query must take microseconds: WordPiece at 32 tokens, CLIP at 77. The real vocabularies
 * when VIDX_TOK_VOCAB / VIDX_TOK_MERGES name them, the golden ones otherwise. */
static void time_queries(const char *kind, const char *env, const char *fallback, size_t max_len)
{
    const char *path = getenv(env);
    enc_tok *tok = load(kind, path ? path : fallback);
    const char *q = "A man in a red jacket is playing the electric guitar on a crowded stage "
                    "while the audience claps along, cheering loudly.";
    int32_t ids[77];
    size_t n = 0;
    vx_err err;
    int reps = 20000;
    int64_t t0 = vx_now_ns();
    for (int r = 0; r < reps; r++)
        T_OK(enc_tok_encode(tok, q, strlen(q), max_len, ids, NULL, &n, NULL, &err), &err);
    double us = (double)(vx_now_ns() - t0) / reps / 1000.0;
    printf("  %s: %.2f us per query (%zu tokens, %s)\n", kind, us, n, path ? path : fallback);
#if defined(__SANITIZE_ADDRESS__) || defined(VIDX_TEST_SLOW)
    T_ASSERT(us < 5000.0); /* instrumented: only a gross regression fails */
#else
    T_ASSERT(us < 200.0);
#endif
    enc_tok_free(tok);
}

static void test_speed(void)
{
    time_queries("wordpiece", "VIDX_TOK_VOCAB", TOK_SRC_DIR "/golden_vocab.txt", 32);
    time_queries("clip", "VIDX_TOK_MERGES", TOK_SRC_DIR "/golden_merges.txt", 77);
}

static void test_golden_clip(void)
{
    enc_tok *tok = load("clip", TOK_SRC_DIR "/golden_merges.txt");
    T_EQ_INT(enc_tok_get_kind(tok), ENC_TOK_CLIP_BPE);
    T_EQ_INT(enc_tok_vocab_size(tok), 512 + 3000 + 2);
    size_t n = compare_cases(tok, TOK_SRC_DIR "/golden_clip.json");
    printf("  golden clip: %zu cases identical\n", n);
    enc_tok_free(tok);
}

/* Encodes a and b (NUL-terminated) and checks the ids are the same. */
static void clip_same(const enc_tok *tok, const char *a, const char *b)
{
    int32_t ia[77], ib[77];
    size_t na = 0, nb = 0;
    encode_str(tok, a, 77, ia, &na, NULL);
    encode_str(tok, b, 77, ib, &nb, NULL);
    if (na != nb || memcmp(ia, ib, sizeof(ia)) != 0)
        T_FAIL("\"%s\" and \"%s\" should give the same ids (%zu vs %zu tokens)", a, b, na, nb);
}

static void test_clip_rules(void)
{
    enc_tok *tok = load("clip", TOK_SRC_DIR "/golden_merges.txt");
    enc_tok_specials sp = enc_tok_get_specials(tok);
    T_EQ_INT(sp.begin, 3512);
    T_EQ_INT(sp.end, 3513);
    T_EQ_INT(sp.pad, 0);
    T_EQ_INT(enc_tok_piece_id(tok, "the</w>", 7), 518); /* as in the full vocabulary */
    T_EQ_STR(enc_tok_piece(tok, 320), "a</w>");
    T_EQ_STR(enc_tok_piece(tok, 256), "!</w>");
    T_EQ_STR(enc_tok_piece(tok, 188), "\xc4\x80"); /* byte 0 -> U+0100 */
    /* html.unescape twice (expected texts from Python's html module) */
    clip_same(tok, "fish &amp; chips", "fish & chips");
    clip_same(tok, "a &amp;lt; b", "a < b");
    clip_same(tok, "&#x41;&#66;c", "abc");
    clip_same(tok, "&#128;", "\xe2\x82\xac");
    clip_same(tok, "x&#0;y", "x\xef\xbf\xbdy");
    clip_same(tok, "x&#1;y", "xy");
    clip_same(tok, "&notit;", "\xc2\xacit;");
    clip_same(tok, "&#xD800; &#99999999999;", "\xef\xbf\xbd \xef\xbf\xbd");
    clip_same(tok, "&lt&gt &AMP;", "<> &");
    clip_same(tok, "&amp;amp;", "&"); /* unescaped twice, not three times */
    clip_same(tok, "&NotNestedGreaterGreater;", "\xe2\xaa\xa2\xcc\xb8");
    /* whitespace collapsed and stripped; lower case with Python's final sigma */
    clip_same(tok, "  A\t\n DOG \xe3\x80\x80 ", "a dog");
    clip_same(tok, "\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
    /* contractions: 'ſ (long s) folds to 's under IGNORECASE */
    clip_same(tok, "it's", "it 's");
    clip_same(tok, "it'\xc5\xbf", "it '\xc5\xbf");
    /* special tokens typed in the text: where the pattern starts a match, any case */
    int32_t ids[77];
    size_t n = 0;
    encode_str(tok, "a <START_OF_TEXT> b<end_of_text>", 77, ids, &n, NULL);
    T_EQ_INT(n, 6);
    T_EQ_INT(ids[2], 3512);
    T_EQ_INT(ids[4], 3513);
    encode_str(tok, "!!<start_of_text>", 77, ids, &n, NULL);
    T_ASSERT(n > 4); /* inside a punctuation run: plain text */
    /* truncation keeps <end_of_text> in the last slot */
    int truncated = 0;
    encode_str(tok, "one two three four five six seven eight nine ten", 6, ids, &n, &truncated);
    T_EQ_INT(n, 6);
    T_EQ_INT(truncated, 1);
    T_EQ_INT(ids[0], 3512);
    T_EQ_INT(ids[5], 3513);
    encode_str(tok, "", 77, ids, &n, &truncated);
    T_EQ_INT(n, 2);
    T_EQ_INT(truncated, 0);
    T_EQ_INT(ids[2], 0);
    enc_tok_free(tok);

    /* malformed merges files */
    vx_err err;
    const char bad[] = "#version: 0.2\ni n\nt h x\n";
    T_EQ_INT(enc_tok_clip_from_memory(bad, sizeof(bad) - 1, &tok, &err), VX_EFORMAT);
    T_ASSERT(strstr(err.msg, "line 3") != NULL);
    T_EQ_INT(enc_tok_clip_from_memory("", 0, &tok, &err), VX_EFORMAT);
    const char tiny[] = "#version: 0.2\ni n\n";
    T_OK(enc_tok_clip_from_memory(tiny, sizeof(tiny) - 1, &tok, &err), &err);
    T_EQ_INT(enc_tok_vocab_size(tok), 515);
    T_EQ_INT(enc_tok_piece_id(tok, "in", 2), 512);
    encode_str(tok, "in", 8, ids, &n, NULL);
    T_EQ_INT(n, 4); /* "i" + "n</w>": the merge "i n" does not apply to "n</w>" */
    encode_str(tok, "inn", 8, ids, &n, NULL);
    T_EQ_INT(n, 4); /* "in" + "n</w>" */
    T_EQ_INT(ids[1], 512);
    enc_tok_free(tok);
}

/* One loaded tokenizer shared by threads: every thread must see the single-thread ids. */
typedef struct thread_job {
    const enc_tok *tok;
    const char *const *texts;
    size_t n_texts;
    const int32_t *want; /* [n_texts][40] */
    int mismatches;
} thread_job;

static void *encode_many(void *arg)
{
    thread_job *job = arg;
    for (int rep = 0; rep < 200; rep++) {
        for (size_t i = 0; i < job->n_texts; i++) {
            int32_t ids[40];
            vx_err err;
            if (enc_tok_encode(job->tok, job->texts[i], strlen(job->texts[i]), 40, ids, NULL, NULL,
                               NULL, &err) != VX_OK ||
                memcmp(ids, job->want + 40 * i, sizeof(ids)) != 0)
                job->mismatches++;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    static const char *const texts[] = {"A man is playing a guitar on stage.",
                                        "Caf\xc3\xa9 \xe4\xb8\x96\xe7\x95\x8c \xce\xa3",
                                        "x[SEP]y &amp; it's",
                                        "",
                                        "\xff\xfe invalid",
                                        "unaffable runs, dog!"};
    const size_t n = sizeof(texts) / sizeof(texts[0]);
    enc_tok *toks[2] = {load("wordpiece", TOK_SRC_DIR "/golden_vocab.txt"),
                        load("clip", TOK_SRC_DIR "/golden_merges.txt")};
    for (int k = 0; k < 2; k++) {
        int32_t want[sizeof(texts) / sizeof(texts[0])][40];
        for (size_t i = 0; i < n; i++)
            encode_str(toks[k], texts[i], 40, want[i], NULL, NULL);
        thread_job jobs[4];
        pthread_t th[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] =
                (thread_job){.tok = toks[k], .texts = texts, .n_texts = n, .want = &want[0][0]};
            T_EQ_INT(pthread_create(&th[t], NULL, encode_many, &jobs[t]), 0);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            T_EQ_INT(jobs[t].mismatches, 0);
        }
        enc_tok_free(toks[k]);
    }
}

static const t_case cases[] = {
    {"small_vocab", test_small_vocab},
    {"vocab_loading", test_vocab_loading},
    {"golden_wordpiece", test_golden_wordpiece},
    {"pre_text_fixed", test_pre_text_fixed},
    {"golden_clip", test_golden_clip},
    {"clip_rules", test_clip_rules},
    {"threads", test_threads},
    {"speed", test_speed},
};

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "compare") == 0) {
        enc_tok *tok = load(argv[2], argv[3]);
        size_t n = compare_cases(tok, argv[4]);
        printf("%s: %zu cases, all identical to the reference\n", argv[2], n);
        enc_tok_free(tok);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "pre_text") == 0) {
        cJSON *root = read_json(argv[2]);
        size_t n = 0;
        cJSON *c;
        cJSON_ArrayForEach(c, root)
        {
            size_t len = 0, out_len = 0;
            unsigned char *text = from_hex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
            size_t want_len = 0;
            unsigned char *want =
                from_hex(cJSON_GetObjectItem(c, "out_hex")->valuestring, &want_len);
            size_t max_words = (size_t)cJSON_GetObjectItem(c, "max_words")->valuedouble;
            vx_err err;
            char *out = NULL;
            T_OK(enc_tok_pre_text((const char *)text, len, max_words, &out, &out_len, &err), &err);
            if (out_len != want_len || memcmp(out, want, want_len) != 0) {
                fprintf(stderr, "pre_text case %zu: \"", n);
                print_escaped(text, len);
                fprintf(stderr, "\"\n  want \"");
                print_escaped(want, want_len);
                fprintf(stderr, "\"\n  got  \"");
                print_escaped((unsigned char *)out, out_len);
                fprintf(stderr, "\"\n");
                T_FAIL("pre_text differs from Python");
            }
            free(out);
            free(text);
            free(want);
            n++;
        }
        cJSON_Delete(root);
        printf("pre_text: %zu cases, all identical to Python\n", n);
        return 0;
    }
    return T_RUN(argc, argv, cases);
}
