#!/usr/bin/env python3
"""Counts the distinct machine instructions a benchmark runs over and over.

The cms-a/1 pipeline's parts run fast alone and slow each other down when run
together (benches/README.md, sixth session): the hot path's code footprint is
the suspect. This counts it from a callgrind profile taken with
--dump-instr=yes: every instruction address whose cost reaches MIN_COUNT
(a few percent of the number of iterations is enough for setup code to drop
out: the sixth session used 1,000 for a run of 16,383 orders), per function.
Needs callgrind's default name compression (`fn=(id) name`).

    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=/tmp/cg.out \\
        <bench binary> --bench --profile-time 1 cms-a-1/pipeline
    python3 benches/hot_footprint.py /tmp/cg.out 1000

Valgrind runs SHA-256 in software (about 3.5 K instructions the CPU replaces
with its SHA instructions): subtract it.
"""

import collections
import re
import sys


def compressed(line: str, key: str, table: dict[str, str]) -> tuple[bool, str] | None:
    """For a `key=(id) name` or `ckey=(id) name` line (callgrind names each
    object or function in full once, then by id): records the name, and
    returns whether the line is `key=` itself (not the callee's `ckey=`) and
    the name. None for any other line."""
    m = re.match(rf"(c?{key})=\((\d+)\)(?: (.*))?", line)
    if not m:
        return None
    if m.group(3):
        table[m.group(2)] = m.group(3)
    return m.group(1) == key, table.get(m.group(2), "?")


def main(path: str, min_count: int, top: int) -> None:
    names: dict[str, str] = {}
    # Addresses are relative to their object file (the binary, libc, …), so
    # an instruction is keyed by (object, address).
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    owner: dict[tuple[str, int], str] = {}
    objects: dict[str, str] = {}
    obj = "?"
    function = "?"
    address = 0
    ir_column = None
    after_calls = False
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("positions:"):
            positions = line.split()[1:]
            if "instr" not in positions:
                sys.exit("the profile has no instruction addresses: take it with --dump-instr=yes")
            ir_column = len(positions)  # the first event (Ir) follows the positions
            continue
        seen = compressed(line, "ob", objects)
        if seen:
            if seen[0]:
                obj = seen[1]
            continue
        seen = compressed(line, "fn", names)
        if seen:
            if seen[0]:
                function = seen[1]
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
        if ir_column is not None and len(fields) > ir_column and fields[ir_column].isdigit():
            counts[(obj, address)] += int(fields[ir_column])
            owner[(obj, address)] = function
    hot = [a for a, n in counts.items() if n >= min_count]
    print(f"distinct hot instructions (cost >= {min_count}): {len(hot)}")
    # The instruction cache holds 64-byte lines: a line with one hot
    # instruction takes as much room as a full one.
    print(f"distinct hot 64-byte code lines: {len({(o, a // 64) for o, a in hot})}")
    per_function = collections.Counter(owner[a] for a in hot)
    for name, n in per_function.most_common(top):
        print(f"{n:6} {name[:110]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 25)
