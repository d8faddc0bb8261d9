//! The model registry (`models/models.toml`, compiled in) and model file resolution.
//!
//! A model is named either by its registry name (`yunet-n`), by its file name, or by a path.
//! Files are looked up in `$SIGHTLINE_MODELS` (colon-separated), the installed data directory and
//! the user cache, and their sha256 is checked against the registry before use.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

/// The registry text, as committed in `models/models.toml`.
pub const MODELS_TOML: &str = include_str!("../../../models/models.toml");

/// Installed data directory, set by meson at build time (`SIGHTLINE_DATADIR`).
pub const INSTALLED_MODEL_DIR: Option<&str> = option_env!("SIGHTLINE_MODEL_DIR");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ColorOrder {
    #[serde(rename = "RGB")]
    Rgb,
    #[serde(rename = "BGR")]
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Keep the frame size (or a scaled size), pad bottom/right up to the alignment.
    PadBottomRight,
    /// Scale to fit a fixed tensor, keep aspect ratio, content at the top-left.
    LetterboxTopLeft,
    /// Input is an aligned face crop produced by `align`.
    AlignedFace,
    /// Stretch to the tensor size, aspect ratio not kept.
    Stretch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderKind {
    Yunet,
    Yolox,
    Embedding,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub layout: String,
    pub color: ColorOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// N, C, H, W; 0 marks a dynamic dimension.
    pub dims: [i64; 4],
    pub align: u32,
    pub resize: ResizeMode,
    pub pad_value: f32,
}

impl InputSpec {
    pub fn dynamic_batch(&self) -> bool {
        self.dims[0] == 0
    }

    /// Fixed (height, width) of the tensor, if the model has one.
    pub fn fixed_size(&self) -> Option<(u32, u32)> {
        (self.dims[2] > 0 && self.dims[3] > 0).then_some((self.dims[2] as u32, self.dims[3] as u32))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputSpec {
    pub decoder: DecoderKind,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub strides: Vec<u32>,
    pub dims: Option<usize>,
    pub default_score_threshold: Option<f32>,
    pub default_nms_threshold: Option<f32>,
    /// Calibrated cosine threshold of an embedding model.
    pub match_threshold: Option<f32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    #[serde(skip)]
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub role: String,
    pub licence: String,
    pub commercial: bool,
    pub source: String,
    pub url: Option<String>,
    pub recipe: Option<String>,
    pub description: String,
    pub input: InputSpec,
    pub output: OutputSpec,
}

#[derive(Debug, Deserialize)]
pub struct Registry {
    pub models: BTreeMap<String, ModelSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("models.toml is invalid: {0}")]
    Registry(String),
    #[error(
        "unknown model '{0}': not a name in models.toml ({1}), and no such file (give a path to an .onnx file or a registry name)"
    )]
    Unknown(String, String),
    #[error(
        "model '{name}' ({file}) not found; looked in: {searched}. Get it with `sightline models fetch {name}` (or `sightline models fetch --from DIR`), or point SIGHTLINE_MODELS at the directory that holds it"
    )]
    NotFound {
        name: String,
        file: String,
        searched: String,
    },
    #[error(
        "model file {path} is not the expected '{name}': sha256 is {actual}, models.toml expects {expected}. The file is corrupt or a different model; fetch it again with `sightline models fetch --force {name}`"
    )]
    Checksum {
        path: PathBuf,
        name: String,
        expected: String,
        actual: String,
    },
    #[error("cannot read model file {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("model '{name}' is a {actual}, but this element needs a {expected}")]
    WrongRole {
        name: String,
        actual: String,
        expected: String,
    },
}

static REGISTRY: LazyLock<Result<Registry, String>> =
    LazyLock::new(|| Registry::parse(MODELS_TOML));

/// The compiled-in registry.
pub fn registry() -> Result<&'static Registry, ModelError> {
    REGISTRY
        .as_ref()
        .map_err(|e| ModelError::Registry(e.clone()))
}

impl Registry {
    /// Reads a models.toml (the compiled-in one, or any other: fuzzed).
    pub fn parse(text: &str) -> Result<Registry, String> {
        let mut reg: Registry = toml::from_str(text).map_err(|e| e.to_string())?;
        for (name, spec) in reg.models.iter_mut() {
            spec.name = name.clone();
        }
        Ok(reg)
    }

    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.get(name)
    }

    pub fn by_file(&self, file: &str) -> Option<&ModelSpec> {
        self.models.values().find(|m| m.file == file)
    }

    fn names(&self) -> String {
        self.models.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Directories searched for model files, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(v) = std::env::var_os("SIGHTLINE_MODELS") {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(d) = INSTALLED_MODEL_DIR {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/usr/local/share/sightline/models"));
    dirs.push(PathBuf::from("/usr/share/sightline/models"));
    dirs.push(user_cache_dir());
    dirs.dedup();
    dirs
}

/// `$XDG_CACHE_HOME/sightline/models`, or `~/.cache/sightline/models`.
pub fn user_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("sightline").join("models")
}

/// A model file found on disk, with the registry facts that describe its I/O.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub path: PathBuf,
    pub spec: ModelSpec,
    /// False when the file is a user-supplied model not listed in models.toml.
    pub verified: bool,
}

