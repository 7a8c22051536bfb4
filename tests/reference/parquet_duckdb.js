// Reference for tests/test_parquet.cpp: DuckDB (npm @duckdb/node-api) writes a Parquet file
// and prints its own reading of that file as JSON lines, one row object a line.
//   node parquet_duckdb.js OUT.parquet 'SELECT ... ' [COPY_OPTIONS]
// runs COPY (SELECT ...) TO 'OUT.parquet' (FORMAT PARQUET, COPY_OPTIONS), e.g.
// "COMPRESSION zstd, ROW_GROUP_SIZE 100, DICTIONARY_SIZE_LIMIT 0", then
// SELECT * FROM 'OUT.parquet' and writes each row to stdout: LIST -> array, STRUCT -> object,
// MAP -> array of {key, value}, NULL -> null, BIGINT/INTEGER -> number, DOUBLE/FLOAT -> number, VARCHAR -> string.
//   node parquet_duckdb.js --read IN.parquet
// only reads;
//   node parquet_duckdb.js --write-only OUT.parquet 'SELECT ...' [COPY_OPTIONS]
// only writes (for types this script does not turn into JSON, such as DECIMAL).
//   node parquet_duckdb.js --encodings IN.parquet
// prints one JSON object: each column's encodings in its chunks (from parquet_metadata), e.g.
// {"prompt": ["PLAIN", "RLE_DICTIONARY"]}. The module folder is NPM_CACHE (default: <repo>/.cache/npm/node_modules).
'use strict';
const path = require('path');

const cache = process.env.NPM_CACHE || path.join(__dirname, '..', '..', '.cache', 'npm', 'node_modules');
const duckdb = require(path.join(cache, '@duckdb', 'node-api'));

// DuckDB's JS values (DuckDBListValue, DuckDBStructValue, bigint) as plain JSON.
function plain(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof duckdb.DuckDBListValue || value instanceof duckdb.DuckDBArrayValue) {
    return value.items.map(plain);
  }
  if (value instanceof duckdb.DuckDBMapValue) {  // as Parquet stores it: key/value pairs
    return value.entries.map((e) => ({ key: plain(e.key), value: plain(e.value) }));
  }
  if (value instanceof duckdb.DuckDBStructValue) {
    const out = {};
    for (const [k, v] of Object.entries(value.entries)) out[k] = plain(v);
    return out;
  }
  throw new Error('parquet_duckdb.js: unexpected DuckDB value ' + value.constructor.name);
}

function quote(text) { return "'" + text.replace(/'/g, "''") + "'"; }

async function main() {
  let args = process.argv.slice(2);
  const writeOnly = args[0] === '--write-only';
  if (writeOnly) args = args.slice(1);
  const instance = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  let file;
  if (args[0] === '--encodings') {
    const reader = await connection.runAndReadAll(
      `SELECT path_in_schema, encodings FROM parquet_metadata(${quote(args[1])})`);
    const out = {};
    for (const [column, encodings] of reader.getRows()) {
      const list = out[column] || (out[column] = []);
      for (const e of encodings.split(',').map((x) => x.trim())) if (!list.includes(e)) list.push(e);
    }
    for (const list of Object.values(out)) list.sort();
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (args[0] === '--read') {
    file = args[1];
  } else {
    if (args.length < 2) throw new Error("usage: node parquet_duckdb.js OUT.parquet 'SELECT ...' [OPTIONS]");
    file = args[0];
    const options = args[2] ? ', ' + args[2] : '';
    await connection.run(`COPY (${args[1]}) TO ${quote(file)} (FORMAT PARQUET${options})`);
    if (writeOnly) return;
  }
  const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet(${quote(file)})`);
  const names = reader.columnNames();
  const lines = [];
  for (const row of reader.getRows()) {
    const out = {};
    names.forEach((name, i) => { out[name] = plain(row[i]); });
    lines.push(JSON.stringify(out));
  }
  process.stdout.write(lines.map((l) => l + '\n').join(''));
}

main().catch((error) => { console.error(error.stack || String(error)); process.exit(1); });
