//! The face gallery: identities with one or more L2-normalised embeddings, matched by cosine
//! similarity.
//!
//! Matching scans an int8 copy of every embedding (4x less memory traffic than f32; AVX-512
//! VNNI or AVX2 when the CPU has them, see [`super::int8`]), then re-scores exactly in f32
//! every row whose int8 score is within its quantisation error bound of the best: the top-1 is always the exact f32 scan's. Galleries
//! persist as a compact file: `SLGAL1\n`, a little-endian u32 header length, a JSON header
//! (model, dims, identities with their embedding counts) and the f32 embeddings in order.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

pub const FILE_MAGIC: &[u8; 7] = b"SLGAL1\n";
/// Limits of the file format when read back (far above any real gallery: 10 million
/// embeddings of 512-d are 20 GB).
pub const MAX_HEADER_BYTES: usize = 256 << 20;
pub const MAX_DIMS: usize = 8192;
pub const MAX_EMBEDDINGS: usize = 50_000_000;

/// Slack on the quantisation error bound for f32 rounding in the sums (dot products of unit
/// vectors of up to a few thousand dims: errors far below 1e-5).
const BOUND_SLACK: f32 = 1e-5;
/// Below this many rows the exact f32 scan is as fast as the two-pass one.
const EXACT_SCAN_ROWS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable identifier (a slug of the name unless given).
    pub id: String,
    /// Display name / label.
    pub name: String,
    /// Number of embeddings (rows) this identity has.
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub identity: usize,
    pub id: String,
    pub name: String,
    pub similarity: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(
        "embedding has {got} values, the gallery holds {expected}-d embeddings of model '{model}'"
    )]
    Dims {
        got: usize,
        expected: usize,
        model: String,
    },
    #[error(
        "gallery was made with model '{file}', this element uses '{wanted}' ({file_dims}-d vs {wanted_dims}-d): re-enrol with the same model"
    )]
    Model {
        file: String,
        wanted: String,
        file_dims: usize,
        wanted_dims: usize,
    },
    #[error("{path}: not a Sightline gallery file ({why})")]
    Format { path: String, why: String },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    model: String,
    dims: usize,
    identities: Vec<Identity>,
}

/// Gallery of identities for one embedding model.
#[derive(Debug, Clone, Default)]
pub struct Gallery {
    model: String,
    dims: usize,
    identities: Vec<Identity>,
    /// All embeddings, row-major, grouped by identity in `identities` order.
    rows: Vec<f32>,
    /// Identity index of each row.
    owner: Vec<u32>,
    /// int8 copy of `rows` and each row's dequantisation factor.
    q8: Vec<i8>,
    q8_scale: Vec<f32>,
    /// Each row's quantisation error |row - scale * q8 row| (L2).
    q8_err: Vec<f32>,
    /// Identity index by id.
    index: HashMap<String, u32>,
}

pub fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() { "identity".into() } else { s }
}

/// Appends the int8 copy of `v` to `out`; its dequantisation factor and error (L2 norm of
/// `v` minus the dequantised copy).
fn quantise(v: &[f32], out: &mut Vec<i8>) -> (f32, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let s = if max > 0.0 { 127.0 / max } else { 1.0 };
    let start = out.len();
    out.extend(v.iter().map(|x| (x * s).round().clamp(-127.0, 127.0) as i8));
    let err = v
        .iter()
        .zip(&out[start..])
        .map(|(x, q)| (x - *q as f32 / s).powi(2))
        .sum::<f32>()
        .sqrt();
    (1.0 / s, err)
}

