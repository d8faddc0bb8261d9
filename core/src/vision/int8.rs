//! int8 dot products of one query with many rows: the gallery's first pass.
//!
//! Values are in [-127, 127] (the gallery's quantiser clamps), so every kernel computes the
//! exact integer sums and they all agree bit for bit. The kernel is picked once per call from
//! what the CPU has:
//!
//! - AVX-512 VNNI (`vpdpbusd`, 64 byte pairs per instruction): it multiplies unsigned by
//!   signed bytes, so each row byte is flipped to `row + 128` on the fly and `128 * sum(q)`
//!   subtracted once per row;
//! - AVX2: `|row| * (q * sign(row))` with `vpmaddubsw` (pairs of at most 2 * 127 * 127, no
//!   saturation) and `vpmaddwd` into 32-bit lanes;
//! - anything else (or dims that are not a multiple of the vector width): portable code that
//!   the compiler vectorises as it can.

/// Dot products of `q` (`d` = `q.len()` values) with each `d`-value row of `rows`, into
/// `out` (one per row; `out.len()` rows are read).
pub fn dots(rows: &[i8], q: &[i8], out: &mut [i32]) {
    let d = q.len();
    assert!(
        d > 0 && rows.len() >= out.len() * d,
        "rows shorter than out"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if d.is_multiple_of(64) && has_vnni() {
            // SAFETY: the CPU has AVX-512 F/BW/VNNI (checked); lengths checked above.
            return unsafe { dots_vnni(rows, q, out) };
        }
        if d.is_multiple_of(32) && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked); lengths checked above.
            return unsafe { dots_avx2(rows, q, out) };
        }
    }
    dots_portable(rows, q, out)
}

#[cfg(target_arch = "x86_64")]
fn has_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// The plain loop (any CPU, any dims).
pub fn dots_portable(rows: &[i8], q: &[i8], out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = dot(row, q);
    }
}

#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] as i32 * y[k] as i32;
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(x, y)| *x as i32 * *y as i32).sum();
    acc.iter().sum::<i32>() + tail
}

/// AVX2 kernel; `q.len()` a multiple of 32.
///
/// # Safety
/// The CPU must have AVX2, and `rows` hold `out.len()` rows of `q.len()` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(rows: &[i8], q: &[i8], out: &mut [i32]) {
    // SAFETY: the caller guarantees the CPU features and the lengths.
    unsafe {
        use std::arch::x86_64::*;
        let d = q.len();
        let ones = _mm256_set1_epi16(1);
        for (r, o) in out.iter_mut().enumerate() {
            let row = rows.as_ptr().add(r * d);
            let mut acc = _mm256_setzero_si256();
            for c in (0..d).step_by(32) {
                let a = _mm256_loadu_si256(row.add(c) as *const __m256i);
                let b = _mm256_loadu_si256(q.as_ptr().add(c) as *const __m256i);
                let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
            }
            let s = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
            *o = _mm_cvtsi128_si32(s);
        }
    }
}

/// AVX-512 VNNI kernel; `q.len()` a multiple of 64.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VNNI, and `rows` hold `out.len()` rows of `q.len()`
/// values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dots_vnni(rows: &[i8], q: &[i8], out: &mut [i32]) {
    // SAFETY: the caller guarantees the CPU features and the lengths.
    unsafe {
        use std::arch::x86_64::*;
        let d = q.len();
        let flip = _mm512_set1_epi8(i8::MIN);
        let bias = 128 * q.iter().map(|&x| x as i32).sum::<i32>();
        for (r, o) in out.iter_mut().enumerate() {
            let row = rows.as_ptr().add(r * d);
            let mut acc = _mm512_setzero_si512();
            for c in (0..d).step_by(64) {
                let a = _mm512_xor_si512(_mm512_loadu_si512(row.add(c) as *const _), flip);
                let b = _mm512_loadu_si512(q.as_ptr().add(c) as *const _);
                acc = _mm512_dpbusd_epi32(acc, a, b);
            }
            *o = _mm512_reduce_add_epi32(acc) - bias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows and queries over the whole range, the extremes included.
    fn data(n: usize, d: usize, seed: u64) -> Vec<i8> {
        let mut s = seed;
        (0..n * d)
            .map(|i| match i % 11 {
                0 => 127,
                1 => -127,
                2 => 0,
                _ => {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (((s >> 33) % 255) as i32 - 127) as i8
                }
            })
            .collect()
    }

    fn reference(rows: &[i8], q: &[i8]) -> Vec<i32> {
        rows.chunks_exact(q.len())
            .map(|r| r.iter().zip(q).map(|(a, b)| *a as i32 * *b as i32).sum())
            .collect()
    }

    #[test]
    fn every_kernel_gives_the_exact_integer_sums() {
        for d in [64, 128, 192, 512, 96, 200, 7] {
            let rows = data(37, d, d as u64);
            let q = data(1, d, 1000 + d as u64);
            let want = reference(&rows, &q);
            let mut got = vec![0; 37];
            dots(&rows, &q, &mut got);
            assert_eq!(got, want, "dispatch, d={d}");
            dots_portable(&rows, &q, &mut got);
            assert_eq!(got, want, "portable, d={d}");
            #[cfg(target_arch = "x86_64")]
            {
                if d.is_multiple_of(32) && std::is_x86_feature_detected!("avx2") {
                    got.fill(0);
                    unsafe { dots_avx2(&rows, &q, &mut got) };
                    assert_eq!(got, want, "avx2, d={d}");
                }
                if d.is_multiple_of(64) && has_vnni() {
                    got.fill(0);
                    unsafe { dots_vnni(&rows, &q, &mut got) };
                    assert_eq!(got, want, "vnni, d={d}");
                }
            }
        }
    }

    #[test]
    fn the_largest_sums_do_not_saturate() {
        // Every pair at the extreme: 512 * 127 * 127 and its negative.
        let d = 512;
        let rows: Vec<i8> = [vec![127i8; d], vec![-127i8; d]].concat();
        let q = vec![127i8; d];
        let mut got = vec![0; 2];
        dots(&rows, &q, &mut got);
        assert_eq!(got, [d as i32 * 127 * 127, -(d as i32) * 127 * 127]);
    }
}
