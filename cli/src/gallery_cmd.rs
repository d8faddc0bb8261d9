//! `sightline gallery`: enrol photos, list, remove, export/import, push/pull to Redis.

use clap::{Args, Subcommand};
use sightline_core::align::{RAW_CROP_112, align_into};
use sightline_core::detect::FaceDetector;
use sightline_core::embed::FaceEmbedder;
use sightline_core::enroll::{FacePolicy, embed_file, gallery_from_directory, review_consistency};
use sightline_core::gallery::Gallery;
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct GalleryArgs {
    /// Gallery file (created by `enroll` when missing).
    #[arg(
        long,
        short = 'g',
        env = "SIGHTLINE_GALLERY",
        default_value = "gallery.slg"
    )]
    pub file: PathBuf,
    /// Embedding model of a new gallery (mobilefacenet; w600k-mbf is non-commercial).
    #[arg(long, default_value = "mobilefacenet")]
    pub model: String,
    #[command(subcommand)]
    pub cmd: GalleryCmd,
}

#[derive(Subcommand)]
pub enum GalleryCmd {
    /// Enrol photos of one person, each reviewed: size, sharpness, pose, face cut by the
    /// edge, similarity to the person's other photos. A photo with no face, several people,
    /// or that would make a poor reference is refused (then nothing is saved); --largest
    /// takes the largest face of a group photo.
    Enroll {
        #[arg(long)]
        name: String,
        #[arg(long)]
        largest: bool,
        /// Review the photos only; enrol nothing.
        #[arg(long)]
        check: bool,
        /// Also write the aligned 112x112 face crops here (off by default: no face images
        /// are stored unless asked).
        #[arg(long)]
        save_crops: Option<PathBuf>,
        #[arg(required = true)]
        photos: Vec<PathBuf>,
    },
    /// List identities and their number of embeddings.
    List,
    /// Remove an identity (by name or id).
    Remove { name: String },
    /// Write the gallery as JSON (identities with their embeddings).
    Export { out: PathBuf },
    /// Add identities from a JSON export, or enrol a directory GALLERY/<name>/*.jpg|png.
    Import { input: PathBuf },
    /// Upload the gallery to Redis (one hash field per identity) and announce it, so every
    /// facematch following that key reloads. Use each node's own ACL user in the URL.
    Push {
        #[arg(long, env = "SIGHTLINE_REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value = "sightline:gallery")]
        key: String,
        /// Also delete identities that are in Redis but not in this gallery.
        #[arg(long)]
        replace: bool,
    },
    /// Download the shared gallery from Redis into the gallery file (replacing it).
    Pull {
        #[arg(long, env = "SIGHTLINE_REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value = "sightline:gallery")]
        key: String,
    },
}

