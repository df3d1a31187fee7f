/* indexer/ private header: the text modalities of a video — subtitles (streams and sidecar
 * files), speech recognition (pocketsphinx) and on-screen text (tesseract) — and the cleaning
 * every text gets before it is stored. Not part of the public API (idx.h). */
#ifndef IDX_TEXT_H
#define IDX_TEXT_H

#include "media.h"
#include "vx.h"

#include <stddef.h>
#include <stdint.h>

/* Longest text kept from one cue, OCR frame or title; longest body of one segment's text. */
#define IDX_TEXT_PIECE_MAX 4096
#define IDX_TEXT_BODY_MAX (32 * 1024)

/* Cleans untrusted text into at most max_bytes of valid UTF-8 (cut at a character boundary):
 * input that is not valid UTF-8 is read as Latin-1; <markup> and {\ass} tags are dropped;
 * control characters become spaces; runs of white space become one space; leading and
 * trailing space trimmed. Returns a malloc'd string (possibly empty), NULL when out of memory. */
char *idx__text_clean(const char *text, size_t len, size_t max_bytes);

/* Subtitle file bytes FFmpeg's decoders can read: FFmpeg refuses text that is not UTF-8 (or
 * UTF-16 with a BOM, which it converts), so bytes that are neither are read as Latin-1 (the
 * usual legacy encoding of .srt files) and converted. *out is NULL when the bytes are fine as
 * they are, else a malloc'd converted copy of *out_len bytes. */
vx_status idx__subtitle_bytes_utf8(const char *bytes, size_t len, char **out, size_t *out_len,
                                   vx_err *err);

/* Subtitle files beside a local video: "<stem>.srt", "<stem>.<lang>.vtt", … (.srt .vtt .ass
 * .ssa, any case), sorted by name. *out: malloc'd array of malloc'd paths (idx__strings_free). */
vx_status idx__sidecar_subtitles(const char *video_path, char ***out, size_t *out_count,
                                 vx_err *err);
void idx__strings_free(char **strings, size_t count);

/* ---- speech (pocketsphinx) ------------------------------------------------------------- */

typedef struct idx_word {
    char *text;
    int64_t start_ms, end_ms; /* on the video's timeline */
    float confidence;         /* posterior probability, 0..1 */
} idx_word;

typedef struct idx_words {
    idx_word *items;
    size_t count, cap;
} idx_words;
void idx__words_free(idx_words *w);

typedef struct idx_asr_stats {
    int64_t audio_ms;  /* audio examined */
    int64_t speech_ms; /* audio the energy gate passed to the recogniser */
    int64_t words;
    int64_t ns; /* wall time in ASR (gate + decoding) */
} idx_asr_stats;

/* The default acoustic model, language model and dictionary folder (Debian's
 * pocketsphinx-en-us). */
#define IDX_ASR_DEFAULT_MODEL "/usr/share/pocketsphinx/model/en-us"

/* NULL when ASR can run with model_dir (NULL: the default), else why not (static text). */
const char *idx__asr_unavailable(const char *model_dir);

typedef struct idx_asr idx_asr;
vx_status idx__asr_create(const char *model_dir, idx_asr **out, vx_err *err);
void idx__asr_free(idx_asr *asr);
/* Recognises the speech of reader's best audio stream over [0, duration_ms), reading it in
 * chunks; silence (an energy gate on 10 ms frames) is skipped. Appends words to out. */
vx_status idx__asr_video(idx_asr *asr, media_reader *reader, int64_t duration_ms, idx_words *out,
                         idx_asr_stats *stats, vx_err *err);

/* ---- on-screen text (tesseract) -------------------------------------------------------- */

/* NULL when OCR can run, else why not (static text). Tries to load the English data once. */
const char *idx__ocr_unavailable(void);

typedef struct idx_ocr idx_ocr;
/* min_confidence: words below it (tesseract's 0..100) are dropped. */
vx_status idx__ocr_create(int min_confidence, idx_ocr **out, vx_err *err);
void idx__ocr_free(idx_ocr *ocr);
/* rgb: [height, width, 3] packed. Sparse-text page segmentation (DECISIONS.md §6). *out: the
 * kept words separated by spaces (malloc'd, cleaned; "" when none); *out_words their count. */
vx_status idx__ocr_frame(idx_ocr *ocr, const uint8_t *rgb, int width_px, int height_px, char **out,
                         int *out_words, vx_err *err);

#endif
