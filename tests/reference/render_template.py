#!/usr/bin/python3
"""Renders chat templates with Python jinja2 exactly as transformers' apply_chat_template does.

Usage: render_template.py CASES.jsonl RESULTS.jsonl

Each line of CASES is {"template": SOURCE, "context": {...}}. Each line of RESULTS is either
{"output": TEXT} or {"error": MESSAGE, "kind": "syntax"|"runtime", "line": N}.

The environment is transformers' (src/transformers/utils/chat_template_utils.py,
_compile_jinja_template): ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
with the loopcontrols extension, raise_exception and strftime_now as globals, and its own
tojson filter (json.dumps with ensure_ascii=False, keys kept in order).
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def error_line(error):
    line = getattr(error, "lineno", None)
    if line is not None:
        return line
    # Runtime errors: jinja2 rewrites the traceback so that the frame of the template
    # ("<template>") carries the template's own line number.
    tb = error.__traceback__
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def main():
    env = make_environment()
    compiled = {}
    with open(sys.argv[1], encoding="utf-8") as cases, open(sys.argv[2], "w", encoding="utf-8") as results:
        for line in cases:
            case = json.loads(line)
            source = case["template"]
            try:
                if source not in compiled:
                    compiled[source] = env.from_string(source)
                result = {"output": compiled[source].render(**case["context"])}
            except TemplateSyntaxError as e:
                result = {"error": e.message, "kind": "syntax", "line": e.lineno}
            except Exception as e:  # every runtime error of a template is a case to compare
                result = {"error": str(e), "kind": "runtime", "line": error_line(e)}
            results.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
