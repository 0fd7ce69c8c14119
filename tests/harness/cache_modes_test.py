#!/usr/bin/env python3
"""framework.cache_modes against the C++ definition it mirrors: the mode
names in storage/cache_mode.cpp's name table (in order) and each mode's
traits in storage/cache_mode.h's traits() switch. A mode added, renamed or
given other traits in storage/ fails here until the harness follows.

usage: cache_modes_test.py STORAGE_DIR   (tests/ on PYTHONPATH)"""
import os
import re
import sys
import unittest

from framework import cache_modes

STORAGE = None


def read(name):
    with open(os.path.join(STORAGE, name)) as f:
        return f.read()


def header_traits(text):
    """Mode name (lower case) -> (write_cache, direct, flush_honoured) from traits()."""
    cases = re.findall(r"case CacheMode::(\w+): return \{(\w+), (\w+), (\w+)\};", text)
    return {name.lower(): tuple(v == "true" for v in flags) for name, *flags in cases}


class CacheModesMatchStorage(unittest.TestCase):
    def test_names_in_the_order_of_the_cpp_name_table(self):
        names = re.findall(r'\{"(\w+)", CacheMode::\w+\}', read("cache_mode.cpp"))
        self.assertEqual(len(names), 5, "storage/cache_mode.cpp: name table not found")
        self.assertEqual(cache_modes.MODES, names)

    def test_names_in_the_order_of_the_enum(self):
        enum = re.search(r"enum class CacheMode \{([^}]*)\}", read("cache_mode.h"))
        self.assertIsNotNone(enum, "storage/cache_mode.h: enum class CacheMode not found")
        self.assertEqual(cache_modes.MODES, [n.strip().lower() for n in enum[1].split(",")])

    def test_traits_match_the_header_switch(self):
        want = header_traits(read("cache_mode.h"))
        got = {m: (t.write_cache, t.direct, t.flush_honoured) for m, t in cache_modes.TRAITS.items()}
        self.assertEqual(got, want)

    def test_derived_sets(self):
        self.assertEqual(cache_modes.WRITE_BACK, {"writeback", "none", "unsafe"})
        self.assertEqual(cache_modes.DIRECT, {"none", "directsync"})

    def test_header_parser_reads_a_changed_switch(self):
        # The check above can fail: a flipped flag in the header text is seen.
        text = read("cache_mode.h").replace("case CacheMode::Unsafe: return {true, false, false};",
                                            "case CacheMode::Unsafe: return {true, false, true};")
        self.assertEqual(header_traits(text)["unsafe"], (True, False, True))


if __name__ == "__main__":
    STORAGE = sys.argv.pop(1)
    unittest.main(argv=[sys.argv[0], "-v"])
