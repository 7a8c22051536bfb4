#!/usr/bin/env python3
"""Independent safetensors reader and writer for spinlm's tests.

Written from the format description alone (no safetensors package on these machines):
8-byte little-endian header length N, N bytes of JSON header
{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
raw little-endian data. Run with Debian's /usr/bin/python3 (it has torch).

  read PATH OUT.json [PATH OUT.json ...]
                       PATH is a .safetensors file or a model folder (model.safetensors or
                       model.safetensors.index.json + shards). Checks the layout spinlm
                       promises (8-byte aligned header padded with spaces, data contiguous
                       in the Rust writer's order, index consistent) and writes every
                       tensor's bits as integers.
  write DIR            Writes DIR/python.safetensors (entries in reverse name order, a header
                       length that leaves the data misaligned), a sharded folder
                       DIR/sharded/, and DIR/expected.json with every tensor's bits.
"""
import json
import math
import os
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
# Position in the Rust writer's Dtype enum; it lays entries out by descending rank, then name.
RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 5, "F16": 7, "BF16": 8, "I32": 9, "F32": 11,
        "F64": 12, "I64": 13}
SAME_SIZE_INT = {8: torch.int64, 4: torch.int32, 2: torch.int16}


def die(message):
    print("safetensors_reference: " + message, file=sys.stderr)
    sys.exit(1)


def bits(tensor):
    """The tensor's raw bits as Python ints (floats viewed as same-size signed ints)."""
    flat = tensor.contiguous().reshape(-1)
    size = flat.element_size()
    if size == 1:
        return flat.to(torch.int64).tolist()
    return flat.view(SAME_SIZE_INT[size]).to(torch.int64).tolist()


def describe(tensor):
    as_f32 = tensor.to(torch.float32)
    finite = tensor.to(torch.float64)
    finite = torch.where(torch.isfinite(finite), finite, torch.zeros_like(finite))
    return {
        "dtype": NAMES[tensor.dtype],
        "shape": list(tensor.shape),
        "bits": bits(tensor),
        "f32_bits": bits(as_f32),
        "finite_sum": float(finite.sum()),
    }


def read_file(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        die(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        die(f"{path}: header length {n} past the end")
    raw = blob[8:8 + n].decode("utf-8")
    if n % 8 != 0:
        die(f"{path}: header length {n} is not a multiple of 8")
    if not raw.startswith("{") or raw.rstrip(" ") != raw.rstrip(" ").rstrip() or \
            not raw.rstrip(" ").endswith("}"):
        die(f"{path}: header must be a JSON object padded with spaces")
    header = json.loads(raw)
    metadata = header.pop("__metadata__", None)
    data = blob[8 + n:]
    ordered = sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"]))
    expected_order = sorted(header, key=lambda name: (-RANK[header[name]["dtype"]], name))
    if [name for name, _ in ordered] != expected_order:
        die(f"{path}: data order {[n for n, _ in ordered]} is not the Rust writer's "
            f"{expected_order}")
    position = 0
    tensors = {}
    for name, info in ordered:
        begin, end = info["data_offsets"]
        if begin != position:
            die(f"{path}: {name} starts at {begin}, expected {position}")
        dtype = DTYPES[info["dtype"]]
        shape = info["shape"]
        count = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - begin != count * itemsize:
            die(f"{path}: {name} spans {end - begin} bytes, expected {count * itemsize}")
        if count == 0:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        tensors[name] = describe(tensor)
        position = end
    if position != len(data):
        die(f"{path}: data section has {len(data)} bytes, tensors cover {position}")
    return {"header_len": n, "metadata": metadata, "order": expected_order, "tensors": tensors}


def read_path(path):
    if not os.path.isdir(path):
        return read_file(path)
    single = os.path.join(path, "model.safetensors")
    index_path = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(single):
        if os.path.exists(index_path):
            die(f"{path}: both model.safetensors and an index")
        result = read_file(single)
        result["files"] = {"model.safetensors": result["order"]}
        return result
    with open(index_path) as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    shards = sorted(set(weight_map.values()))
    result = {"tensors": {}, "files": {}, "total_size": index["metadata"]["total_size"]}
    total = 0
    for shard in shards:
        part = read_file(os.path.join(path, shard))
        if part["metadata"] != {"format": "pt"}:
            die(f"{shard}: metadata {part['metadata']}")
        listed = sorted(name for name, file in weight_map.items() if file == shard)
        if sorted(part["tensors"]) != listed:
            die(f"{shard}: holds {sorted(part['tensors'])}, the index lists {listed}")
        for name, info in part["tensors"].items():
            itemsize = torch.empty((), dtype=DTYPES[info["dtype"]]).element_size()
            total += math.prod(info["shape"]) * itemsize
        result["tensors"].update(part["tensors"])
        result["files"][shard] = part["order"]
    if total != result["total_size"]:
        die(f"{index_path}: total_size {result['total_size']}, tensors hold {total} bytes")
    return result


def sample_tensors():
    g = torch.Generator().manual_seed(1234)
    return {
        "f64": torch.randn(3, 2, generator=g, dtype=torch.float64),
        "f32": torch.randn(4, 5, generator=g),
        "f32_special": torch.tensor([math.inf, -math.inf, math.nan, -0.0, 1e-45, 3.4028235e38]),
        "f16": torch.randn(7, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "i64": torch.tensor([-2**63, 2**63 - 1, 0, -5, 1 << 40]),
        "i32": torch.tensor([-2**31, 2**31 - 1, 7], dtype=torch.int32),
        "i16": torch.tensor([[-32768, 32767], [1, -2]], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, -1], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True, False]),
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 4),
    }


def write_file(path, tensors, order, metadata, misalign):
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name in order:
        tensor = tensors[name].contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    if misalign:
        text += " " * ((3 - len(text)) % 8)  # length 3 mod 8: float data lands misaligned
    else:
        text += " " * ((8 - len(text)) % 8)
    encoded = text.encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tensors = sample_tensors()
    names = sorted(tensors, reverse=True)
    write_file(os.path.join(out_dir, "python.safetensors"), tensors, names,
               {"format": "pt", "writer": "python-reference"}, misalign=True)
    # A folder in save_pretrained's sharded layout: two shards and an index.
    sharded = os.path.join(out_dir, "sharded")
    os.makedirs(sharded, exist_ok=True)
    halves = [sorted(tensors)[:6], sorted(tensors)[6:]]
    weight_map = {}
    for i, half in enumerate(halves):
        shard = f"model-{i + 1:05d}-of-00002.safetensors"
        write_file(os.path.join(sharded, shard), tensors, half, {"format": "pt"}, misalign=False)
        weight_map.update({name: shard for name in half})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)
    expected = {name: describe(tensor) for name, tensor in tensors.items()}
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"tensors": expected, "weight_map": weight_map}, f)


def main():
    if len(sys.argv) >= 4 and len(sys.argv) % 2 == 0 and sys.argv[1] == "read":
        for path, out in zip(sys.argv[2::2], sys.argv[3::2]):
            with open(out, "w") as f:
                json.dump(read_path(path), f)
    elif len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        die("usage: read PATH OUT.json [PATH OUT.json ...] | write DIR")


if __name__ == "__main__":
    main()
