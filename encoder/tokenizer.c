/* encoder/tokenizer.c — WordPiece (BERT uncased) and CLIP BPE tokenizers, and InternVideo2's
 * caption cleaning. The reference is HF `tokenizers` (tests/tokenizer compares every id).
 *
 * DESIGN
 * WordPiece runs as one pass over the input with no allocation: UTF-8 decode -> special tokens
 * typed in the text -> clean (drop control/format, whitespace -> ' ') -> CJK spacing -> NFD ->
 * canonical reordering -> drop Mn -> lower case -> split on whitespace and punctuation -> one
 * word at a time into greedy longest-match pieces. Only the first 101 characters of a word are
 * kept (a longer word is [UNK] whatever it holds), so fixed buffers suffice, and the pass stops
 * as soon as max_len is exceeded, so a 100k-character input costs no more than its first words.
 * Canonical reordering only matters for the non-starters that survive the Mn filter (a few Mc
 * signs with a nonzero combining class); they wait in a small buffer until the next starter.
 *
 * The vocabulary is one arena of NUL-terminated pieces and an open-addressing hash table
 * (FNV-1a) built at load; the "##" of a continuation is hashed as a prefix, so no string is
 * built per lookup. CLIP BPE ranks merges in a second table keyed by the two symbol ids and
 * merges with a heap per word, in passes that reproduce open_clip's loop exactly. */
#include "enc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- Unicode tables (encoder/unicode_tables.c, generated) ----------------------------------- */

extern const char enc_uni_version[];
extern const uint16_t enc_uni_ascii_flags[128];
extern const uint32_t enc_uni_runs[], enc_uni_run_count;
extern const uint32_t enc_uni_nfd_keys[], enc_uni_nfd_vals[], enc_uni_nfd_pool[], enc_uni_nfd_count;
extern const uint32_t enc_uni_lower_keys[], enc_uni_lower_vals[], enc_uni_lower_pool[],
    enc_uni_lower_count;
extern const uint32_t enc_uni_ccc[], enc_uni_ccc_count;
extern const char *const enc_uni_entity_names[];
extern const char *const enc_uni_entity_texts[];
extern const uint32_t enc_uni_entity_count;
extern const uint64_t enc_uni_charref_repl[];
extern const uint32_t enc_uni_charref_repl_count;
extern const uint32_t enc_uni_charref_drop[], enc_uni_charref_drop_count;

/* Flag bits of enc_uni_runs (scripts/gen_unicode_tables.py). */
enum {
    U_DROP8 = 1 << 0,    /* Cc Cf Co Cs (Unicode 8.0): removed by clean_text */
    U_MN8 = 1 << 1,      /* Mn (8.0): removed by strip_accents */
    U_PUNCT8 = 1 << 2,   /* P* (8.0): isolated by the BERT pre-tokenizer */
    U_LETTER = 1 << 3,   /* L* */
    U_NUMBER = 1 << 4,   /* N* */
    U_PYSPACE = 1 << 5,  /* Python str.isspace() */
    U_WSPACE = 1 << 6,   /* White_Space (Rust char::is_whitespace) */
    U_CASED = 1 << 7,    /* Cased: context of Python's final sigma */
    U_CASE_IGN = 1 << 8, /* Case_Ignorable: same */
    U_LETTER_I = 1 << 9, /* L*, or a case variant is (U+0345): \p{L} under IGNORECASE */
};
#define U_FLAG_BITS 10

#define CP_REPLACEMENT 0xFFFDu

const char *enc_tok_unicode_version(void)
{
    return enc_uni_version;
}

static bool is_ascii_punct(uint32_t c)
{
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
}

