"""The HE benchmark measures correct aggregations: every row recovers the plain sum."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.bench import he as bench_he


@pytest.fixture(scope="module")
def small_keys():
    from phe import paillier

    return paillier.generate_paillier_keypair(n_length=512)  # small key: a fast check


def test_phe_runs_with_gmpy2():
    assert bench_he.require_gmpy2()


def test_packing_round_trips_a_sum():
    slots = bench_he.slots_per_ciphertext()
    assert slots == 31  # 2048-bit key, 64-bit slots: what peer tools pack
    vectors = [bench_he.bank_vector(k, 100) for k in range(3)]
    packed = [bench_he.pack(v, slots) for v in vectors]
    summed = [sum(column) for column in zip(*packed, strict=True)]
    back = bench_he.unpack(summed, 100, slots, summands=3)
    assert np.max(np.abs(back - np.sum(vectors, axis=0))) <= 3 * 2.0**-bench_he.FRACTION_BITS


@pytest.mark.parametrize("bench", [bench_he.bench_paillier, bench_he.bench_paillier_packed])
def test_paillier_rows_check_the_decrypted_sum(bench, small_keys):
    row = bench(3, 20, small_keys, sample=64, sample_banks=3)
    assert row["banks"] == 3 and row["round_s"] > 0 and not row["extrapolated"]
    assert row["max_abs_error"] <= 3 * 2.0**-bench_he.FRACTION_BITS


def test_paillier_rows_extrapolate_from_a_sample_and_say_so(small_keys):
    row = bench_he.bench_paillier(5, 20, small_keys, sample=4, sample_banks=2)
    assert row["extrapolated"] and row["timed_sample"] == "4 values x 2 banks, median of 3"
    assert row["encrypt_all_banks_s"] == pytest.approx(5 * row["per_bank_encrypt_s"])


def test_ckks_row_spans_several_ciphertexts():
    row = bench_he.bench_ckks(2, 5000, bench_he.ckks_context(), repeats=1)
    assert row["ciphertexts_per_bank"] == 2 and row["max_abs_error"] < 1e-4


def test_a_wrong_sum_stops_the_benchmark():
    with pytest.raises(AssertionError, match="off by"):
        bench_he._check("x", np.array([1.0]), np.array([1.1]), 1e-3)


def test_markdown_has_one_ratio_per_method():
    rows = [
        {"method": "masking", "banks": 3, "size": 40, "round_s": 0.002, "bytes_per_bank": 344,
         "extrapolated": False},
        {"method": "ckks", "banks": 3, "size": 40, "round_s": 0.02, "bytes_per_bank": 331_000,
         "extrapolated": False, "values_per_ciphertext": 4096},
    ]  # fmt: skip
    table = bench_he.markdown(rows)
    assert "| 10x |" in table and "CKKS (TenSEAL) (4,096/ct)" in table


def test_gmpy2_speedup_times_both_paths(small_keys):
    import phe.util

    before = phe.util.HAVE_GMP
    timing = bench_he.gmpy2_speedup(small_keys, count=3)
    assert phe.util.HAVE_GMP == before
    assert timing["with_gmpy2_s"] > 0 and timing["without_gmpy2_s"] > 0


def test_masking_row_recovers_the_same_sum():
    row = bench_he.bench_masking(3, 50, rounds=2)
    assert row["max_abs_error"] <= 3 * 2.0**-bench_he.FRACTION_BITS
    assert row["bytes_per_bank"] == 8 * 51 and row["round_s"] > 0
