"""Hostile layers, generated as they are read (never whole in memory or on disk): each ends the
scan with a reason, in bounded time and memory, with the default limits unless a test says."""

from __future__ import annotations

import gzip
import os
import threading
import time
from dataclasses import replace

import pytest

from scanner.inventory import wanted
from scanner.layers import Layer, read_image_files
from scanner.limits import GIB, MIB, Deadline, ScanFailed, ScanLimits
from tests.support.layers import (
    TAR_LAYER,
    Blobs,
    big_file_stream,
    gzip_bomb,
    header,
    many_entries_stream,
    tar_bytes,
)

LIMITS = ScanLimits()


def scan(layer: Layer, chunks, limits: ScanLimits = LIMITS, deadline: Deadline | None = None):
    blobs = Blobs()
    blobs.add_stream(layer, chunks)
    return read_image_files([layer], blobs.open, wanted, limits, deadline or Deadline(limits.seconds))


def bounded(run) -> tuple[str, float, int]:
    """The failure's message, the seconds it took, and how far the process's resident memory
    rose meanwhile (sampled every 5 ms: C allocations such as the decoders' count too)."""
    start, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss() - start)
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        with pytest.raises(ScanFailed) as failure:
            run()
    finally:
        done.set()
        sampler.join()
    return str(failure.value), time.monotonic() - started, max(peak[0], _rss() - start)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_gzip_bomb_fails_as_soon_as_it_expands_past_the_ratio():
    layer, chunks = gzip_bomb(expanded_gib=10)
    assert layer.size < 12 * MIB  # 10 GiB of zeros in about 10 MiB
    reason, seconds, peak = bounded(lambda: scan(layer, chunks))
    assert "expands more than 500 times its size (a decompression bomb?)" in reason
    assert seconds < 20 and peak < 32 * MIB


def test_a_10_gib_file_fails_on_the_decompressed_bytes_limit():
    size = 10 * GIB
    layer = Layer("sha256:" + "a" * 64, size + 4096, TAR_LAYER)
    limits = replace(LIMITS, decompressed_bytes=1 * GIB)  # the default is 8 GiB: the same check, later
    reason, seconds, peak = bounded(lambda: scan(layer, big_file_stream("srv/huge.bin", size), limits))
    assert reason == "the image's layers expand to more than 1 GiB"
    assert seconds < 30 and peak < 32 * MIB


def test_a_million_entries_fail_on_the_entry_limit():
    layer = Layer("sha256:" + "b" * 64, 10 ** 6 * 512 + 1024, TAR_LAYER)
    limits = replace(LIMITS, entries=100_000)  # the default, 500,000, takes five times as long to reach
    reason, seconds, peak = bounded(lambda: scan(layer, many_entries_stream(10 ** 6), limits))
    assert reason == "the image's layers hold more than 100000 entries"
    assert seconds < 20 and peak < 32 * MIB


def test_the_default_limits_stop_a_10_gib_layer_and_a_million_entries():
    assert LIMITS.decompressed_bytes < 10 * GIB and LIMITS.entries < 10 ** 6


def test_a_100_mib_package_database_is_refused_without_being_read():
    size = 100 * MIB
    layer = Layer("sha256:" + "c" * 64, size + 4096, TAR_LAYER)
    reads = []

    def chunks():
        for chunk in big_file_stream("var/lib/dpkg/status", size)():
            reads.append(len(chunk))
            yield chunk
    reason, seconds, peak = bounded(lambda: scan(layer, chunks))
    assert reason == f"var/lib/dpkg/status in layer {layer.digest} is {size} bytes; the scanner reads files of " \
                     "at most 64 MiB"
    assert sum(reads) < 2 * MIB and peak < 8 * MIB


def test_the_files_read_are_bounded_in_total():
    limits = replace(LIMITS, collected_bytes=3 * MIB)
    blobs = Blobs()
    layers = [blobs.add(gzip.compress(tar_bytes({"var/lib/dpkg/status": bytes(MIB)}), mtime=0)) for _ in range(4)]
    with pytest.raises(ScanFailed, match="the files the scanner reads add up to more than 3 MiB"):
        read_image_files(layers, blobs.open, wanted, limits, Deadline(60))


def test_a_huge_extended_header_is_refused_before_it_is_read():
    pax = header("././@PaxHeader", 512 * MIB, b"x")
    layer = Layer("sha256:" + "d" * 64, 10 * GIB, TAR_LAYER)
    reason, _, peak = bounded(lambda: scan(layer, lambda: iter([pax])))
    assert "extended header of 536870912 bytes is over the limit of 1 MiB" in reason and peak < 8 * MIB


def test_a_stalled_scan_ends_at_its_deadline():
    clock = iter(range(0, 10_000, 100))
    deadline = Deadline(250, clock=lambda: next(clock))
    layer = Layer("sha256:" + "e" * 64, 10 * GIB, TAR_LAYER)
    with pytest.raises(ScanFailed, match="longer than its limit of 250 seconds"):
        scan(layer, big_file_stream("srv/slow.bin", GIB), deadline=deadline)


def test_a_cancelled_scan_stops():
    deadline = Deadline(600)
    deadline.cancel()
    layer = Layer("sha256:" + "f" * 64, 10 * GIB, TAR_LAYER)
    with pytest.raises(ScanFailed, match="the scan was stopped"):
        scan(layer, big_file_stream("srv/x.bin", MIB), deadline=deadline)


def test_too_many_layers_are_refused():
    layers = [Layer("sha256:" + "0" * 64, 1, TAR_LAYER)] * 600
    with pytest.raises(ScanFailed, match="600 layers; the limit is 512"):
        read_image_files(layers, Blobs().open, wanted, LIMITS, Deadline(60))
