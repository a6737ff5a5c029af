// Regenerates tokenizer_golden.json with the reference HuggingFace tokenizer
// (Rust "tokenizers" via its Node binding) from all-MiniLM-L6-v2's tokenizer.json:
//
//   npm install tokenizers@0.13.3 tokenizers-linux-x64-gnu@0.13.4-rc2
//   NODE_PATH=node_modules node gen_tokenizer_golden.js $OWNYOU_SHARED_DIR/models/all-MiniLM-L6-v2/tokenizer.json > tokenizer_golden.json
//
// Padding and truncation are disabled so the ids are exactly the tokenizer's
// normalization + pre-tokenization + WordPiece + [CLS]/[SEP] template.
const {Tokenizer} = require("tokenizers");
const cases = [
  "Hello, world!",
  "",
  "   ",
  "Héllo wörld — café naïve résumé Ångström",
  "ÉCOLE Façade SÃO PAULO",
  "non\u00a0breaking\u00a0space and\u2003em space\tand\ttabs\nnew\r\nlines",
  "zero\u200bwidth\u200djoiner\ufeffbom\u0000nul\ufffdreplacement",
  "東京タワーに行きました。北京欢迎你！",
  "한국어 텍스트와 日本語 mixed with English",
  "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
  "Visit https://www.example.com/path/to/page?query=1&lang=en#frag now",
  "mail me at john.doe+newsletter@sub.example.co.uk",
  "supercalifragilisticexpialidocious antidisestablishmentarianism",
  "a".repeat(100) + " " + "b".repeat(101),
  "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word",
  "don't won't it's O'Reilly's \"quoted\" (parens) [brackets] {braces}",
  "$100.00 €50 £20 ¥1000 50% 3.14159 1,000,000",
  "C++ C# .NET node.js e-mail co-operate",
  "Ünïcödé ÀÉÎÕÜ ÇçÑñ ßẞ ﬁ ligature ﬀ",
  "İstanbul ıi DŽ ǅ Σίσυφος ΑΘΗΝΑ",
  "Привет, мир! Москва",
  "مرحبا بالعالم",
  "שלום עולם",
  "ไทย ภาษา",
  "subject: RE: Fwd: [EXTERNAL] Your order #12345 has shipped!!!",
  "…ellipsis “smart quotes” ‘single’ «guillemets» ‹›",
  "math ∑∫√∞ ≤≥ ± × ÷ → ⇒",
  "tab\tseparated\tvalues\u0007bell\u001bescape",
  "MiXeD CaSe WoRdS and UPPERCASE ACRONYMS like NASA FBI",
  "unaffable unbelievable unhappiness",
];
const tok = Tokenizer.fromFile(process.argv[2]);
tok.disablePadding();
tok.disableTruncation();
(async () => {
  const out = [];
  for (const text of cases) {
    const enc = await tok.encode(text);
    out.push({text, tokens: enc.getTokens(), ids: enc.getIds()});
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
})();
