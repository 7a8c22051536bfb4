#!/usr/bin/python3
"""Baseline for bench_chat_template: renders a template N times with Python jinja2 in
transformers' settings (tests/reference/render_template.py's environment).

Usage: chat_template_baseline.py CASE.json N  ->  prints "<renders per second> <output bytes>"
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import render_template  # noqa: E402

case = json.load(open(sys.argv[1], encoding="utf-8"))
n = int(sys.argv[2])
template = render_template.make_environment().from_string(case["template"])
output = template.render(**case["context"])
start = time.perf_counter()
for _ in range(n):
    template.render(**case["context"])
elapsed = time.perf_counter() - start
print("%.1f %d" % (n / elapsed, len(output.encode("utf-8"))))
