"""CPU features are read from /proc/cpuinfo, never assumed."""

from __future__ import annotations

from ndr_edge.cpu import cpu_features


def test_flags_parsed_from_a_cpuinfo_file(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    cpu_features.cache_clear()
    try:
        found = cpu_features(str(info))
    finally:
        cpu_features.cache_clear()
    assert found.model == "Test CPU 9000"
    assert found.avx512 and found.vnni and not found.bf16
    assert found.summary() == "Test CPU 9000 (AVX512, VNNI)"


def test_missing_cpuinfo_means_no_features(tmp_path):
    cpu_features.cache_clear()
    try:
        found = cpu_features(str(tmp_path / "absent"))
    finally:
        cpu_features.cache_clear()
    assert not (found.bf16 or found.vnni or found.avx512)