static unsigned uni_flags(uint32_t cp)
{
    if (cp < 128) return enc_uni_ascii_flags[cp];
    /* the last run whose first code point is <= cp */
    size_t lo = 0, hi = enc_uni_run_count;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((enc_uni_runs[mid] >> U_FLAG_BITS) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return enc_uni_runs[lo] & ((1u << U_FLAG_BITS) - 1);
}

/* Index of cp in a sorted key array, or -1. */
static long find_key(const uint32_t *keys, uint32_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (keys[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < count && keys[lo] == cp) ? (long)lo : -1;
}

static unsigned uni_ccc(uint32_t cp)
{
    if (cp < 0x300) return 0;
    size_t lo = 0, hi = enc_uni_ccc_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((enc_uni_ccc[mid] >> 8) < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < enc_uni_ccc_count && (enc_uni_ccc[lo] >> 8) == cp) ? (enc_uni_ccc[lo] & 0xFF) : 0;
}

/* Full lower case of cp into out[3]; returns the count (1 when unchanged). */
static int uni_lower(uint32_t cp, uint32_t out[3])
{
    if (cp < 128) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    long i = find_key(enc_uni_lower_keys, enc_uni_lower_count, cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    uint32_t v = enc_uni_lower_vals[i];
    int n = (int)(v & 7);
    for (int k = 0; k < n; k++)
        out[k] = enc_uni_lower_pool[(v >> 3) + (uint32_t)k];
    return n;
}

/* Canonical decomposition (NFD) of one code point into out[4]; returns the count. */
static int uni_nfd(uint32_t cp, uint32_t out[4])
{
    if (cp < 0xC0) {
        out[0] = cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllables: arithmetic (Unicode 3.12) */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    long i = find_key(enc_uni_nfd_keys, enc_uni_nfd_count, cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    uint32_t v = enc_uni_nfd_vals[i];
    int n = (int)(v & 7);
    for (int k = 0; k < n; k++)
        out[k] = enc_uni_nfd_pool[(v >> 3) + (uint32_t)k];
    return n;
}

/* Decodes one code point at *pos, advancing it; invalid input gives U+FFFD for each maximal
 * invalid subsequence (Unicode's "substitution of maximal subparts", as Rust's
 * from_utf8_lossy and the WHATWG decoder node uses). Never reads past len. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *pos)
{
    size_t i = *pos;
    unsigned b0 = s[i];
    if (b0 < 0x80) {
        *pos = i + 1;
        return b0;
    }
    int need;
    unsigned lower = 0x80, upper = 0xBF;
    uint32_t cp;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        cp = b0 & 0x0F;
        if (b0 == 0xE0) lower = 0xA0;
        if (b0 == 0xED) upper = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        cp = b0 & 0x07;
        if (b0 == 0xF0) lower = 0x90;
        if (b0 == 0xF4) upper = 0x8F;
    } else {
        *pos = i + 1;
        return CP_REPLACEMENT;
    }
    i++;
    for (int k = 0; k < need; k++, i++) {
        if (i >= len || s[i] < lower || s[i] > upper) {
            *pos = i;
            return CP_REPLACEMENT;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
        lower = 0x80;
        upper = 0xBF;
    }
    *pos = i;
    return cp;
}

/* Appends the UTF-8 of cp to out (room for 4 bytes); returns the byte count. */
static int utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- the vocabulary: arena + hash table ----------------------------------------------------- */

typedef struct vocab_slot {
    uint64_t hash;
    uint32_t off; /* piece text in the arena */
    uint32_t len;
    int32_t id; /* -1: empty slot */
} vocab_slot;

typedef struct merge_slot {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t merged_id;
} merge_slot;

#define MAX_SPECIALS 5

struct enc_tok {
    enc_tok_kind kind;
    char *arena; /* pieces, each NUL-terminated */
    size_t arena_len;
    uint32_t *id_off; /* [n_ids] offset of each id's text; UINT32_MAX: no text */
    size_t n_ids;
    vocab_slot *slots;
    size_t slot_mask;
    size_t max_piece_len; /* bytes, without a "##" prefix */
    enc_tok_specials sp;
    /* WordPiece: special tokens recognised in the raw text */
    struct {
        const char *text;
        size_t len;
        int32_t id;
    } specials[MAX_SPECIALS];
    int n_specials;
    /* CLIP BPE */
    merge_slot *merges;
    size_t merge_mask;
    int32_t byte_id[256];     /* id of the byte's character */
    int32_t byte_end_id[256]; /* id of the byte's character + "</w>" */
};

static uint64_t fnv_feed(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_SEED 0xcbf29ce484222325ull

static int32_t vocab_find(const enc_tok *tok, uint64_t hash, const char *prefix, size_t prefix_len,
                          const char *s, size_t len)
{
    size_t i = (size_t)hash & tok->slot_mask;
    for (;;) {
        const vocab_slot *sl = &tok->slots[i];
        if (sl->id < 0) return -1;
        if (sl->hash == hash && sl->len == prefix_len + len &&
            memcmp(tok->arena + sl->off, prefix, prefix_len) == 0 &&
            memcmp(tok->arena + sl->off + prefix_len, s, len) == 0)
            return sl->id;
        i = (i + 1) & tok->slot_mask;
    }
}

int32_t enc_tok_piece_id(const enc_tok *tok, const char *piece, size_t len)
{
    if (!tok || (!piece && len)) return -1;
    return vocab_find(tok, fnv_feed(FNV_SEED, piece, len), "", 0, piece, len);
}

/* Adds a piece with an id; a piece already present takes the new id (the last line wins, as
 * HF's vocab readers do). The arena must have room (sized by the caller). */
static void vocab_add(enc_tok *tok, const char *s, size_t len, int32_t id)
{
    uint64_t h = fnv_feed(FNV_SEED, s, len);
    size_t i = (size_t)h & tok->slot_mask;
    while (tok->slots[i].id >= 0) {
        vocab_slot *sl = &tok->slots[i];
        if (sl->hash == h && sl->len == len && memcmp(tok->arena + sl->off, s, len) == 0) {
            sl->id = id;
            tok->id_off[id] = sl->off;
            return;
        }
        i = (i + 1) & tok->slot_mask;
    }
    uint32_t off = (uint32_t)tok->arena_len;
    memcpy(tok->arena + off, s, len);
    tok->arena[off + len] = '\0';
    tok->arena_len += len + 1;
    tok->slots[i] = (vocab_slot){.hash = h, .off = off, .len = (uint32_t)len, .id = id};
    tok->id_off[id] = off;
    if (len > tok->max_piece_len) tok->max_piece_len = len;
}

/* Allocates the arena (arena_bytes), id table and hash table for n_ids entries. */
static vx_status vocab_alloc(enc_tok *tok, size_t n_ids, size_t arena_bytes, vx_err *err)
{
    size_t slots = 64;
    while (slots < n_ids * 2)
        slots *= 2;
    tok->arena = vx_malloc(arena_bytes ? arena_bytes : 1, err);
    tok->id_off = vx_calloc_array(n_ids ? n_ids : 1, sizeof(uint32_t), err);
    tok->slots = vx_calloc_array(slots, sizeof(vocab_slot), err);
    if (!tok->arena || !tok->id_off || !tok->slots) return err ? err->status : VX_ENOMEM;
    for (size_t i = 0; i < slots; i++)
        tok->slots[i].id = -1;
    for (size_t i = 0; i < n_ids; i++)
        tok->id_off[i] = UINT32_MAX;
    tok->slot_mask = slots - 1;
    tok->n_ids = n_ids;
    return VX_OK;
}

void enc_tok_free(enc_tok *tok)
{
    if (!tok) return;
    free(tok->arena);
    free(tok->id_off);
    free(tok->slots);
    free(tok->merges);
    free(tok);
}

enc_tok_kind enc_tok_get_kind(const enc_tok *tok)
{
    return tok->kind;
}
size_t enc_tok_vocab_size(const enc_tok *tok)
{
    return tok ? tok->n_ids : 0;
}
enc_tok_specials enc_tok_get_specials(const enc_tok *tok)
{
    return tok->sp;
}

const char *enc_tok_piece(const enc_tok *tok, int32_t id)
{
    if (!tok || id < 0 || (size_t)id >= tok->n_ids || tok->id_off[id] == UINT32_MAX) return NULL;
    return tok->arena + tok->id_off[id];
}

static vx_status load_file(const char *path, const char *what, char **text, size_t *len,
                           vx_err *err)
{
    if (!path) return vx_fail(err, VX_EINVAL, "%s: no path given", what);
    vx_status st = vx_read_file(path, (size_t)64 << 20, text, len, err);
    if (st != VX_OK) return vx_err_prefix(err, "%s", what);
    return VX_OK;
}

/* ---- WordPiece: loading ---------------------------------------------------------------------- */

static bool is_trim_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

vx_status enc_tok_wordpiece_from_memory(const char *text, size_t len, enc_tok **out, vx_err *err)
{
    if (!out || (!text && len))
        return vx_fail(err, VX_EINVAL, "wordpiece vocabulary: bad argument");
    *out = NULL;
    /* lines: split on '\n' (a final line without '\n' counts; an empty final piece after the
     * last '\n' does not, as Rust's BufRead::lines) */
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') n_lines++;
    if (len > 0 && text[len - 1] != '\n') n_lines++;
    if (n_lines == 0) return vx_fail(err, VX_EFORMAT, "wordpiece vocabulary is empty");
    if (n_lines > INT32_MAX / 2 || len > UINT32_MAX / 2)
        return vx_fail(err, VX_ELIMIT, "wordpiece vocabulary too large (%zu lines)", n_lines);

    enc_tok *tok = vx_calloc_array(1, sizeof(*tok), err);
    if (!tok) return err ? err->status : VX_ENOMEM;
    tok->kind = ENC_TOK_WORDPIECE;
    vx_status st = vocab_alloc(tok, n_lines, len + n_lines + 1, err);
    if (st != VX_OK) {
        enc_tok_free(tok);
        return st;
    }
    size_t line = 0, start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        size_t e = end;
        /* HF trims the end of each line (trim_end); ASCII whitespace is what vocab files hold */
        while (e > start && is_trim_space((unsigned char)text[e - 1]))
            e--;
        vocab_add(tok, text + start, e - start, (int32_t)line);
        line++;
        start = end + 1;
    }
    static const char *const names[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    int32_t ids[5];
    for (int k = 0; k < 5; k++) {
        ids[k] = enc_tok_piece_id(tok, names[k], strlen(names[k]));
        if (ids[k] < 0 && k < 4) {
            enc_tok_free(tok);
            return vx_fail(err, VX_EFORMAT, "wordpiece vocabulary has no %s token", names[k]);
        }
        if (ids[k] >= 0) {
            tok->specials[tok->n_specials].text = names[k];
            tok->specials[tok->n_specials].len = strlen(names[k]);
            tok->specials[tok->n_specials].id = ids[k];
            tok->n_specials++;
        }
    }
    tok->sp = (enc_tok_specials){.begin = ids[2], .end = ids[3], .pad = ids[0], .unk = ids[1]};
    *out = tok;
    return VX_OK;
}

vx_status enc_tok_wordpiece_load(const char *vocab_path, enc_tok **out, vx_err *err)
{
    char *text = NULL;
    size_t len = 0;
    if (out) *out = NULL;
    vx_status st = load_file(vocab_path, "wordpiece vocabulary", &text, &len, err);
    if (st != VX_OK) return st; /* the message names the file */
    st = enc_tok_wordpiece_from_memory(text, len, out, err);
    free(text);
    if (st != VX_OK) vx_err_prefix(err, "%s", vocab_path);
    return st;
}

/* ---- WordPiece: encoding --------------------------------------------------------------------- */

#define WORD_KEEP (ENC_TOK_WORDPIECE_MAX_WORD_CHARS + 1)
#define PENDING_CAP 128

typedef struct wp_state {
    const enc_tok *tok;
    int32_t *ids; /* caller's; content tokens go at ids[1 + count] */
    size_t limit; /* content tokens that fit: max_len - 2 */
    size_t count;
    bool done; /* one more token than fits was found: stop */
    uint32_t word[WORD_KEEP];
    size_t word_chars; /* may exceed WORD_KEEP: only the count matters then */
    /* non-starters (combining class > 0) that survive the Mn filter, waiting for the next
     * starter to be put in canonical order */
    uint32_t pending[PENDING_CAP];
    uint8_t pending_ccc[PENDING_CAP];
    size_t n_pending;
} wp_state;

static void wp_emit(wp_state *s, int32_t id)
{
    if (s->done) return;
    if (s->count >= s->limit) {
        s->done = true;
        return;
    }
    s->ids[1 + s->count++] = id;
}

/* Greedy longest-match-first pieces of the finished word (HF WordPiece::tokenize). */
static void wp_end_word(wp_state *s)
{
    size_t n = s->word_chars;
    s->word_chars = 0;
    if (n == 0 || s->done) return;
    const enc_tok *tok = s->tok;
    if (n > ENC_TOK_WORDPIECE_MAX_WORD_CHARS) {
        wp_emit(s, tok->sp.unk);
        return;
    }
    char bytes[ENC_TOK_WORDPIECE_MAX_WORD_CHARS * 4];
    uint16_t char_end[ENC_TOK_WORDPIECE_MAX_WORD_CHARS]; /* byte end of each character */
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        nb += (size_t)utf8_put(s->word[i], bytes + nb);
        char_end[i] = (uint16_t)nb;
    }
    int32_t pieces[ENC_TOK_WORDPIECE_MAX_WORD_CHARS];
    size_t n_pieces = 0;
    size_t start_char = 0, start = 0;
    const uint64_t cont_seed = fnv_feed(FNV_SEED, "##", 2);
    while (start < nb) {
        /* the longest candidate first: the last character end within max_piece_len bytes */
        size_t end_char = n; /* exclusive */
        while (end_char > start_char + 1 &&
               (size_t)char_end[end_char - 1] - start > tok->max_piece_len)
            end_char--;
        int32_t id = -1;
        for (; end_char > start_char; end_char--) {
            size_t end = char_end[end_char - 1];
            const char *sub = bytes + start;
            size_t sub_len = end - start;
            if (start > 0)
                id = vocab_find(tok, fnv_feed(cont_seed, sub, sub_len), "##", 2, sub, sub_len);
            else
                id = vocab_find(tok, fnv_feed(FNV_SEED, sub, sub_len), "", 0, sub, sub_len);
            if (id >= 0) break;
        }
        if (id < 0) {
            wp_emit(s, tok->sp.unk);
            return;
        }
        pieces[n_pieces++] = id;
        start = char_end[end_char - 1];
        start_char = end_char;
    }
    for (size_t i = 0; i < n_pieces; i++)
        wp_emit(s, pieces[i]);
}

/* A normalised character: split on whitespace and punctuation (BertPreTokenizer). */
static void wp_pretok(wp_state *s, uint32_t c)
{
    unsigned f = uni_flags(c);
    if (f & U_WSPACE) {
        wp_end_word(s);
    } else if ((f & U_PUNCT8) || (c < 128 && is_ascii_punct(c))) {
        wp_end_word(s);
        s->word[0] = c;
        s->word_chars = 1;
        wp_end_word(s);
    } else {
        if (s->word_chars < WORD_KEEP) s->word[s->word_chars] = c;
        s->word_chars++;
    }
}

/* After canonical ordering: lower case, then the pre-tokenizer. */
static void wp_lower(wp_state *s, uint32_t c)
{
    uint32_t low[3];
    int n = uni_lower(c, low);
    for (int k = 0; k < n; k++)
        wp_pretok(s, low[k]);
}

static void wp_flush_pending(wp_state *s)
{
    for (size_t i = 0; i < s->n_pending; i++)
        wp_lower(s, s->pending[i]);
    s->n_pending = 0;
}

/* One decomposed character: canonical ordering of non-starters, Mn dropped (strip_accents). */
static void wp_decomposed(wp_state *s, uint32_t c)
{
    unsigned ccc = uni_ccc(c);
    bool mn = c >= 0x300 && (uni_flags(c) & U_MN8);
    if (ccc == 0) {
        wp_flush_pending(s);
        if (!mn) wp_lower(s, c);
        return;
    }
    if (mn) return; /* dropped: its place among the non-starters does not matter */
    if (s->n_pending == PENDING_CAP) {
        /* a run this long is one word of more than 100 characters: [UNK] in any order */
        wp_flush_pending(s);
    }
    size_t i = s->n_pending++;
    while (i > 0 && s->pending_ccc[i - 1] > ccc) { /* stable insertion by class */
        s->pending[i] = s->pending[i - 1];
        s->pending_ccc[i] = s->pending_ccc[i - 1];
        i--;
    }
    s->pending[i] = c;
    s->pending_ccc[i] = (uint8_t)ccc;
}

static void wp_nfd(wp_state *s, uint32_t c)
{
    uint32_t d[4];
    int n = uni_nfd(c, d);
    for (int k = 0; k < n; k++)
        wp_decomposed(s, d[k]);
}

static bool is_cjk_ideograph(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* One input character: clean_text, then CJK spacing (BertNormalizer). */
static void wp_char(wp_state *s, uint32_t c)
{
    if (c == 0 || c == CP_REPLACEMENT) return;
    unsigned f = uni_flags(c);
    if (c == '\t' || c == '\n' || c == '\r') {
        c = ' ';
    } else if (f & U_DROP8) {
        return;
    } else if (f & U_WSPACE) {
        c = ' ';
    }
    if (is_cjk_ideograph(c)) {
        wp_nfd(s, ' ');
        wp_nfd(s, c);
        wp_nfd(s, ' ');
    } else {
        wp_nfd(s, c);
    }
}

/* Text between special tokens. */
static void wp_segment(wp_state *s, const unsigned char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len && !s->done)
        wp_char(s, utf8_next(text, len, &pos));
    wp_flush_pending(s);
    wp_end_word(s);
}

static vx_status wp_encode(const enc_tok *tok, const unsigned char *text, size_t len,
                           size_t max_len, int32_t *ids, size_t *n_tokens, int *truncated)
{
    wp_state *s = &(wp_state){.tok = tok, .ids = ids, .limit = max_len - 2};
    size_t seg = 0, i = 0;
    while (i < len && !s->done) {
        int match = -1;
        if (text[i] == '[') {
            for (int k = 0; k < tok->n_specials; k++) {
                if (len - i >= tok->specials[k].len &&
                    memcmp(text + i, tok->specials[k].text, tok->specials[k].len) == 0) {
                    match = k;
                    break;
                }
            }
        }
        if (match < 0) {
            i++;
            continue;
        }
        wp_segment(s, text + seg, i - seg);
        wp_emit(s, tok->specials[match].id);
        i += tok->specials[match].len;
        seg = i;
    }
    if (!s->done) wp_segment(s, text + seg, len - seg);
    ids[0] = tok->sp.begin;
    ids[1 + s->count] = tok->sp.end;
    size_t n = s->count + 2;
    for (size_t k = n; k < max_len; k++)
        ids[k] = tok->sp.pad;
    if (n_tokens) *n_tokens = n;
    if (truncated) *truncated = s->done ? 1 : 0;
    return VX_OK;
}

/* ---- CLIP BPE -------------------------------------------------------------------------------- */

static vx_status clip_encode(const enc_tok *tok, const unsigned char *text, size_t len,
                             size_t max_len, int32_t *ids, size_t *n_tokens, int *truncated,
                             vx_err *err);

/* ---- public encode --------------------------------------------------------------------------- */

vx_status enc_tok_encode(const enc_tok *tok, const char *text, size_t text_len, size_t max_len,
                         int32_t *ids, int32_t *mask, size_t *n_tokens, int *truncated, vx_err *err)
{
    if (!tok || !ids || (!text && text_len))
        return vx_fail(err, VX_EINVAL, "tokenize: bad argument");
    if (max_len < 2)
        return vx_fail(err, VX_EINVAL,
                       "tokenize: max_len %zu leaves no room for the two special "
                       "tokens",
                       max_len);
    size_t n = 0;
    vx_status st;
    if (tok->kind == ENC_TOK_WORDPIECE)
        st = wp_encode(tok, (const unsigned char *)text, text_len, max_len, ids, &n, truncated);
    else
        st = clip_encode(tok, (const unsigned char *)text, text_len, max_len, ids, &n, truncated,
                         err);
    if (st != VX_OK) return st;
    if (mask)
        for (size_t k = 0; k < max_len; k++)
            mask[k] = k < n ? 1 : 0;
    if (n_tokens) *n_tokens = n;
    return VX_OK;
}

/* ---- pre_text -------------------------------------------------------------------------------- */

static bool is_pre_text_deleted(uint32_t c)
{
    return c < 128 && c && strchr(",.'!?\"()*#:;~", (int)c) != NULL;
}

/* Python's str.lower() turns U+03A3 into final sigma U+03C2 when a cased letter precedes it and
 * none follows it, case-ignorable characters skipped on both sides (Unicode's Final_Sigma). */
static bool final_sigma(const uint32_t *t, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && (uni_flags(t[j - 1]) & U_CASE_IGN))
        j--;
    if (j == 0 || !(uni_flags(t[j - 1]) & U_CASED)) return false;
    for (j = i + 1; j < n && (uni_flags(t[j]) & U_CASE_IGN); j++) {
    }
    return j == n || !(uni_flags(t[j]) & U_CASED);
}

vx_status enc_tok_pre_text(const char *text, size_t text_len, size_t max_words, char **out,
                           size_t *out_len, vx_err *err)
{
    if (!out || (!text && text_len)) return vx_fail(err, VX_EINVAL, "pre_text: bad argument");
    *out = NULL;
    /* the input's code points, then lower case (which can grow a character to three) */
    if (text_len > (SIZE_MAX / sizeof(uint32_t) - 1) / 4)
        return vx_fail(err, VX_ELIMIT, "pre_text: text too long");
    uint32_t *orig = vx_malloc((4 * text_len + 1) * sizeof(uint32_t), err);
    if (!orig) return err ? err->status : VX_ENOMEM;
    uint32_t *cp = orig + text_len;
    size_t n_orig = 0, pos = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (pos < text_len)
        orig[n_orig++] = utf8_next(s, text_len, &pos);
    /* 1. lower case, delete , . ' ! ? " ( ) * # : ; ~, '-' and '/' -> ' ' */
    size_t n = 0;
    for (size_t i = 0; i < n_orig; i++) {
        uint32_t low[3];
        int k = orig[i] == 0x3A3 ? (low[0] = final_sigma(orig, n_orig, i) ? 0x3C2 : 0x3C3, 1)
                                 : uni_lower(orig[i], low);
        for (int j = 0; j < k; j++) {
            uint32_t c = low[j];
            if (is_pre_text_deleted(c)) continue;
            cp[n++] = (c == '-' || c == '/') ? ' ' : c;
        }
    }
    /* 2. "<person>" -> "person", left to right without overlap (str.replace) */
    static const char person[] = "<person>";
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 8) {
            size_t k = 0;
            while (k < 8 && cp[i + k] == (uint32_t)person[k])
                k++;
            if (k == 8) {
                for (k = 1; k < 7; k++)
                    cp[m++] = (uint32_t)person[k];
                i += 8;
                continue;
            }
        }
        cp[m++] = cp[i++];
    }
    n = m;
    /* 3. runs of two or more whitespace characters -> one space (re.sub(r"\s{2,}", " ")) */
    m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && (uni_flags(cp[j]) & U_PYSPACE))
            j++;
        if (j - i >= 2) {
            cp[m++] = ' ';
            i = j;
        } else {
            cp[m++] = cp[i++];
        }
    }
    n = m;
    /* 4. rstrip('\n'), then strip(' ') */
    while (n > 0 && cp[n - 1] == '\n')
        n--;
    while (n > 0 && cp[n - 1] == ' ')
        n--;
    size_t first = 0;
    while (first < n && cp[first] == ' ')
        first++;
    /* 5. the first max_words words of split(' ') */
    if (max_words > 0) {
        size_t words = 1, cut = n;
        for (size_t i = first; i < n; i++) {
            if (cp[i] == ' ') {
                if (words == max_words) {
                    cut = i;
                    break;
                }
                words++;
            }
        }
        n = cut;
    }
    char *res = vx_malloc(4 * (n - first) + 1, err);
    if (!res) {
        free(orig);
        return err ? err->status : VX_ENOMEM;
    }
    size_t nb = 0;
    for (size_t i = first; i < n; i++)
        nb += (size_t)utf8_put(cp[i], res + nb);
    res[nb] = '\0';
    free(orig);
    *out = res;
    if (out_len) *out_len = nb;
    return VX_OK;
}

