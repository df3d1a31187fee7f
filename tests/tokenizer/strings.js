// The hard test strings for the tokenizers, as byte buffers (so invalid UTF-8 can be among them).
// Deterministic: the generated ones come from a fixed-seed PRNG.
'use strict';

const B = (s) => Buffer.from(s, 'utf8');
const X = (hex) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const cat = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : B(p))));

// xorshift32
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

function handWritten() {
  const s = [
    '', ' ', '   \t\n  ', 'a', 'A', 'a dog runs', 'A man is playing a guitar on stage.',
    'a woman slices a tomato in the kitchen', 'Two kids are playing soccer in the park!',
    'THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG', 'unaffable', 'playing', 'hello, world!',
    "don't can't I'm y'all it's we've they'd you'll", 'state-of-the-art video-text retrieval',
    'Café Déjà vu naïve résumé Ångström Ærøskøbing Ünïcödé', 'e\u0301 a\u0328\u0301 o\u0308\u0304',
    'Tiếng Việt có dấu', 'Σίσυφος ΣΟΦΙΑ ὀδυσσεύς', 'Привет, мир! Ёлка ёж', 'İstanbul ıI İi',
    'Straße GROẞ ß', 'ﬁne ﬂow ﬀ', 'ＡＢＣ１２３！ｶﾀｶﾅ', 'مرحبا بالعالم', 'שָׁלוֹם עוֹלָם',
    'नमस्ते दुनिया', 'สวัสดีครับ', '안녕하세요 세계', '한국어 텍스트입니다', 'こんにちは世界 カタカナ',
    '我爱北京天安门', '他說：「你好！」', '𠀀𠀁𪜀', '豈 更 車 賈', '日本語のテキストと English mixed',
    'Hello世界123abc', '😀 👍🏽 👨‍👩‍👧‍👦 🇺🇸 ❤️ ☃', '∑∫√∞ ≤≥ ×÷ ±', '$100 €20 £5 ¥1000 ₹50',
    '©®™° §¶ †‡', 'a\u200bb\u200cc\u200dd\ufeffe', 'co\u00adop', '\u202ehello\u202c', '\u2066x\u2069',
    '\x01\x02\x07\x1b[31m red \x1b[0m', 'a\tb\nc\r\nd', 'a\x0bb\x0cc', 'a\u0085b', 'a\u00a0b',
    'a\u3000b', 'a\u2028b\u2029c', 'a\u180eb', 'a\u2000b\u200ac', 'a\u1680b', 'a\u202fb\u205fc',
    'a\x1cb\x1dc\x1ed\x1fe', 'a\u0000b', 'a\ufffdb', '\ue000x\uf8ff', '\uffff\ufffe', '\u0378\u0379',
    '\udb40\udc01 tag', '\u1885\u1886 \ua9bd \u{111c9} \u1734 \u166d', 'a\u{1D16D}\u{1D165}b',
    'x\u0301\u0316y', 'q\u0316\u0301\u0345z', '\u0344\u0f73\u0f75', '\u1f82 \u1fb3 \u01c4 \u01c5',
    '!!!???...', '...', '—–-', '«»„“”‘’', '¿¡', '@#$%^&*()', '[]{}<>|\\/~`', '"quoted"',
    '3.14159 1,000,000 2nd 21st 1e10 -5 0x1F 007', '12345678901234567890',
    'https://www.example.com/path/to/video.mp4?query=1&b=2#frag', 'mailto:someone@example.org',
    '#video @user_name #InternVideo2', 'printf("%d\\n", x);', 'C:\\Users\\video\\clip_01.avi',
    '[CLS] hello [SEP] world [MASK]', '[cls] lower [sep] case', '[SEP[SEP]]', '[UNK][PAD]',
    '[MASK]', 'x[MASK]y', '##ing ##', 'hello\u2603world', 'ᐊᐃᐅ ᐁ', 'ǅ ǈ ǋ', 'ʼn ǰ ΐ',
    'ꙮ ꙭ', 'ᏣᎳᎩ', 'ⓐⓑⓒ ⒜', 'Ⅻ ⅻ', '½ ¾ ⅓', '²³¹', 'µ Å K Ω', 'ﬆ ﬅ', 'ǂǃ', '\u0640\u0640',
    '<person> walks a dog', 'a man/woman in a red-shirt', '  leading and trailing  ',
  ];
  const out = s.map(B);
  // invalid UTF-8
  const bad = ['ff', '616263ff646566', 'c328', 'e282', 'e28228', 'eda080', 'edbfbf', 'f4908080',
    'c0af', 'e080af', 'f08080af', 'f09f98', 'f09f9880', '8080', 'fe', 'fffe', 'c3', 'e0a0',
    '61e29f', 'f09f988061', '41c2', 'ef bf bd 41', '00 41 00', 'f8 88 80 80 80', 'c2 a0 41'];
  for (const h of bad) out.push(X(h));
  out.push(cat('caf', X('c3'), 'e au lait'), cat('ab', X('ed a0 80'), 'cd'));
  // word lengths around the 100-character limit
  for (const n of [99, 100, 101, 150]) out.push(B('a'.repeat(n)));
  out.push(B('é'.repeat(100)), B('é'.repeat(101)), B('e\u0301'.repeat(100)),
    B('e\u0301'.repeat(101)), B('x'.repeat(100) + '!' + 'y'.repeat(101)));
  out.push(B('supercalifragilisticexpialidocious'.repeat(3)));
  out.push(B('unbelievably ' + 'ab'.repeat(50) + ' end'));
  return out;
}

