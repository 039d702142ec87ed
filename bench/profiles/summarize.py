#!/usr/bin/env python3
"""Summarises a folded-stack profile (inferno-collapse-perf --all output) of the agent:
share of samples by thread, by self function, and by the stages of a row (snapshot or
change stream).

    summarize.py COLLAPSED [ROWS]

Sample weights are perf's periods; with the cpu-clock event (what a VM without hardware
counters gives) a period is nanoseconds of CPU, so with ROWS each stage is also shown as
CPU-µs per row. perf's own overhead (DWARF stack copies) inflates them: compare profiles
with each other, not with unprofiled runs.
"""
import collections
import sys

# Stage of a row: the first of these substrings found in a stack, outermost frame first, names
# where the sample's time went. Order matters: more specific stages first.
STAGES = [
    ("delivery reports (librdkafka poll thread: oneshot send, message free)", lambda s, t: t == "producer_pollin"),
    ("librdkafka broker thread: compression", lambda s, t: t.startswith("rdk:broker") and ("ZSTD" in s or "LZ4" in s or "snappy" in s or "gzip" in s or "deflate" in s)),
    ("librdkafka broker thread: batching, queues, I/O", lambda s, t: t.startswith("rdk:broker")),
    ("chunk read: COPY, split, decode (source)", lambda s, t: "read_chunk" in s),
    ("acknowledgement queue (delivery futures)", lambda s, t: "AckQueue" in s or "FuturesOrdered" in s or "settle_one" in s),
    ("produce call (rd_kafka_producev: copy, enqueue)", lambda s, t: "send_result" in s or "rd_kafka_producev" in s),
    ("Avro encode (key + value)", lambda s, t: "encode_value" in s or "encode_key" in s),
    ("other record building (headers, store key, limits)", lambda s, t: "Publisher<S>::publish" in s),
    ("window (key index) and emit loop", lambda s, t: "Window" in s or "emit_window" in s),
    ("Kafka transaction commit", lambda s, t: "commit_with" in s or "Ring" in s),
    ("change stream: receive and decode (pgoutput / row binlog → rows)", lambda s, t: "cdc_codec::" in s or "::stream::" in s or "replication::" in s),
    ("other agent threads", lambda s, t: t != "tokio-rt-worker"),
    ("other (main task: decode into rows, drop, allocator, runtime)", lambda s, t: True),
]


def main():
    path = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else None
    threads, selfs, stages = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in open(path):
        stack, n = line.rstrip("\n").rsplit(" ", 1)
        n = int(n)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        selfs[frames[-1]] += n
        for name, test in STAGES:
            if test(stack, frames[0]):
                stages[name] += n
                break
    print(f"samples: {total}")
    print("\nby thread:")
    for t, n in threads.most_common(8):
        print(f"  {100 * n / total:5.1f}%  {t}")
    print("\nby stage of a row:")
    for name, _ in STAGES:
        n = stages[name]
        per_row = ""
        if rows:
            per_row = f"  {n / rows / 1e3:6.2f} µs/row"
        print(f"  {100 * n / total:5.1f}%{per_row}  {name}")
    if rows:
        print(f"  total {total / rows / 1e3:.2f} CPU-µs/row (cpu-clock ns weights)")
    print("\ntop functions by self time:")
    for f, n in selfs.most_common(30):
        print(f"  {100 * n / total:5.1f}%  {f[:140]}")


if __name__ == "__main__":
    main()
