# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_docs.py - docs/ kept true: every config key the parser in config/*.c
accepts (found by grepping its key comparisons) appears in docs/config.md. Needs no agent."""

import glob
import os
import re

import pytest

import berthtest as bt


def config_keys():
    keys = set()
    for path in glob.glob(os.path.join(bt.REPO, "config", "*.c")):
        src = bt.read(path)
        # key comparisons (streq(key, "x")) and key tables ({"section", "key", ...})
        keys.update(re.findall(r'streq\(\s*(?:key|name)\s*,\s*"([a-z_]+)"\s*\)', src))
        keys.update(re.findall(r'\{\s*"(?:agent|resources|reserved)"\s*,\s*"([a-z_]+)"', src))
    return keys


def test_every_config_key_documented():
    doc = os.path.join(bt.REPO, "docs", "config.md")
    if not os.path.exists(doc):
        pytest.skip("docs/config.md not written yet")
    keys = config_keys()
    if not keys:
        pytest.skip("found no key names in config/*.c (its key lookup changed form)")
    text = bt.read(doc)
    missing = sorted(k for k in keys if not re.search(r"\b%s\b" % re.escape(k), text))
    assert not missing, "config keys missing from docs/config.md: %s" % missing