/* ---- CLIP BPE: loading ----------------------------------------------------------------------- */

/* open_clip uses the first 49152 - 256 - 2 merges of bpe_simple_vocab_16e6.txt. */
#define CLIP_MAX_MERGES (49152 - 256 - 2)

/* GPT-2's bytes_to_unicode order: printable bytes keep their code point, the others map to
 * 256, 257, ... in byte order. Writes each vocabulary slot's byte and the byte's character. */
static void clip_byte_chars(uint8_t slot_byte[256], uint32_t byte_char[256])
{
    int slot = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
            slot_byte[slot++] = (uint8_t)b;
            byte_char[b] = (uint32_t)b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
            slot_byte[slot++] = (uint8_t)b;
            byte_char[b] = 256u + (uint32_t)extra++;
        }
}

static merge_slot *merge_find(const enc_tok *tok, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint64_t h = key; /* splitmix64's finaliser: both ids reach the low bits */
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    size_t i = (size_t)h & tok->merge_mask;
    for (;;) {
        merge_slot *m = &tok->merges[i];
        if (m->key == key || m->key == UINT64_MAX) return m;
        i = (i + 1) & tok->merge_mask;
    }
}

vx_status enc_tok_clip_from_memory(const char *text, size_t len, enc_tok **out, vx_err *err)
{
    if (!out || (!text && len)) return vx_fail(err, VX_EINVAL, "clip merges: bad argument");
    *out = NULL;
    if (len > UINT32_MAX / 4) return vx_fail(err, VX_ELIMIT, "clip merges: file too large");
    /* the merges used: lines 1 .. CLIP_MAX_MERGES (line 0 is the "#version" header) */
    size_t *line_start = vx_calloc_array(2 * (CLIP_MAX_MERGES + 1), sizeof(size_t), err);
    if (!line_start) return err ? err->status : VX_ENOMEM;
    size_t *line_len = line_start + CLIP_MAX_MERGES + 1;
    size_t n_lines = 0, pos = 0, longest = 0;
    while (pos < len && n_lines < CLIP_MAX_MERGES + 1) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_start[n_lines] = pos;
        line_len[n_lines] = end - pos;
        if (end - pos > longest) longest = end - pos;
        n_lines++;
        pos = end + 1;
    }
    /* a final empty line (the file's last '\n') is not a merge */
    while (n_lines > 1 && line_len[n_lines - 1] == 0)
        n_lines--;
    if (n_lines < 1) {
        free(line_start);
        return vx_fail(err, VX_EFORMAT, "clip merges: empty file");
    }
    size_t n_merges = n_lines - 1;

    enc_tok *tok = vx_calloc_array(1, sizeof(*tok), err);
    char *joined_buf = vx_malloc(longest + 1, err);
    if (!tok || !joined_buf) {
        free(tok);
        free(joined_buf);
        free(line_start);
        return err ? err->status : VX_ENOMEM;
    }
    tok->kind = ENC_TOK_CLIP_BPE;
    size_t n_ids = 512 + n_merges + 2;
    vx_status st = vocab_alloc(tok, n_ids, 512 * 7 + len + n_merges + 64, err);
    size_t merge_slots = 64;
    while (merge_slots < n_merges * 2)
        merge_slots *= 2;
    if (st == VX_OK) {
        tok->merges = vx_calloc_array(merge_slots, sizeof(merge_slot), err);
        if (!tok->merges) st = err ? err->status : VX_ENOMEM;
    }
    if (st != VX_OK) {
        enc_tok_free(tok);
        free(joined_buf);
        free(line_start);
        return st;
    }
    tok->merge_mask = merge_slots - 1;
    for (size_t i = 0; i < merge_slots; i++)
        tok->merges[i].key = UINT64_MAX;

    uint8_t slot_byte[256];
    uint32_t byte_char[256];
    clip_byte_chars(slot_byte, byte_char);
    char piece[16];
    for (int i = 0; i < 256; i++) {
        int n = utf8_put(byte_char[slot_byte[i]], piece);
        vocab_add(tok, piece, (size_t)n, i);
        memcpy(piece + n, "</w>", 4);
        vocab_add(tok, piece, (size_t)n + 4, 256 + i);
    }
    /* merged pieces, in rank order: "left right" -> "leftright" */
    for (size_t k = 0; k < n_merges; k++) {
        const char *l = text + line_start[k + 1];
        size_t ll = line_len[k + 1];
        const char *sp = memchr(l, ' ', ll);
        if (!sp || sp == l || sp == l + ll - 1 || memchr(sp + 1, ' ', (size_t)(l + ll - sp - 1))) {
            enc_tok_free(tok);
            free(joined_buf);
            free(line_start);
            return vx_fail(err, VX_EFORMAT, "clip merges: line %zu is not \"left right\"", k + 2);
        }
        size_t a = (size_t)(sp - l), b = ll - a - 1;
        memcpy(joined_buf, l, a);
        memcpy(joined_buf + a, sp + 1, b);
        vocab_add(tok, joined_buf, a + b, (int32_t)(512 + k));
    }
    free(joined_buf);
    int32_t sot = (int32_t)(512 + n_merges), eot = sot + 1;
    vocab_add(tok, "<start_of_text>", 15, sot);
    vocab_add(tok, "<end_of_text>", 13, eot);
    /* merge table: (left id, right id) -> rank and the merged piece's id (the last entry of
     * that text, as open_clip's encoder dict keeps) */
    for (size_t k = 0; k < n_merges; k++) {
        const char *l = text + line_start[k + 1];
        size_t ll = line_len[k + 1];
        const char *sp = memchr(l, ' ', ll);
        size_t a = (size_t)(sp - l), b = ll - a - 1;
        int32_t left = enc_tok_piece_id(tok, l, a), right = enc_tok_piece_id(tok, sp + 1, b);
        const char *joined = tok->arena + tok->id_off[512 + k];
        int32_t merged = enc_tok_piece_id(tok, joined, a + b);
        if (left < 0 || right < 0) continue; /* a symbol that never exists: never applies */
        merge_slot *m = merge_find(tok, left, right);
        m->key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
        m->rank = (int32_t)k; /* a pair listed twice keeps its last rank, as open_clip's dict */
        m->merged_id = merged;
    }
    for (int b = 0; b < 256; b++) {
        int n = utf8_put(byte_char[b], piece);
        tok->byte_id[b] = enc_tok_piece_id(tok, piece, (size_t)n);
        memcpy(piece + n, "</w>", 4);
        tok->byte_end_id[b] = enc_tok_piece_id(tok, piece, (size_t)n + 4);
    }
    free(line_start);
    tok->sp = (enc_tok_specials){.begin = sot, .end = eot, .pad = 0, .unk = -1};
    *out = tok;
    return VX_OK;
}

