#!/usr/bin/python3
"""The man page documents exactly the commands, flags and environment variables of the program.

Usage: man_flags.py VTUNNEL_BIN MAN_PAGE SOURCE_DIR

- commands: the "  vtunnel NAME ..." lines of `vtunnel --help` against the .TP/.B entries of the
  man page's COMMANDS section;
- flags: the "  -name" lines of `vtunnel CMD -h` against the .TP/.B(I) entries of the section
  "CMD FLAGS" (a command without flags must still have its section);
- environment: every $VTUNNEL_* named in the help texts, and every getenv()/env_or()/env_or_empty()
  name in apps/ and src/, against the ENVIRONMENT section.
Prints every difference, exits 1 if there is any. The page must also render without warnings.
"""
import glob
import os
import re
import subprocess
import sys


def run_help(binary, *args):
    p = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise SystemExit("%s %s exited %d:\n%s" % (binary, " ".join(args), p.returncode, p.stdout))
    return p.stdout


def help_flags(text):
    # Go flag usage: "  -name type\n    \tusage"
    return set(re.findall(r"^  -([A-Za-z0-9][A-Za-z0-9_-]*)", text, re.M))


def help_commands(text):
    return set(re.findall(r"^  vtunnel ([a-z][a-z-]*)", text, re.M))


def man_sections(page):
    """{SECTION TITLE: [lines]} for every .SH."""
    sections, current = {}, None
    for line in page.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]+?)"?\s*$', line)
        if m:
            current = m.group(1).upper()
            sections[current] = []
        elif current:
            sections[current].append(line)
    return sections


def tagged_entries(lines):
    """The first word of the tag line after each .TP (or .TQ): '.BI \\-port " port"' -> 'port'."""
    out = set()
    for i, line in enumerate(lines):
        if line.strip() in (".TP", ".TQ") and i + 1 < len(lines):
            tag = lines[i + 1]
            m = re.match(r'^\.(?:B|BI|BR|I|IR)\s+"?((?:\\-)*)([A-Za-z0-9_][A-Za-z0-9_\\-]*)', tag)
            if m:
                out.add(m.group(2).replace("\\-", "-"))
    return out


def main():
    binary, man_path, source_dir = sys.argv[1:4]
    page = open(man_path, encoding="utf-8").read()
    sections = man_sections(page)
    problems = []

    def compare(what, from_help, from_man):
        for name in sorted(from_help - from_man):
            problems.append("%s: %s is in --help but not in the man page" % (what, name))
        for name in sorted(from_man - from_help):
            problems.append("%s: %s is in the man page but not in --help" % (what, name))

    main_help = run_help(binary, "--help")
    commands = help_commands(main_help)
    if not {"server", "client", "keygen"} <= commands:
        problems.append("could not read the commands from `vtunnel --help`:\n" + main_help)
    compare("commands", commands, tagged_entries(sections.get("COMMANDS", [])))

    help_texts = main_help
    for command in sorted(commands):
        if command == "version":
            continue
        text = run_help(binary, command, "-h")
        help_texts += text
        title = command.upper() + " FLAGS"
        if title not in sections:
            problems.append("man page has no section %s" % title)
            continue
        flags = help_flags(text)
        compare("vtunnel %s" % command, flags, tagged_entries(sections[title]))
        print("vtunnel %s: %d flags: %s" % (command, len(flags), " ".join(sorted(flags))))

    env_names = set(re.findall(r"\$(VTUNNEL_[A-Z0-9_]+)", help_texts))
    sources = glob.glob(os.path.join(source_dir, "apps", "*.cpp"))
    sources += glob.glob(os.path.join(source_dir, "src", "**", "*.cpp"), recursive=True)
    for src in sources:
        text = open(src, encoding="utf-8").read()
        env_names |= set(re.findall(r'(?:getenv|env_or|env_or_empty)\(\s*"([A-Z][A-Z0-9_]*)"', text))
    documented_env = tagged_entries(sections.get("ENVIRONMENT", []))
    for name in sorted(env_names - documented_env):
        problems.append("environment: %s is read by the program but not in ENVIRONMENT" % name)
    print("environment: %s" % " ".join(sorted(env_names)))

    # groff warnings (bad macros, unknown escapes) are bugs in the page too.
    render = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", man_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"),
                            timeout=60)
    if render.returncode != 0 or render.stderr.strip():
        problems.append("man --warnings reported:\n" + render.stderr)

    for p in problems:
        print("FAIL " + p)
    if problems:
        print("Document every flag of `vtunnel <command> -h` in man/vtunnel.1.in "
              "(a .TP entry in the command's FLAGS section), and drop entries for removed ones.")
        return 1
    print("man page matches --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
