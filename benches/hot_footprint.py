#!/usr/bin/env python3
"""Counts the distinct machine instructions a benchmark runs over and over.

The cms-a/1 pipeline's parts run fast alone and slow each other down when run
together (benches/README.md, sixth session): the hot path's code footprint is
the suspect. This counts it from a callgrind profile taken with
--dump-instr=yes: every instruction address whose cost reaches MIN_COUNT
(use about a tenth of the number of iterations, so that setup code drops out),
per function.

    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=/tmp/cg.out \\
        <bench binary> --bench --profile-time 1 cms-a-1/pipeline
    python3 benches/hot_footprint.py /tmp/cg.out 1000

Valgrind runs SHA-256 in software (about 3.5 K instructions the CPU replaces
with its SHA instructions): subtract it.
"""

import collections
import re
import sys


def main(path: str, min_count: int, top: int) -> None:
    names: dict[str, str] = {}
    counts: collections.Counter[int] = collections.Counter()
    owner: dict[int, str] = {}
    function = "?"
    address = 0
    after_calls = False
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        named = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if named:
            if named.group(3):
                names[named.group(2)] = named.group(3)
            if named.group(1) == "fn":
                function = names.get(named.group(2), "?")
            continue
        if line.startswith("calls="):
            # The next line is the call's inclusive cost, not an instruction's own.
            after_calls = True
            continue
        fields = line.split()
        if not fields or not re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)$", fields[0]):
            continue
        a = fields[0]
        if a.startswith("0x"):
            address = int(a, 16)
        elif a[0] in "+-":
            address += int(a)
        if after_calls:
            after_calls = False
            continue
        if len(fields) >= 3 and fields[2].isdigit():
            counts[address] += int(fields[2])
            owner[address] = function
    hot = [a for a, n in counts.items() if n >= min_count]
    print(f"distinct hot instructions (cost >= {min_count}): {len(hot)}")
    per_function = collections.Counter(owner[a] for a in hot)
    for name, n in per_function.most_common(top):
        print(f"{n:6} {name[:110]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 25)