function generated(count, seed) {
  const r = prng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const words = ['the', 'a', 'man', 'woman', 'is', 'playing', 'guitar', 'video', 'dog', 'cat',
    'running', 'jumps', 'over', 'kitchen', 'cooking', 'unbelievable', 'retrieval', 'zebra',
    'xylophone', 'quizzical', 'Schwarzenegger', 'naïve', 'café', 'über', 'señor', 'jalapeño',
    'smörgåsbord', 'Nguyễn', 'Ελλάδα', 'Москва', '東京', '北京', '서울', 'かわいい', 'ไทย', 'हिंदी',
    'عربي', 'עברית', '😀', '👍🏽', '🎬', '2024', '3.5', '1,000', 'ok!', '"hi"', '(x)', 'a-b'];
  const cps = [0x20, 0x9, 0xa, 0xd, 0xa0, 0x3000, 0x2003, 0x85, 0x0, 0x1, 0x7f, 0xad, 0x200b,
    0x200d, 0xfeff, 0xfffd, 0x301, 0x308, 0x327, 0x345, 0x5b0, 0x64b, 0x93f, 0x94d, 0xe31,
    0x1d165, 0x1d16d, 0x2c, 0x2e, 0x21, 0x3f, 0x2d, 0x27, 0x22, 0x5b, 0x5d, 0xbf, 0x2014, 0x201c,
    0x3001, 0x3002, 0xff01, 0x4e00, 0x9fa5, 0xf900, 0x20000, 0xac00, 0xd7a3, 0x1100, 0x3042,
    0x30a2, 0xff71, 0xe9, 0xc5, 0x130, 0x131, 0x3a3, 0x3c2, 0x1e9e, 0xdf, 0xfb01, 0x1f600,
    0x1f3fd, 0x2603, 0xe000, 0x378, 0x10ffff, 0x41, 0x5a, 0x61, 0x7a, 0x30, 0x39, 0x24, 0x2b];
  const badBytes = ['ff', 'c3', 'e282', 'eda080', 'f09f98', '80', 'c0af'];
  const out = [];
  for (let i = 0; i < count; i++) {
    const parts = [];
    const n = Math.floor(r() * 40);
    for (let k = 0; k < n; k++) {
      const u = r();
      if (u < 0.45) parts.push(B(pick(words) + (r() < 0.7 ? ' ' : '')));
      else if (u < 0.9) parts.push(B(String.fromCodePoint(pick(cps))));
      else if (u < 0.95) parts.push(X(pick(badBytes)));
      else parts.push(B(String.fromCodePoint(Math.floor(r() * 0x30000))
        .replace(/[\ud800-\udfff]/g, 'x')));
    }
    out.push(Buffer.concat(parts));
  }
  return out;
}

// Every code point (surrogates excepted) once, per_string (200) to a string, separated by spaces.
function sweep(perString = 200) {
  const out = [];
  let cur = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    cur.push(String.fromCodePoint(cp));
    if (cur.length === perString) {
      out.push(B(cur.join(' ')));
      cur = [];
    }
  }
  if (cur.length) out.push(B(cur.join(' ')));
  return out;
}

function long() {
  return [
    B('a dog runs in the park '.repeat(4400)), // ~100k characters
    B('x'.repeat(100000)),
    B('我'.repeat(100000 / 3)),
    B('é'.repeat(50000)),
    B('\u0301'.repeat(30000) + ' ok'),
    B('!'.repeat(100000)),
    B(' '.repeat(100000) + 'end'),
  ];
}

module.exports = { handWritten, generated, sweep, long, prng };
