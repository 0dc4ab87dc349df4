#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""packaging/man/config-keys.py TEMPLATE CONFIG_MD VERSION [HEADING] > PAGE - fills the
@KEYS@ line of a manual page template with one .TP entry per key of the tables under the
docs/config.md section whose heading starts with HEADING (default "## Keys", berth-agent's;
"## berth-master" for berth-master.conf(5)), one .SS per "### `[section]`" heading, and
@VERSION@, so the manual page lists exactly the keys the documentation does. Stdlib only."""

import re
import sys

NON_ASCII = {"\u2014": "\\(em", "\u2013": "\\(en", "\u2265": "\\(>=", "\u2264": "\\(<=",
             "\u2212": "\\-", "\u00d7": "\\(mu", "\u2192": "\\(->"}


def roff_inline(text):
    """Markdown inline text -> roff: `code` bold, *x* italic, escapes."""
    text = text.replace("\\", "\\e")
    for char, glyph in NON_ASCII.items():
        text = text.replace(char, glyph)
    text = text.replace("\\e|", "|")  # markdown's escaped pipe inside tables
    text = re.sub(r"\[([^]]+)\]\([^)]+\)", r"\1", text)  # [link](target): its text
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        if i % 2:
            # \: lets a long value (isolation's list) break after its commas
            out.append("\\fB" + part.replace("-", "\\-").replace(",", ",\\:") + "\\fR")
        else:
            part = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", part)
            part = re.sub(r"\*([^*]+)\*", r"\\fI\1\\fR", part)
            out.append(part)
    line = "".join(out)
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def split_row(line):
    cells, cur, i = [], "", 1
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            cur += "\\|"
            i += 2
            continue
        if c == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    return cells


def keys_roff(md, heading):
    lines = md.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip().startswith(heading))
    except StopIteration:
        sys.exit("config-keys.py: no '%s' section in the config documentation" % heading)
    out, n, prev = [], 0, ""
    for line in lines[start + 1:]:
        last_was_table, prev = prev.startswith("|"), line if line.strip() else prev
        if line.startswith("## "):
            break
        if line.startswith("### "):
            out.append(".SS " + roff_inline(line[4:].strip()).replace("\\fB", "").replace(
                "\\fR", ""))
            continue
        if line.startswith("|"):
            cells = split_row(line)
            if len(cells) < 3 or not cells[0].startswith("`") or set(cells[1]) <= set("-: "):
                continue
            key = cells[0].strip("`")
            out.append(".TP")
            out.append("\\fB%s\\fR" % key.replace("-", "\\-"))
            out.append("Default: %s." % roff_inline(cells[1]))
            out.append(".br")
            out.append(roff_inline(cells[2]))
            n += 1
            continue
        if line.strip() and not line.startswith("|"):
            # a paragraph starts after a heading or a table (not inside the last key's entry)
            new_par = not out or out[-1].startswith(".SS") or last_was_table
            out.append(".PP" if new_par else "")
            out.append(roff_inline(line.strip()))
    if n == 0:
        sys.exit("config-keys.py: no key rows found under '%s'" % heading)
    return "\n".join(l for l in out if l != "")


def main():
    tmpl, md, version = sys.argv[1], sys.argv[2], sys.argv[3]
    heading = sys.argv[4] if len(sys.argv) > 4 else "## Keys"
    text = open(tmpl).read()
    keys = keys_roff(open(md).read(), heading)
    if "@KEYS@\n" not in text:
        sys.exit("config-keys.py: no @KEYS@ line in " + tmpl)
    sys.stdout.write(text.replace("@KEYS@\n", keys + "\n").replace("@VERSION@", version))


if __name__ == "__main__":
    main()
