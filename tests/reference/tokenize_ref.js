// Reference for tests/test_tokenizer.cpp: the native HuggingFace tokenizers (Rust, through
// npm @anush008/tokenizers-linux-x64-gnu) encode and decode JSONL rows.
//   node tokenize_ref.js TOKENIZER_JSON < rows.jsonl > results.jsonl
// Row {"text": s}  -> {"ids": encode(s), "ids_special": encode(s, add_special_tokens),
//                      "decoded": decode(ids), "decoded_special_skipped": decode(ids_special, skip)}
// Row {"ids": [..]} -> {"decoded": decode(ids), "decoded_skip": decode(ids, skip_special_tokens)}
// The module folder is NPM_CACHE (default: <repo>/.cache/npm/node_modules).
'use strict';
const fs = require('fs');
const path = require('path');

const cache = process.env.NPM_CACHE || path.join(__dirname, '..', '..', '.cache', 'npm', 'node_modules');
const { Tokenizer } = require(path.join(cache, '@anush008', 'tokenizers-linux-x64-gnu'));

async function main() {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node tokenize_ref.js TOKENIZER_JSON < rows.jsonl');
  const tokenizer = Tokenizer.fromFile(file);
  const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const row = JSON.parse(line);
    if (typeof row.text === 'string') {
      const plain = await tokenizer.encode(row.text, null, { addSpecialTokens: false });
      const special = await tokenizer.encode(row.text, null, { addSpecialTokens: true });
      const ids = Array.from(plain.getIds());
      const idsSpecial = Array.from(special.getIds());
      out.push(JSON.stringify({
        ids,
        ids_special: idsSpecial,
        decoded: await tokenizer.decode(ids, false),
        decoded_special_skipped: await tokenizer.decode(idsSpecial, true),
      }));
    } else {
      const ids = row.ids;
      out.push(JSON.stringify({
        decoded: await tokenizer.decode(ids, false),
        decoded_skip: await tokenizer.decode(ids, true),
      }));
    }
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}

main().catch((e) => {
  process.stderr.write(`tokenize_ref.js: ${e.stack || e}\n`);
  process.exit(1);
});
