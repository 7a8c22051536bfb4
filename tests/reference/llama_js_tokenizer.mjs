// Writes the LLaMA (1/2) vocabulary that npm llama-tokenizer-js carries (base64 vocabulary and
// binary merges) as a HuggingFace tokenizer.json in the layout of the LLaMA fast tokenizer
// (Prepend + Replace normalizer, byte_fallback BPE, Replace/ByteFallback/Fuse/Strip decoder,
// <s> added by the post-processor).
//   node llama_js_tokenizer.mjs OUT.json
import fs from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cache = process.env.NPM_CACHE || path.join(here, '..', '..', '.cache', 'npm', 'node_modules');
const { default: llama } = await import(path.join(cache, 'llama-tokenizer-js', 'llama-tokenizer.js'));

const out = process.argv[2];
if (!out) throw new Error('usage: node llama_js_tokenizer.mjs OUT.json');

const vocab = {};
llama.vocabById.forEach((token, id) => { vocab[token] = id; });
// The merges map holds "a b" -> priority; lower priority merges first.
const merges = [...llama.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);

const special = (id, content) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});
const tokenizer = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: {
    type: 'Sequence',
    normalizers: [
      { type: 'Prepend', prepend: '\u2581' },
      { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    ],
  },
  pre_tokenizer: null,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
  },
  decoder: {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  },
  model: {
    type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges,
  },
};
fs.writeFileSync(out, JSON.stringify(tokenizer));