vx_status enc_tok_clip_load(const char *merges_path, enc_tok **out, vx_err *err)
{
    char *text = NULL;
    size_t len = 0;
    if (out) *out = NULL;
    vx_status st = load_file(merges_path, "clip merges", &text, &len, err);
    if (st != VX_OK) return st;
    st = enc_tok_clip_from_memory(text, len, out, err);
    free(text);
    if (st != VX_OK) vx_err_prefix(err, "%s", merges_path);
    return st;
}

/* ---- CLIP BPE: text cleaning ----------------------------------------------------------------- */

static bool is_py_space(uint32_t c)
{
    return (uni_flags(c) & U_PYSPACE) != 0;
}

/* Python's html.unescape on t[0..n) into out; returns the new length (never longer). */
static size_t html_unescape(const uint32_t *t, size_t n, uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (t[i] != '&' || i + 1 >= n) {
            out[m++] = t[i++];
            continue;
        }
        size_t j = i + 1;
        if (t[j] == '#') {
            /* &#[0-9]+;? or &#[xX][0-9a-fA-F]+;? */
            bool hex = j + 1 < n && (t[j + 1] == 'x' || t[j + 1] == 'X');
            size_t d = j + 1 + (hex ? 1 : 0), k = d;
            uint64_t num = 0;
            bool big = false;
            for (; k < n; k++) {
                uint32_t c = t[k];
                int v = (c >= '0' && c <= '9')          ? (int)(c - '0')
                        : (hex && c >= 'a' && c <= 'f') ? (int)(c - 'a' + 10)
                        : (hex && c >= 'A' && c <= 'F') ? (int)(c - 'A' + 10)
                                                        : -1;
                if (v < 0) break;
                num = num * (hex ? 16 : 10) + (uint64_t)v;
                if (num > 0x10FFFF) big = true, num = 0x110000;
            }
            if (k == d) { /* no digits: not a reference */
                out[m++] = t[i++];
                continue;
            }
            if (k < n && t[k] == ';') k++;
            i = k;
            long r = -1;
            for (uint32_t q = 0; q < enc_uni_charref_repl_count; q++)
                if ((enc_uni_charref_repl[q] >> 32) == num)
                    r = (long)(enc_uni_charref_repl[q] & 0xFFFFFFFF);
            if (r >= 0) {
                out[m++] = (uint32_t)r;
            } else if (big || (num >= 0xD800 && num <= 0xDFFF)) {
                out[m++] = CP_REPLACEMENT;
            } else if (find_key(enc_uni_charref_drop, enc_uni_charref_drop_count, (uint32_t)num) <
                       0) {
                out[m++] = (uint32_t)num;
            }
            continue;
        }
        /* &[^\t\n\f <&#;]{1,32};? : the whole name, else its longest known prefix (>= 2) */
        size_t k = j;
        while (k < n && k - j < 32 && t[k] != '\t' && t[k] != '\n' && t[k] != '\f' && t[k] != ' ' &&
               t[k] != '<' && t[k] != '&' && t[k] != '#' && t[k] != ';')
            k++;
        if (k == j) {
            out[m++] = t[i++];
            continue;
        }
        size_t name_end = k < n && t[k] == ';' ? k + 1 : k;
        char name[33 * 4 + 1];
        size_t name_bytes[34]; /* bytes of the first x characters */
        size_t nb = 0;
        name_bytes[0] = 0;
        for (size_t q = j; q < name_end; q++) {
            nb += (size_t)utf8_put(t[q], name + nb);
            name_bytes[q - j + 1] = nb;
        }
        size_t chars = name_end - j;
        long found = -1;
        size_t used = 0;
        for (size_t x = chars; x >= 2 && found < 0; x--) {
            if (x == chars || x < chars) {
                size_t lo = 0, hi = enc_uni_entity_count, want = name_bytes[x];
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    const char *e = enc_uni_entity_names[mid];
                    size_t el = strlen(e);
                    int c = memcmp(e, name, el < want ? el : want);
                    if (c == 0) c = el < want ? -1 : el > want ? 1 : 0;
                    if (c < 0)
                        lo = mid + 1;
                    else if (c > 0)
                        hi = mid;
                    else {
                        found = (long)mid;
                        used = x;
                        break;
                    }
                }
            }
            if (x == 2) break;
        }
        if (found < 0) { /* '&' + name kept */
            out[m++] = t[i++];
            continue;
        }
        const unsigned char *val = (const unsigned char *)enc_uni_entity_texts[found];
        size_t vl = strlen((const char *)val), p = 0;
        while (p < vl)
            out[m++] = utf8_next(val, vl, &p);
        i = j + used; /* the rest of the name stays text */
    }
    return m;
}