pub fn run(a: GalleryArgs) -> Result<(), String> {
    crate::init_gst()?;
    match a.cmd {
        GalleryCmd::List => {
            let g = load(&a.file)?;
            println!(
                "{} identities, model {} ({}-d), {}",
                g.len(),
                g.model(),
                g.dims(),
                a.file.display()
            );
            for i in g.identities() {
                println!("  {:<24} id={:<24} embeddings={}", i.name, i.id, i.count);
            }
            Ok(())
        }
        GalleryCmd::Remove { name } => {
            let mut g = load(&a.file)?;
            if !g.remove(&name) {
                return Err(format!("no identity '{name}' in {}", a.file.display()));
            }
            g.save(&a.file).map_err(|e| e.to_string())?;
            println!("removed {name}; {} identities left", g.len());
            Ok(())
        }
        GalleryCmd::Export { out } => {
            let g = load(&a.file)?;
            let idents: Vec<serde_json::Value> = g
                .identities()
                .iter()
                .enumerate()
                .map(|(k, i)| {
                    serde_json::json!({"id": i.id, "name": i.name, "embeddings": g.embeddings_of(k).collect::<Vec<_>>()})
                })
                .collect();
            let doc = serde_json::json!({"format": "sightline-gallery", "version": 1, "model": g.model(), "dims": g.dims(), "identities": idents});
            std::fs::write(
                &out,
                serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?,
            )
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!("exported {} identities to {}", g.len(), out.display());
            Ok(())
        }
        GalleryCmd::Import { input } => {
            let mut g = load_or_new(&a.file, &a.model)?;
            let before = g.len();
            if input.is_dir() {
                let (mut det, emb) = models_for(g.model())?;
                let (dir_g, skipped) = gallery_from_directory(&input, &mut det, &emb)?;
                for s in &skipped {
                    eprintln!("skipped: {s}");
                }
                for (k, i) in dir_g.identities().iter().enumerate() {
                    for v in dir_g.embeddings_of(k) {
                        g.add(&i.name, v).map_err(|e| e.to_string())?;
                    }
                }
            } else {
                let text = std::fs::read_to_string(&input)
                    .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
                let doc: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not JSON: {e}", input.display()))?;
                let model = doc["model"].as_str().unwrap_or_default();
                let dims = doc["dims"].as_u64().unwrap_or(0) as usize;
                g.expect_model(model, dims)
                    .map_err(|e| format!("{}: {e}", input.display()))?;
                for i in doc["identities"]
                    .as_array()
                    .ok_or_else(|| format!("{}: no identities", input.display()))?
                {
                    let name = i["name"]
                        .as_str()
                        .ok_or_else(|| format!("{}: identity without name", input.display()))?;
                    for v in i["embeddings"].as_array().into_iter().flatten() {
                        let v: Vec<f32> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect();
                        g.add(name, &v)
                            .map_err(|e| format!("{}: {name}: {e}", input.display()))?;
                    }
                }
            }
            g.save(&a.file).map_err(|e| e.to_string())?;
            println!(
                "imported into {}: {} identities ({} new)",
                a.file.display(),
                g.len(),
                g.len() - before
            );
            Ok(())
        }
        GalleryCmd::Push {
            redis_url,
            key,
            replace,
        } => {
            let g = load(&a.file)?;
            let n = sightline_core::redis_store::push_gallery(&redis_url, &key, &g, replace)?;
            println!(
                "pushed {n} identities to {} key {key}",
                sightline_core::redis_store::redact(&redis_url)
            );
            Ok(())
        }
        GalleryCmd::Pull { redis_url, key } => {
            let spec = models::registry().map_err(|e| e.to_string())?;
            let model = if a.file.exists() {
                load(&a.file)?.model().to_string()
            } else {
                a.model.clone()
            };
            let dims = spec
                .get(&model)
                .and_then(|m| m.output.dims)
                .ok_or_else(|| format!("unknown embedding model '{model}'"))?;
            let g = sightline_core::redis_store::pull_gallery(&redis_url, &key, &model, dims)?;
            g.save(&a.file).map_err(|e| e.to_string())?;
            println!(
                "pulled {} identities from key {key} into {}",
                g.len(),
                a.file.display()
            );
            Ok(())
        }
        GalleryCmd::Enroll {
            name,
            largest,
            check,
            save_crops,
            photos,
        } => {
            let mut g = load_or_new(&a.file, &a.model)?;
            let (mut det, emb) = models_for(g.model())?;
            let threshold = match_threshold(g.model())?;
            let policy = if largest {
                FacePolicy::Largest
            } else {
                FacePolicy::Single
            };
            let mut done = Vec::new();
            let mut refused = 0;
            for p in &photos {
                match embed_file(&mut det, &emb, p, policy) {
                    Ok(e) => done.push((p, e)),
                    Err(e) => {
                        refused += 1;
                        eprintln!("refused: {e}");
                    }
                }
            }
            // Each photo against the person's other photos: enrolled before, or in this run.
            let enrolled: Vec<Vec<f32>> = g
                .identities()
                .iter()
                .position(|i| i.name == name)
                .map(|k| g.embeddings_of(k).map(|v| v.to_vec()).collect())
                .unwrap_or_default();
            let vectors: Vec<Vec<f32>> = done.iter().map(|(_, e)| e.embedding.clone()).collect();
            for (k, (p, e)) in done.iter_mut().enumerate() {
                let others: Vec<&[f32]> = enrolled
                    .iter()
                    .chain(
                        vectors
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != k)
                            .map(|(_, v)| v),
                    )
                    .map(|v| v.as_slice())
                    .collect();
                review_consistency(&mut e.review, &e.embedding, &others, threshold);
                let r = &e.review;
                let verdict = if r.refused() {
                    refused += 1;
                    format!("refused: {}", r.summary())
                } else if r.findings.is_empty() {
                    "ok".to_string()
                } else {
                    format!("warning: {}", r.summary())
                };
                let line = format!(
                    "{}: face {:.0} px, sharpness {:.0}, frontality {:.2}{}{} -> {verdict}",
                    p.display(),
                    r.size,
                    r.sharpness,
                    r.frontality,
                    if r.outside > 0.0 {
                        format!(", {:.0} % outside the photo", r.outside * 100.0)
                    } else {
                        String::new()
                    },
                    r.similarity
                        .map(|s| format!(", similarity to the other photos {s:.2}"))
                        .unwrap_or_default(),
                );
                if r.refused() {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
            if refused > 0 {
                return Err(format!(
                    "{refused} of {} photo(s) refused; nothing enrolled",
                    photos.len()
                ));
            }
            if check {
                println!(
                    "{} photo(s) checked; nothing enrolled (--check)",
                    photos.len()
                );
                return Ok(());
            }
            for (k, (p, e)) in done.iter().enumerate() {
                if let Some(dir) = &save_crops
                    && let Some(lm) = e.face.landmarks
                {
                    save_crop(p, &lm, dir, &name, k)?;
                }
                g.add(&name, &e.embedding).map_err(|e| e.to_string())?;
            }
            g.save(&a.file).map_err(|e| e.to_string())?;
            println!(
                "enrolled {name}: {} photo(s); {} now has {} identities",
                done.len(),
                a.file.display(),
                g.len()
            );
            Ok(())
        }
    }
}

/// The match threshold facematch uses for `model` by default (its calibrated threshold).
pub fn match_threshold(model: &str) -> Result<f32, String> {
    models::registry()
        .map_err(|e| e.to_string())?
        .get(model)
        .and_then(|m| m.output.match_threshold)
        .ok_or_else(|| format!("model '{model}' has no match threshold"))
}

fn load(path: &Path) -> Result<Gallery, String> {
    Gallery::load(path).map_err(|e| e.to_string())
}

fn load_or_new(path: &Path, model: &str) -> Result<Gallery, String> {
    if path.exists() {
        return load(path);
    }
    let spec = models::registry()
        .map_err(|e| e.to_string())?
        .get(model)
        .ok_or_else(|| format!("unknown embedding model '{model}'"))?;
    Ok(Gallery::new(model, spec.output.dims.unwrap_or(0)))
}

/// The detector and the gallery's embedding model.
pub fn models_for(model: &str) -> Result<(FaceDetector, FaceEmbedder), String> {
    let engine = |n: &str| -> Result<_, String> {
        let m = models::resolve(n, n).map_err(|e| e.to_string())?;
        Engine::shared(&m, &EngineOptions::default()).map_err(|e| e.to_string())
    };
    let det = FaceDetector::new(engine("yunet-n")?).map_err(|e| e.to_string())?;
    let emb = FaceEmbedder::new(engine(model)?).map_err(|e| e.to_string())?;
    if emb.dims() == 0 {
        return Err(format!("model '{model}' is not a face embedding model"));
    }
    Ok((det, emb))
}

/// Writes the aligned crop of `photo` as DIR/<name>-<k>.png (only when the user asks).
fn save_crop(
    photo: &Path,
    lm: &[[f32; 2]; 5],
    dir: &Path,
    name: &str,
    k: usize,
) -> Result<(), String> {
    let img = sightline_core::video::decode_image(photo)?;
    let view = img.view().map_err(|e| e.to_string())?;
    let t = RAW_CROP_112;
    let mut planar = vec![0.0f32; t.len()];
    align_into(&view, lm, &t, &mut planar);
    let n = 112 * 112;
    let rgb: Vec<u8> = (0..n)
        .flat_map(|i| [planar[i], planar[n + i], planar[2 * n + i]])
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join(format!("{}-{k}.png", sightline_core::gallery::slug(name)));
    sightline_core::video::save_png(&out, &rgb, 112, 112)
}
