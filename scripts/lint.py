#!/usr/bin/env python3
"""Project lint, run by ctest (test "lint"). Two GCC 12 coroutine miscompiles are banned.

GCC 12 (Debian 12's compiler) miscompiles a co_await inside the condition of an if/while/
switch, or inside a ternary: the coroutine resumes into an invalid state and crashes
(reproduced with a 30-line program; fixed in later GCC). Catch2's REQUIRE/CHECK put their
argument into a while condition, so co_await inside them is the same bug.
Rule: assign the awaited value to a local first, then test the local.

GCC 12 also destroys a braced-init temporary (`f({1, s})`, `Req{1, s}`) that appears in the
same full-expression as a co_await twice (double free; reproduced in a small program; a bare
`{}` argument and `co_await Awaiter{...}` are not affected, `S{}` is). Default arguments of a
coroutine whose type is not trivially destructible (`Options o = {}`) hit the same bug: use
overloads instead (not checked here). Rule: build such values in a local
before the co_await statement.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADS = re.compile(r"\b(if|while|switch|REQUIRE|REQUIRE_FALSE|CHECK|CHECK_FALSE)\s*\(")
TERNARY = re.compile(r"\?[^;:]*\bco_await\b[^;]*:|\bco_await\b[^;?]*\?[^;]*:")


def strip_comments_and_strings(text):
    text = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\\n])*"', lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', text)
    return text


def balanced(text, start):
    """text[start] == '('; returns the index just past the matching ')'."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def co_await_statement(text, start):
    """The text from `co_await` at start to the end of its statement (depth-0 ';')."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return text[start:i]
        elif c == ";" and depth == 0:
            return text[start:i]
    return text[start:]


def braced_temporaries(stmt):
    """Offsets of '{' in stmt that start a braced-init temporary (not a lambda body)."""
    hits = []
    for i, c in enumerate(stmt):
        if c != "{":
            continue
        j = i - 1
        while j >= 0 and stmt[j] in " \t\n":
            j -= 1
        if j < 0:
            continue
        prev = stmt[j]
        word = re.search(r"(\w+)$", stmt[: j + 1])
        if word and word.group(1) in ("mutable", "noexcept", "else", "try", "do"):
            continue
        if re.match(r"\{\s*\}", stmt[i:]) and prev in "(,":
            continue  # f(x, {}) : a value-initialised parameter, not affected (S{} is)
        if re.fullmatch(r"co_await\s+[\w:<>]+\s*", stmt[:i]):
            continue  # co_await Awaiter{...}: the awaiter itself, not affected
        if prev in "(," or prev.isalnum() or prev == "_":
            hits.append(i)
    return hits


def main():
    problems = []
    for folder in ("src", "apps", "tests", "bench", "fuzz"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".cpp", ".hpp", ".h", ".cc"):
                continue
            text = strip_comments_and_strings(path.read_text(errors="replace"))
            for m in HEADS.finditer(text):
                open_paren = m.end() - 1
                cond = text[open_paren:balanced(text, open_paren)]
                if re.search(r"\bco_await\b", cond):
                    line = text.count("\n", 0, m.start()) + 1
                    problems.append(f"{path.relative_to(ROOT)}:{line}: co_await inside {m.group(1)}(...)")
            for m in re.finditer(r"(?<!operator )\bco_await\b", text):
                stmt = co_await_statement(text, m.start())
                for off in braced_temporaries(stmt):
                    line = text.count("\n", 0, m.start() + off) + 1
                    problems.append(f"{path.relative_to(ROOT)}:{line}: braced temporary in a co_await expression")
            for m in TERNARY.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: co_await in a ternary")
    if problems:
        print("GCC 12 coroutine miscompiles (see scripts/lint.py): assign to a local first:")
        print("\n".join(problems))
        return 1
    print("lint: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
