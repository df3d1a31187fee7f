/* search/srch_query.c — the user's query syntax to an FTS5 expression. The output is built only
 * from double-quoted strings (FTS5's own way to say "this is text, not syntax"), the operators
 * AND, OR, NOT, parentheses and a trailing *, so no input can make FTS5 report a syntax error.
 * Fuzzed by tests/fuzz/fuzz_query.c. */
#include "srch.h"

#include <stdlib.h>
#include <string.h>

typedef struct term {
    char *text; /* the term's words, separators as single spaces, no quotes */
    int exclude;
    int prefix;
    int or_with_prev; /* joined to the previous positive term by OR */
} term;

/* Appends the token characters of [p, p+n) to out as words separated by one space: ASCII
 * letters and digits and any valid non-ASCII character are kept (the unicode61 tokenizer
 * decides about those); everything else separates. Returns the bytes written. */
static size_t clean_words(const char *p, size_t n, char *out)
{
    size_t w = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        int len = vx_utf8_len((const unsigned char *)p + i, n - i);
        int keep = 0;
        if (len == 1)
            keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        else if (len > 1)
            keep = 1;
        else
            len = 1;
        if (keep) {
            if (pending_space && w) out[w++] = ' ';
            pending_space = 0;
            memcpy(out + w, p + i, (size_t)len);
            w += (size_t)len;
        } else {
            pending_space = 1;
        }
        i += (size_t)len;
    }
    out[w] = 0;
    return w;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           ((unsigned char)c < 0x20) || c == 0x7f;
}

static void free_terms(term *terms, int n)
{
    for (int i = 0; i < n; i++)
        free(terms[i].text);
}

/* Appends a term as an FTS5 string ("..." — the cleaned text has no quotes) with its '*'. */
static void put_term(vx_buf *b, const term *t, vx_status *st, vx_err *err)
{
    if (*st) return;
    *st = vx_buf_printf(b, err, "\"%s\"%s", t->text, t->prefix ? "*" : "");
}

vx_status srch_query_translate(const char *query, char **out, vx_err *err)
{
    *out = NULL;
    if (!query) return vx_fail(err, VX_EINVAL, "no query");
    size_t qlen = strlen(query);
    if (qlen > SRCH_QUERY_MAX_BYTES)
        return vx_fail(err, VX_ELIMIT, "the query is too long (%zu bytes; at most %d)", qlen,
                       SRCH_QUERY_MAX_BYTES);
    term terms[SRCH_QUERY_MAX_TERMS + 1];
    int nterms = 0;
    int pending_or = 0;
    vx_status st = VX_OK;
    char *scratch = malloc(qlen + 1);
    if (!scratch) return vx_fail(err, VX_ENOMEM, "out of memory");
    size_t i = 0;
    while (i < qlen) {
        if (is_space(query[i])) {
            i++;
            continue;
        }
        int exclude = 0;
        if (query[i] == '-' && i + 1 < qlen && !is_space(query[i + 1])) {
            exclude = 1;
            i++;
        }
        size_t start, end;
        int quoted = 0, prefix = 0;
        if (query[i] == '"') {
            quoted = 1;
            start = ++i;
            while (i < qlen && query[i] != '"')
                i++;
            end = i;
            if (i < qlen) i++; /* the closing quote; an unbalanced one runs to the end */
            if (i < qlen && query[i] == '*') {
                prefix = 1;
                while (i < qlen && query[i] == '*')
                    i++;
            }
        } else {
            start = i;
            while (i < qlen && !is_space(query[i]) && query[i] != '"')
                i++;
            end = i;
            while (end > start && query[end - 1] == '*') {
                prefix = 1;
                end--;
            }
        }
        /* OR between two positive terms is the operator; anywhere else it is a word. */
        if (!quoted && !exclude && !prefix && end - start == 2 &&
            !strncmp(query + start, "OR", 2) && nterms > 0 && !terms[nterms - 1].exclude) {
            pending_or = 1;
            continue;
        }
        size_t w = clean_words(query + start, end - start, scratch);
        if (w == 0) continue; /* only punctuation: nothing a tokenizer would index */
        if (nterms == SRCH_QUERY_MAX_TERMS) {
            st = vx_fail(err, VX_ELIMIT, "the query has too many terms (at most %d)",
                         SRCH_QUERY_MAX_TERMS);
            break;
        }
        term *t = &terms[nterms];
        t->text = malloc(w + 1);
        if (!t->text) {
            st = vx_fail(err, VX_ENOMEM, "out of memory");
            break;
        }
        memcpy(t->text, scratch, w + 1);
        t->exclude = exclude;
        t->prefix = prefix;
        t->or_with_prev = pending_or && !exclude;
        if (!exclude) pending_or = 0;
        nterms++;
    }
    free(scratch);
    if (st) {
        free_terms(terms, nterms);
        return st;
    }
    int npos = 0, nneg = 0;
    for (int k = 0; k < nterms; k++)
        terms[k].exclude ? nneg++ : npos++;
    if (npos == 0) {
        free_terms(terms, nterms);
        return vx_fail(err, VX_EINVAL,
                       nneg ? "nothing to search for: every word of the query is excluded "
                              "(-word); add a word to find"
                            : "the query has no words to search for");
    }
    /* (a OR b) AND c ... NOT (x OR y): groups of OR-joined positives, ANDed. */
    vx_buf b = {0};
    int first_group = 1;
    for (int k = 0; k < nterms && !st; k++) {
        if (terms[k].exclude) continue;
        /* the group: k and the positives that follow with or_with_prev */
        int end_k = k, n_in_group = 1;
        for (int j = k + 1; j < nterms; j++) {
            if (terms[j].exclude) continue;
            if (!terms[j].or_with_prev) break;
            end_k = j;
            n_in_group++;
        }
        if (!first_group) st = vx_buf_printf(&b, err, " AND ");
        if (!st && n_in_group > 1) st = vx_buf_printf(&b, err, "(");
        int first = 1;
        for (int j = k; j <= end_k && !st; j++) {
            if (terms[j].exclude) continue;
            if (!first) st = vx_buf_printf(&b, err, " OR ");
            put_term(&b, &terms[j], &st, err);
            first = 0;
        }
        if (!st && n_in_group > 1) st = vx_buf_printf(&b, err, ")");
        first_group = 0;
        k = end_k;
    }
    if (!st && nneg) {
        /* FTS5's NOT is binary: (positives) NOT (excluded ORed). */
        char *pos = b.data;
        vx_buf nb = {0};
        st = vx_buf_printf(&nb, err, "(%s) NOT (", pos);
        int first = 1;
        for (int k = 0; k < nterms && !st; k++) {
            if (!terms[k].exclude) continue;
            if (!first) st = vx_buf_printf(&nb, err, " OR ");
            put_term(&nb, &terms[k], &st, err);
            first = 0;
        }
        if (!st) st = vx_buf_printf(&nb, err, ")");
        vx_buf_free(&b);
        b = nb;
    }
    free_terms(terms, nterms);
    if (st) {
        vx_buf_free(&b);
        return st;
    }
    *out = b.data;
    return VX_OK;
}