/// Resolves `model` (registry name, file name or path) to a checked file.
///
/// `default_spec` names the registry entry whose I/O description applies to a custom file
/// that is not in the registry (the element's default model).
pub fn resolve(model: &str, default_spec: &str) -> Result<ResolvedModel, ModelError> {
    let reg = registry()?;
    let as_path = Path::new(model);
    let looks_like_path = model.contains('/') || model.ends_with(".onnx");
    if looks_like_path && as_path.exists() {
        let file_name = as_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(spec) = reg.by_file(&file_name) {
            verify(as_path, spec)?;
            return Ok(ResolvedModel {
                path: as_path.to_path_buf(),
                spec: spec.clone(),
                verified: true,
            });
        }
        let spec = reg
            .get(default_spec)
            .ok_or_else(|| ModelError::Unknown(default_spec.to_string(), reg.names()))?;
        // A custom model: readable, I/O as the element's default model.
        fs::metadata(as_path).map_err(|err| ModelError::Io {
            path: as_path.to_path_buf(),
            err,
        })?;
        return Ok(ResolvedModel {
            path: as_path.to_path_buf(),
            spec: spec.clone(),
            verified: false,
        });
    }
    let spec = reg
        .get(model)
        .or_else(|| reg.by_file(model))
        .ok_or_else(|| {
            if looks_like_path {
                ModelError::NotFound {
                    name: model.to_string(),
                    file: model.to_string(),
                    searched: as_path.display().to_string(),
                }
            } else {
                ModelError::Unknown(model.to_string(), reg.names())
            }
        })?;
    let dirs = search_dirs();
    for dir in &dirs {
        let candidate = dir.join(&spec.file);
        if candidate.is_file() {
            verify(&candidate, spec)?;
            return Ok(ResolvedModel {
                path: candidate,
                spec: spec.clone(),
                verified: true,
            });
        }
    }
    Err(ModelError::NotFound {
        name: spec.name.clone(),
        file: spec.file.clone(),
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

type VerifyKey = (PathBuf, u64, Option<SystemTime>);
static VERIFIED: LazyLock<Mutex<HashMap<VerifyKey, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |err| ModelError::Io {
        path: path.to_path_buf(),
        err,
    };
    let mut f = fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks the file's sha256 against the registry (memoised per path, size and mtime).
pub fn verify(path: &Path, spec: &ModelSpec) -> Result<(), ModelError> {
    let md = fs::metadata(path).map_err(|err| ModelError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let key = (path.to_path_buf(), md.len(), md.modified().ok());
    let cached = VERIFIED.lock().ok().and_then(|m| m.get(&key).cloned());
    let actual = match cached {
        Some(h) => h,
        None => {
            let h = sha256_file(path)?;
            if let Ok(mut m) = VERIFIED.lock() {
                m.insert(key, h.clone());
            }
            h
        }
    };
    if actual != spec.sha256 {
        return Err(ModelError::Checksum {
            path: path.to_path_buf(),
            name: spec.name.clone(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_parses_and_is_consistent() {
        let reg = registry().unwrap();
        assert!(reg.models.len() >= 6);
        for (name, m) in &reg.models {
            assert_eq!(&m.name, name);
            assert_eq!(m.sha256.len(), 64, "{name}");
            assert!(m.file.ends_with(".onnx"), "{name}");
            assert!(m.input.std.iter().all(|s| *s > 0.0), "{name}");
            assert!(
                m.url.is_some() || m.recipe.is_some(),
                "{name}: no way to obtain it"
            );
        }
        let yunet = reg.get("yunet-n").unwrap();
        assert_eq!(yunet.input.color, ColorOrder::Bgr);
        assert!(yunet.input.dynamic_batch());
        assert_eq!(yunet.output.decoder, DecoderKind::Yunet);
        assert_eq!(
            reg.get("yunet-s").unwrap().input.fixed_size(),
            Some((640, 640))
        );
        assert!(!reg.get("w600k-mbf").unwrap().commercial);
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let err = resolve("no-such-model", "yunet-n").unwrap_err().to_string();
        assert!(err.contains("unknown model 'no-such-model'"), "{err}");
        assert!(err.contains("yunet-n"), "{err}");
    }

    #[test]
    fn missing_path_is_named() {
        let err = resolve(
            "/nonexistent/dir/face_detection_yunet_n_dynamic.onnx",
            "yunet-n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/nonexistent/dir/face_detection_yunet_n_dynamic.onnx"),
            "{err}"
        );
    }

    #[test]
    fn wrong_checksum_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("sl-models-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("face_detection_yunet_n_dynamic.onnx");
        fs::write(&path, b"not a model").unwrap();
        let err = resolve(path.to_str().unwrap(), "yunet-n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256"), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(err.contains("yunet-n"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
