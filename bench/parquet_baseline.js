// Baseline for bench/bench_parquet.cpp: DuckDB (npm @duckdb/node-api), one thread, reading a
// Parquet file in the same run as spinlm.
//   node parquet_baseline.js FILE.parquet
// Prints one JSON object: seconds (wall) and CPU seconds of the process for
//   scan_s:  SELECT * materialized into DuckDB's own column vectors (every column decoded);
//   json_s:  COPY (SELECT *) TO /dev/null (FORMAT JSON): rows as JSON text, what spinlm builds.
// Each is the best of three runs.
'use strict';
const path = require('path');

const cache = process.env.NPM_CACHE || path.join(__dirname, '..', '.cache', 'npm', 'node_modules');
const duckdb = require(path.join(cache, '@duckdb', 'node-api'));

function cpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function best(fn) {
  let wall = Infinity, cpuBest = Infinity;
  for (let k = 0; k < 3; ++k) {
    const c0 = cpu();
    const t0 = process.hrtime.bigint();
    await fn();
    wall = Math.min(wall, Number(process.hrtime.bigint() - t0) / 1e9);
    cpuBest = Math.min(cpuBest, cpu() - c0);
  }
  return [wall, cpuBest];
}

async function main() {
  const file = process.argv[2].replace(/'/g, "''");
  const instance = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  const rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM read_parquet('${file}')`)).getRows()[0][0]);
  const [scan, scanCpu] = await best(() => connection.run(`SELECT * FROM read_parquet('${file}')`));
  const [json, jsonCpu] = await best(() =>
    connection.run(`COPY (SELECT * FROM read_parquet('${file}')) TO '/dev/null' (FORMAT JSON)`));
  process.stdout.write(JSON.stringify({ rows, scan_s: scan, scan_cpu_s: scanCpu, json_s: json, json_cpu_s: jsonCpu }) + '\n');
}

main().catch((error) => { console.error(error.stack || String(error)); process.exit(1); });
