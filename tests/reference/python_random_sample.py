"""Independent reference for spinlm's PythonRandom: what CPython's random module draws.

Usage: python_random_sample.py SEED N:K [N:K ...]
Prints one JSON object: {"samples": [random.Random(SEED).sample(range(N), K) for each N:K in
turn, all from ONE generator, as the harness's few-shot sampler draws them], "random": three
random() values drawn afterwards, "bits": getrandbits(k) for k = 1, 7, 32}.
"""
import json
import random
import sys

seed = int(sys.argv[1])
rng = random.Random(seed)
samples = []
for spec in sys.argv[2:]:
    n, k = (int(x) for x in spec.split(":"))
    samples.append(rng.sample(range(n), k))
values = [rng.random() for _ in range(3)]
bits = [rng.getrandbits(k) for k in (1, 7, 32)]
print(json.dumps({"samples": samples, "random": values, "bits": bits}))