/* open_clip's _clean_lower: basic_clean (html.unescape twice, strip), whitespace_clean
 * (\s+ -> ' ', strip), lower(). a: the text's code points (n); b: scratch of n. Result in a. */
static size_t clip_clean(uint32_t *a, size_t n, uint32_t *b)
{
    n = html_unescape(a, n, b);
    n = html_unescape(b, n, a);
    size_t m = 0;
    for (size_t i = 0; i < n;) { /* \s+ -> ' ' (the strips follow) */
        if (is_py_space(a[i])) {
            while (i < n && is_py_space(a[i]))
                i++;
            b[m++] = ' ';
        } else {
            b[m++] = a[i++];
        }
    }
    size_t first = 0;
    while (first < m && b[first] == ' ')
        first++;
    while (m > first && b[m - 1] == ' ')
        m--;
    /* lower(): lengths may grow (U+0130 -> 2), so go through a in place from b */
    size_t out = 0;
    for (size_t i = first; i < m; i++) {
        uint32_t low[3];
        int k = b[i] == 0x3A3
                    ? (low[0] = final_sigma(b + first, m - first, i - first) ? 0x3C2 : 0x3C3, 1)
                    : uni_lower(b[i], low);
        for (int q = 0; q < k; q++)
            a[out++] = low[q];
    }
    return out;
}

