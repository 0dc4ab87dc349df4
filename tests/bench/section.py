#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/section.py DOC TITLE FILE - replace the "## TITLE" section of DOC with the
contents of FILE (or append it), keeping every other section as it is."""
import re
import sys

doc, title, src = sys.argv[1:4]
body = open(src).read().rstrip("\n") + "\n"
text = open(doc).read()
section = "## %s\n\n%s" % (title, body)
m = re.search(r"^## %s[ \t]*$" % re.escape(title), text, re.M)
if m:
    nxt = re.search(r"^## ", text[m.end():], re.M)
    end = m.end() + nxt.start() if nxt else len(text)
    text = text[:m.start()] + section + ("\n" if nxt else "") + text[end:]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
