// Baseline for bench_tokenizer: the native HuggingFace tokenizers (Rust, npm
// @anush008/tokenizers-linux-x64-gnu) encoding the same documents.
//   node bench/tokenize_baseline.js TOKENIZER_JSON DOCS.jsonl
// Prints one JSON line: {"bytes", "tokens", "loop_s", "batch_s", "loop_cpu_s", "batch_cpu_s"}
// (wall and process CPU seconds): loop_s times a sequential
// `await encode(doc)` loop (one document at a time, like spinlm's single-threaded encode);
// batch_s times one encodeBatch(docs) call (the library's own thread pool, all cores).
'use strict';
const fs = require('fs');
const path = require('path');

const cache = process.env.NPM_CACHE || path.join(__dirname, '..', '.cache', 'npm', 'node_modules');
const { Tokenizer } = require(path.join(cache, '@anush008', 'tokenizers-linux-x64-gnu'));

async function main() {
  const [file, docsFile] = process.argv.slice(2);
  const tokenizer = Tokenizer.fromFile(file);
  const docs = fs.readFileSync(docsFile, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l).text);
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
  let tokens = 0;
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  let c0 = cpu();
  let t0 = process.hrtime.bigint();
  for (const d of docs) tokens += (await tokenizer.encode(d, null, { addSpecialTokens: false })).getLength();
  const loop = Number(process.hrtime.bigint() - t0) / 1e9;
  const loopCpu = cpu() - c0;
  c0 = cpu();
  t0 = process.hrtime.bigint();
  const batch = await tokenizer.encodeBatch(docs, { addSpecialTokens: false });
  const batchTime = Number(process.hrtime.bigint() - t0) / 1e9;
  const batchCpu = cpu() - c0;
  let batchTokens = 0;
  for (const e of batch) batchTokens += e.getLength();
  process.stdout.write(JSON.stringify({ bytes, tokens, batch_tokens: batchTokens, loop_s: loop, batch_s: batchTime, loop_cpu_s: loopCpu, batch_cpu_s: batchCpu }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`tokenize_baseline.js: ${e.stack || e}\n`);
  process.exit(1);
});