/* ---- CLIP BPE: splitting and merging --------------------------------------------------------- */

/* \p{L} as open_clip's IGNORECASE pattern matches it: a case variant counts (regex module and
 * Rust's regex agree: U+0345 COMBINING GREEK YPOGEGRAMMENI, whose upper case is a letter). */
static bool is_letter(uint32_t c)
{
    return (uni_flags(c) & U_LETTER_I) != 0;
}
static bool is_number(uint32_t c)
{
    return (uni_flags(c) & U_NUMBER) != 0;
}

/* Length of the match of open_clip's pattern at t[i] (0: none), leftmost-first alternation:
 *   <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * under IGNORECASE (the text is lower case already; U+017F LONG S folds to 's'). *special is
 * set to the id of a special token matched. */
static size_t clip_match(const enc_tok *tok, const uint32_t *t, size_t n, size_t i,
                         int32_t *special)
{
    static const char *const names[2] = {"<start_of_text>", "<end_of_text>"};
    *special = -1;
    if (t[i] == '<') {
        for (int k = 0; k < 2; k++) {
            size_t l = strlen(names[k]), q = 0;
            while (q < l && i + q < n && t[i + q] == (uint32_t)(unsigned char)names[k][q])
                q++;
            if (q == l) {
                *special = k == 0 ? tok->sp.begin : tok->sp.end;
                return l;
            }
        }
    }
    if (t[i] == '\'' && i + 1 < n) {
        uint32_t c1 = t[i + 1] == 0x17F ? 's' : t[i + 1];
        uint32_t c2 = i + 2 < n ? (t[i + 2] == 0x17F ? 's' : t[i + 2]) : 0;
        if (c1 == 's' || c1 == 't') return 2;
        if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return 3;
        if (c1 == 'm') return 2;
        if (c1 == 'l' && c2 == 'l') return 3;
        if (c1 == 'd') return 2;
    }
    size_t j = i;
    if (is_letter(t[i])) {
        while (j < n && is_letter(t[j]))
            j++;
        return j - i;
    }
    if (is_number(t[i])) return 1;
    while (j < n && !is_py_space(t[j]) && !is_letter(t[j]) && !is_number(t[j]))
        j++;
    return j - i;
}