impl Gallery {
    pub fn new(model: &str, dims: usize) -> Self {
        Gallery {
            model: model.to_string(),
            dims,
            ..Default::default()
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    pub fn len(&self) -> usize {
        self.identities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.owner.len()
    }

    /// Embeddings of identity `i`.
    pub fn embeddings_of(&self, i: usize) -> impl Iterator<Item = &[f32]> {
        self.owner
            .iter()
            .enumerate()
            .filter(move |(_, o)| **o as usize == i)
            .map(move |(r, _)| &self.rows[r * self.dims..(r + 1) * self.dims])
    }

    /// Checks that an embedding fits this gallery.
    pub fn check(&self, v: &[f32]) -> Result<(), GalleryError> {
        if v.len() != self.dims {
            return Err(GalleryError::Dims {
                got: v.len(),
                expected: self.dims,
                model: self.model.clone(),
            });
        }
        Ok(())
    }

    /// Adds an embedding for `name` (creating the identity, whose id is the name's slug);
    /// `v` is L2-normalised here.
    pub fn add(&mut self, name: &str, v: &[f32]) -> Result<usize, GalleryError> {
        self.add_to(&slug(name), name, v)
    }

    /// Adds an embedding to the identity `id` (created with `name` if new).
    fn add_to(&mut self, id: &str, name: &str, v: &[f32]) -> Result<usize, GalleryError> {
        self.check(v)?;
        let v = crate::embed::l2_normalised(v);
        let idx = match self.index.get(id) {
            Some(&i) => i as usize,
            None => {
                self.identities.push(Identity {
                    id: id.to_string(),
                    name: name.trim().to_string(),
                    count: 0,
                });
                let i = self.identities.len() - 1;
                self.index.insert(id.to_string(), i as u32);
                i
            }
        };
        self.identities[idx].count += 1;
        self.rows.extend_from_slice(&v);
        self.owner.push(idx as u32);
        let (s, err) = quantise(&v, &mut self.q8);
        self.q8_scale.push(s);
        self.q8_err.push(err);
        Ok(idx)
    }

    /// Row indices grouped by identity (in identity order), each identity's rows in the order
    /// they were added.
    fn rows_by_identity(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.owner.len()).collect();
        order.sort_by_key(|&r| self.owner[r]);
        order
    }

    /// Removes an identity by name or id; true if it was there.
    pub fn remove(&mut self, name_or_id: &str) -> bool {
        let Some(idx) = self
            .identities
            .iter()
            .position(|i| i.id == name_or_id || i.name == name_or_id || i.id == slug(name_or_id))
        else {
            return false;
        };
        let old = std::mem::replace(self, Gallery::new(&self.model, self.dims));
        for r in old.rows_by_identity() {
            let i = old.owner[r] as usize;
            if i != idx {
                let ident = &old.identities[i];
                let _ = self.add_to(
                    &ident.id,
                    &ident.name,
                    &old.rows[r * old.dims..][..old.dims],
                );
            }
        }
        true
    }

    /// Adds every identity of `other` (same model) to this gallery; identities with the same
    /// id get the other's embeddings too.
    pub fn merge(&mut self, other: &Gallery) -> Result<(), GalleryError> {
        for r in other.rows_by_identity() {
            let ident = &other.identities[other.owner[r] as usize];
            self.add_to(
                &ident.id,
                &ident.name,
                &other.rows[r * other.dims..][..other.dims],
            )?;
        }
        Ok(())
    }

    /// The best-matching identity of `q` (L2-normalised), if the gallery is not empty.
    pub fn best_match(&self, q: &[f32]) -> Option<Match> {
        if self.owner.is_empty() || q.len() != self.dims {
            return None;
        }
        let d = self.dims;
        let exact = |r: usize| -> f32 { crate::embed::cosine(&self.rows[r * d..(r + 1) * d], q) };
        let best_row = if self.owner.len() <= EXACT_SCAN_ROWS {
            (0..self.owner.len())
                .map(|r| (r, exact(r)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        } else {
            let mut qq = Vec::with_capacity(d);
            let (sq, eq) = quantise(q, &mut qq);
            let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt();
            // q.r = q^.r^ + q.(r - r^) + (q - q^).r^, so the int8 score is within
            // |q| e_r + e_q (1 + e_r) of the exact one (|r| = 1). The exact best row scores at
            // least the best lower bound, so every row whose upper bound reaches it is a
            // candidate, and the exact best is among them.
            let mut floor = f32::NEG_INFINITY;
            let mut candidates: Vec<(f32, usize)> = Vec::new();
            // Row r's bound is e_r (|q| + e_q) + e_q + slack.
            let (w, c) = (qn + eq, eq + BOUND_SLACK);
            // Blocks of rows: the block's integer dots and bounds stay in L1; each pass over
            // a block is a plain loop the compiler vectorises (8 lanes for the maximum).
            const BLOCK: usize = 512;
            let (mut dots, mut low, mut high) = ([0i32; BLOCK], [0f32; BLOCK], [0f32; BLOCK]);
            for (b, block) in self.q8.chunks(BLOCK * d).enumerate() {
                let n = block.len() / d;
                let first = b * BLOCK;
                super::int8::dots(block, &qq, &mut dots[..n]);
                let (scale, err) = (
                    &self.q8_scale[first..first + n],
                    &self.q8_err[first..first + n],
                );
                for k in 0..n {
                    let approx = dots[k] as f32 * scale[k] * sq;
                    let bound = err[k] * w + c;
                    low[k] = approx - bound;
                    high[k] = approx + bound;
                }
                let mut lanes = [f32::NEG_INFINITY; 8];
                for chunk in low[..n].chunks(8) {
                    for (m, &x) in lanes.iter_mut().zip(chunk) {
                        if x > *m {
                            *m = x;
                        }
                    }
                }
                floor = lanes.iter().fold(floor, |m, &x| m.max(x));
                for (k, &h) in high[..n].iter().enumerate() {
                    if h >= floor {
                        candidates.push((h, first + k));
                    }
                }
            }
            candidates
                .into_iter()
                .filter(|&(upper, _)| upper >= floor)
                .map(|(_, r)| (r, exact(r)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        }?;
        let (r, sim) = best_row;
        let i = self.owner[r] as usize;
        let ident = &self.identities[i];
        Some(Match {
            identity: i,
            id: ident.id.clone(),
            name: ident.name.clone(),
            similarity: sim,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            version: 1,
            model: self.model.clone(),
            dims: self.dims,
            identities: self.identities.clone(),
        };
        // Rows grouped by identity, in identity order.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(FILE_MAGIC.len() + 4 + json.len() + self.rows.len() * 4);
        out.extend_from_slice(FILE_MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for r in self.rows_by_identity() {
            for x in &self.rows[r * self.dims..(r + 1) * self.dims] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Reads the gallery file format. Every size comes from the data and is checked: a
    /// truncated, oversized or inconsistent file (or Redis entry) is a `Format` error naming
    /// `origin`, never a panic, a huge allocation or a hang.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, GalleryError> {
        let fmt = |why: String| GalleryError::Format {
            path: origin.to_string(),
            why,
        };
        if bytes.len() < FILE_MAGIC.len() + 4 || &bytes[..FILE_MAGIC.len()] != FILE_MAGIC {
            return Err(fmt("missing SLGAL1 magic".into()));
        }
        let n = u32::from_le_bytes(
            bytes[7..11]
                .try_into()
                .map_err(|_| fmt("short header".into()))?,
        ) as usize;
        if n > MAX_HEADER_BYTES {
            return Err(fmt(format!(
                "header of {n} bytes (at most {MAX_HEADER_BYTES})"
            )));
        }
        let body_at = 11usize
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| fmt(format!("truncated header ({n} bytes announced)")))?;
        let json = &bytes[11..body_at];
        let header: Header =
            serde_json::from_slice(json).map_err(|e| fmt(format!("bad header: {e}")))?;
        if header.version != 1 {
            return Err(fmt(format!(
                "version {} (this build reads 1)",
                header.version
            )));
        }
        if header.dims == 0 || header.dims > MAX_DIMS {
            return Err(fmt(format!("dims {} (1 to {MAX_DIMS})", header.dims)));
        }
        let body = &bytes[body_at..];
        // Checked: the counts come from the file (or from another node through Redis).
        let total = header
            .identities
            .iter()
            .try_fold(0usize, |t, i| t.checked_add(i.count))
            .filter(|&t| t <= MAX_EMBEDDINGS)
            .ok_or_else(|| fmt(format!("more than {MAX_EMBEDDINGS} embeddings announced")))?;
        let want = total
            .checked_mul(header.dims)
            .and_then(|x| x.checked_mul(4));
        if want != Some(body.len()) {
            return Err(fmt(format!(
                "{} bytes of embeddings, header says {} x {}-d",
                body.len(),
                total,
                header.dims
            )));
        }
        if let Some(k) = body
            .chunks_exact(4)
            .position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
        {
            return Err(fmt(format!("embedding value {k} is not a finite number")));
        }
        let mut g = Gallery::new(&header.model, header.dims);
        let mut floats = body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let mut v = vec![0.0f32; header.dims];
        for ident in &header.identities {
            for _ in 0..ident.count {
                for x in v.iter_mut() {
                    *x = floats.next().unwrap_or(0.0);
                }
                g.add_to(&ident.id, &ident.name, &v)?;
            }
        }
        Ok(g)
    }

    pub fn save(&self, path: &Path) -> Result<(), GalleryError> {
        let io = |err| GalleryError::Io {
            path: path.display().to_string(),
            err,
        };
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&self.to_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        // Atomic replace: running pipelines that watch the file never read half a gallery.
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Self, GalleryError> {
        let io = |err| GalleryError::Io {
            path: path.display().to_string(),
            err,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Gallery::from_bytes(&bytes, &path.display().to_string())
    }

    /// Errors unless this gallery was made with `model` (`dims`-d).
    pub fn expect_model(&self, model: &str, dims: usize) -> Result<(), GalleryError> {
        if self.dims != dims || (!self.model.is_empty() && self.model != model) {
            return Err(GalleryError::Model {
                file: self.model.clone(),
                wanted: model.to_string(),
                file_dims: self.dims,
                wanted_dims: dims,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random unit vectors.
    fn vecs(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..d)
                    .map(|_| {
                        s = s
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                    })
                    .collect();
                crate::embed::l2_normalised(&v)
            })
            .collect()
    }

    #[test]
    fn best_match_is_exact_for_small_and_large_galleries() {
        for n in [10, 5000] {
            let vs = vecs(n, 192, n as u64);
            let mut g = Gallery::new("m", 192);
            for (i, v) in vs.iter().enumerate() {
                g.add(&format!("person {i}"), v).unwrap();
            }
            for probe in [3usize, n / 2, n - 1] {
                // A noisy copy of a gallery vector.
                let noise = &vecs(1, 192, 99 + probe as u64)[0];
                let q = crate::embed::l2_normalised(
                    &vs[probe]
                        .iter()
                        .zip(noise)
                        .map(|(a, b)| a + 0.3 * b)
                        .collect::<Vec<_>>(),
                );
                let m = g.best_match(&q).unwrap();
                assert_eq!(m.identity, probe, "n={n}");
                let exact = crate::embed::cosine(&vs[probe], &q);
                assert!((m.similarity - exact).abs() < 1e-5);
            }
        }
    }

    /// The int8 pass cannot tell near-duplicates apart; the error bound keeps all of them
    /// for the exact re-score, so the top-1 is the exact f32 scan's on every probe.
    #[test]
    fn the_top1_is_the_exact_scans_among_near_duplicates() {
        let base = &vecs(1, 192, 5)[0];
        let jitter = vecs(4000, 192, 6);
        let rows: Vec<Vec<f32>> = jitter
            .iter()
            .map(|j| {
                crate::embed::l2_normalised(
                    &base
                        .iter()
                        .zip(j)
                        .map(|(a, b)| a + 0.004 * b)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let mut g = Gallery::new("m", 192);
        for (i, v) in rows.iter().enumerate() {
            g.add(&format!("p{i}"), v).unwrap();
        }
        for (k, noise) in vecs(50, 192, 7).iter().enumerate() {
            let q = crate::embed::l2_normalised(
                &base
                    .iter()
                    .zip(noise)
                    .map(|(a, b)| a + 0.004 * b)
                    .collect::<Vec<_>>(),
            );
            // The exact f32 scan over the gallery's own (stored) rows.
            let want = (0..rows.len())
                .map(|i| crate::embed::cosine(g.embeddings_of(i).next().unwrap(), &q))
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            let m = g.best_match(&q).unwrap();
            assert_eq!(m.identity, want.0, "probe {k}");
            assert!((m.similarity - want.1).abs() < 1e-6, "probe {k}");
        }
    }

    #[test]
    fn several_embeddings_per_identity_and_removal() {
        let vs = vecs(4, 16, 7);
        let mut g = Gallery::new("m", 16);
        g.add("Alice Smith", &vs[0]).unwrap();
        g.add("Bob", &vs[1]).unwrap();
        g.add("alice smith", &vs[2]).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.identities()[0].id, "alice-smith");
        assert_eq!(g.identities()[0].count, 2);
        assert_eq!(g.best_match(&vs[2]).unwrap().name, "Alice Smith");
        assert!(g.remove("bob"));
        assert!(!g.remove("carol"));
        assert_eq!(g.len(), 1);
        assert_eq!(g.rows(), 2);
        assert_eq!(g.best_match(&vs[1]).unwrap().name, "Alice Smith");
    }

    /// Identities are keyed by id: two people of the same name with their own ids stay
    /// apart through a file, a merge and a removal, and rows added out of order are grouped
    /// in the file in the order they were added.
    #[test]
    fn ids_not_names_key_identities_through_files_merges_and_removals() {
        let vs = vecs(5, 4, 11);
        let bytes = |vs: &[&Vec<f32>]| -> Vec<u8> {
            let json = r#"{"version":1,"model":"m","dims":4,"identities":[{"id":"emp-7","name":"Ann Lee","count":2},{"id":"emp-8","name":"Ann Lee","count":1}]}"#;
            let mut b = FILE_MAGIC.to_vec();
            b.extend_from_slice(&(json.len() as u32).to_le_bytes());
            b.extend_from_slice(json.as_bytes());
            for v in vs {
                for x in v.iter() {
                    b.extend_from_slice(&x.to_le_bytes());
                }
            }
            b
        };
        let g = Gallery::from_bytes(&bytes(&[&vs[0], &vs[1], &vs[2]]), "two.slg").unwrap();
        let ids: Vec<(&str, usize)> = g
            .identities()
            .iter()
            .map(|i| (i.id.as_str(), i.count))
            .collect();
        assert_eq!(ids, [("emp-7", 2), ("emp-8", 1)]);
        assert_eq!(g.best_match(&vs[2]).unwrap().id, "emp-8");
        // Rows added out of identity order are written grouped, each identity's in order.
        let mut h = Gallery::new("m", 4);
        for (name, v) in [("A", &vs[0]), ("B", &vs[3]), ("A", &vs[1]), ("B", &vs[4])] {
            h.add(name, v).unwrap();
        }
        let back = Gallery::from_bytes(&h.to_bytes(), "h.slg").unwrap();
        let a: Vec<&[f32]> = back.embeddings_of(0).collect();
        assert_eq!(a.len(), 2);
        for (got, want) in a.iter().zip([&vs[0], &vs[1]]) {
            // (re-normalised when read back: equal within f32 rounding)
            assert!(got.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-6));
        }
        // Merging the file into a gallery that has emp-7 adds to it, and keeps emp-8 apart.
        let mut m = Gallery::from_bytes(&bytes(&[&vs[3], &vs[4], &vs[2]]), "m.slg").unwrap();
        m.remove("emp-8");
        m.merge(&g).unwrap();
        let ids: Vec<(&str, usize)> = m
            .identities()
            .iter()
            .map(|i| (i.id.as_str(), i.count))
            .collect();
        assert_eq!(ids, [("emp-7", 4), ("emp-8", 1)]);
        assert!(m.remove("emp-7"));
        assert_eq!(m.identities().len(), 1);
        assert_eq!(m.identities()[0].id, "emp-8");
        assert_eq!(m.rows(), 1);
    }

    #[test]
    fn file_round_trip_and_errors() {
        let vs = vecs(3, 8, 1);
        let mut g = Gallery::new("mobilefacenet", 8);
        for (i, v) in vs.iter().enumerate() {
            g.add(&format!("p{i}"), v).unwrap();
        }
        let b = g.to_bytes();
        let back = Gallery::from_bytes(&b, "mem").unwrap();
        assert_eq!(back.identities(), g.identities());
        assert_eq!(back.best_match(&vs[1]).unwrap().name, "p1");
        assert!(matches!(
            Gallery::from_bytes(b"garbage", "x"),
            Err(GalleryError::Format { .. })
        ));
        assert!(matches!(
            Gallery::from_bytes(&b[..b.len() - 3], "x"),
            Err(GalleryError::Format { .. })
        ));
        assert!(g.add("x", &[0.0; 5]).is_err());
        // Headers that lie: counts that overflow, sizes beyond the data, NaN values.
        let header = |json: &str, body: &[u8]| {
            let mut b = FILE_MAGIC.to_vec();
            b.extend_from_slice(&(json.len() as u32).to_le_bytes());
            b.extend_from_slice(json.as_bytes());
            b.extend_from_slice(body);
            Gallery::from_bytes(&b, "bad.slg")
        };
        for (json, body, why) in [
            (
                r#"{"version":1,"model":"m","dims":8,"identities":[{"id":"a","name":"a","count":18446744073709551615},{"id":"b","name":"b","count":2}]}"#,
                &[0u8; 32][..],
                "embeddings announced",
            ),
            (
                r#"{"version":1,"model":"m","dims":4611686018427387904,"identities":[{"id":"a","name":"a","count":4}]}"#,
                &[0u8; 0][..],
                "dims",
            ),
            (
                r#"{"version":1,"model":"m","dims":1,"identities":[{"id":"a","name":"a","count":1}]}"#,
                &f32::NAN.to_le_bytes()[..],
                "finite",
            ),
        ] {
            let e = header(json, body).unwrap_err().to_string();
            assert!(e.contains("bad.slg") && e.contains(why), "{e}");
        }
        let mut b = FILE_MAGIC.to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = Gallery::from_bytes(&b, "huge.slg").unwrap_err().to_string();
        assert!(e.contains("header of"), "{e}");
        let mut b = FILE_MAGIC.to_vec();
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.extend_from_slice(b"{}");
        let e = Gallery::from_bytes(&b, "cut.slg").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let err = back.expect_model("w600k-mbf", 512).unwrap_err().to_string();
        assert!(
            err.contains("mobilefacenet") && err.contains("w600k-mbf"),
            "{err}"
        );
        assert!(
            Gallery::new("m", 8).best_match(&vs[0]).is_none(),
            "empty gallery: no match"
        );
    }
}
