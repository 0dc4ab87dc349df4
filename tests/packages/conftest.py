# SPDX-License-Identifier: Apache-2.0
"""tests/packages/conftest.py - the fixtures of the static package checks: the .debs
unpacked once per module."""

import shutil
import subprocess
import tempfile

import pytest

from pkgtest import DEBS, PKGS


@pytest.fixture(scope="module")
def deb_roots():
    """{package: its .deb unpacked (dpkg-deb -x) into a temp dir}."""
    roots = {}
    for p in PKGS:
        roots[p] = tempfile.mkdtemp(prefix="berth-pkgtest-deb-")
        subprocess.run(["dpkg-deb", "-x", DEBS[p], roots[p]], check=True)
    yield roots
    for d in roots.values():
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def deb_root(deb_roots):
    """The agent's .deb unpacked."""
    return deb_roots["berth-agent"]