typedef struct bpe_symbol {
    int32_t id;
    int32_t prev, next; /* -1: none */
    bool gone;
} bpe_symbol;

typedef struct bpe_merge {
    int32_t rank;
    int32_t pos;
    int32_t merged_id;
} bpe_merge;

static bool merge_before(const bpe_merge *a, const bpe_merge *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_merge *h, size_t *n, bpe_merge m)
{
    size_t i = (*n)++;
    while (i > 0 && merge_before(&m, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = m;
}

static bpe_merge heap_pop(bpe_merge *h, size_t *n)
{
    bpe_merge top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_before(&h[c + 1], &h[c])) c++;
        if (!merge_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Per-call BPE memory: on the stack for words up to 128 bytes (a query's words), else grown on
 * the heap once per longer word size. */
#define CLIP_SMALL_WORD 128
typedef struct clip_scratch {
    bpe_symbol *sym;
    bpe_merge *heap;
    size_t cap; /* symbols; the heap holds 3 * cap */
    bool on_heap;
    bpe_symbol small_sym[CLIP_SMALL_WORD];
    bpe_merge small_heap[3 * CLIP_SMALL_WORD];
} clip_scratch;

static void push_pair(const enc_tok *tok, const bpe_symbol *sym, int32_t pos, bpe_merge *heap,
                      size_t *n_heap)
{
    int32_t next = sym[pos].next;
    if (next < 0) return;
    const merge_slot *m = merge_find(tok, sym[pos].id, sym[next].id);
    if (m->key == UINT64_MAX) return;
    heap_push(heap, n_heap, (bpe_merge){.rank = m->rank, .pos = pos, .merged_id = m->merged_id});
}

/* BPE of one pre-token's bytes: the lowest-ranked adjacent pair merges first, ties to the left
 * (open_clip's loop; HF's Word::merge_all). Emits ids through wp-style callbacks. */
static vx_status clip_bpe(const enc_tok *tok, const unsigned char *bytes, size_t nb,
                          clip_scratch *sc, wp_state *out, vx_err *err)
{
    if (nb > sc->cap) {
        size_t cap = sc->cap;
        while (cap < nb)
            cap *= 2;
        if (!sc->on_heap) sc->sym = NULL, sc->heap = NULL;
        sc->on_heap = true;
        bpe_symbol *sym = realloc(sc->sym, cap * sizeof(*sym));
        if (sym) sc->sym = sym;
        bpe_merge *heap = sym ? realloc(sc->heap, 3 * cap * sizeof(*heap)) : NULL;
        if (heap) sc->heap = heap;
        if (!sym || !heap)
            return vx_fail(err, VX_ENOMEM, "clip: out of memory for a %zu-byte word", nb);
        sc->cap = cap;
    }
    bpe_symbol *sym = sc->sym;
    for (size_t i = 0; i < nb; i++) {
        sym[i] =
            (bpe_symbol){.id = i + 1 < nb ? tok->byte_id[bytes[i]] : tok->byte_end_id[bytes[i]],
                         .prev = (int32_t)i - 1,
                         .next = i + 1 < nb ? (int32_t)i + 1 : -1};
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < nb; i++)
        push_pair(tok, sym, (int32_t)i, sc->heap, &n_heap);
    while (n_heap > 0) {
        bpe_merge top = heap_pop(sc->heap, &n_heap);
        bpe_symbol *s = &sym[top.pos];
        if (s->gone || s->next < 0) continue;
        const merge_slot *m = merge_find(tok, s->id, sym[s->next].id);
        if (m->key == UINT64_MAX || m->merged_id != top.merged_id || m->rank != top.rank)
            continue; /* stale: the pair changed since it was queued */
        bpe_symbol *right = &sym[s->next];
        s->id = top.merged_id;
        right->gone = true;
        s->next = right->next;
        if (right->next >= 0) sym[right->next].prev = top.pos;
        if (s->prev >= 0) push_pair(tok, sym, s->prev, sc->heap, &n_heap);
        push_pair(tok, sym, top.pos, sc->heap, &n_heap);
    }
    for (int32_t i = 0; i >= 0 && !out->done; i = sym[i].next)
        wp_emit(out, sym[i].id);
    return VX_OK;
}

static vx_status clip_encode(const enc_tok *tok, const unsigned char *text, size_t len,
                             size_t max_len, int32_t *ids, size_t *n_tokens, int *truncated,
                             vx_err *err)
{
    wp_state *out = &(wp_state){.tok = tok, .ids = ids, .limit = max_len - 2};
    clip_scratch sc;
    sc.sym = sc.small_sym;
    sc.heap = sc.small_heap;
    sc.cap = CLIP_SMALL_WORD;
    sc.on_heap = false;
    vx_status st = VX_OK;
    /* a: the text's code points with room for lower case to double them; b: scratch. On the
     * stack for a query-sized text. */
    if (len > SIZE_MAX / (4 * sizeof(uint32_t)) - 1)
        return vx_fail(err, VX_ELIMIT, "clip: text too long");
    uint32_t small_text[4 * 256 + 1];
    uint32_t *a = len <= 256 ? small_text : vx_malloc((4 * len + 1) * sizeof(uint32_t), err);
    if (!a) return err ? err->status : VX_ENOMEM;
    uint32_t *b = a + 3 * len;
    size_t n = 0, pos = 0;
    while (pos < len)
        a[n++] = utf8_next(text, len, &pos);
    n = clip_clean(a, n, b);
    unsigned char *bytes = (unsigned char *)b; /* reused: a pre-token's UTF-8 (<= 4 * n) */
    size_t bytes_cap = len * sizeof(uint32_t);
    for (size_t i = 0; i < n && !out->done && st == VX_OK;) {
        int32_t special;
        size_t l = clip_match(tok, a, n, i, &special);
        if (l == 0) { /* whitespace: no alternative matches here */
            i++;
            continue;
        }
        if (special >= 0) {
            wp_emit(out, special);
        } else {
            size_t nb = 0;
            for (size_t q = i; q < i + l; q++) {
                char u[4];
                int k = utf8_put(a[q], u);
                if (nb + (size_t)k > bytes_cap) break; /* cannot happen: cleaning never grows */
                memcpy(bytes + nb, u, (size_t)k);
                nb += (size_t)k;
            }
            st = clip_bpe(tok, bytes, nb, &sc, out, err);
        }
        i += l;
    }
    if (sc.on_heap) {
        free(sc.sym);
        free(sc.heap);
    }
    if (a != small_text) free(a);
    if (st != VX_OK) return st;
    /* open_clip: [sot] + tokens + [eot], cut to max_len with eot in the last slot */
    ids[0] = tok->sp.begin;
    ids[1 + out->count] = tok->sp.end;
    size_t total = out->count + 2;
    for (size_t k = total; k < max_len; k++)
        ids[k] = tok->sp.pad;
    if (n_tokens) *n_tokens = total;
    if (truncated) *truncated = out->done ? 1 : 0;
    return VX_OK;
}
