use clap::Subcommand;
use sightline_core::models::{self, ModelSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Subcommand)]
pub enum ModelsCmd {
    /// Show every model, its licence and where (or whether) it is found.
    List,
    /// Fill a model directory (default: the user cache) from DIR or the upstream sources.
    Fetch {
        /// Model names (default: all).
        names: Vec<String>,
        /// Copy from this directory instead of downloading (e.g. ../shared/models).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Destination directory (default: the user cache, ~/.cache/sightline/models).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// Replace files that are already there and valid.
        #[arg(long)]
        force: bool,
    },
    /// Check the sha256 of every model that is found.
    Verify,
    /// Print the resolved path of a model.
    Path { name: String },
}

pub fn run(cmd: ModelsCmd) -> Result<(), String> {
    let reg = models::registry().map_err(|e| e.to_string())?;
    match cmd {
        ModelsCmd::List => {
            println!(
                "{:<14} {:<16} {:<10} {:<42} status",
                "name", "role", "commercial", "file"
            );
            for m in reg.models.values() {
                let status = match models::resolve(&m.name, &m.name) {
                    Ok(r) => format!("ok {}", r.path.display()),
                    Err(models::ModelError::NotFound { .. }) => "missing".to_string(),
                    Err(e) => format!("BAD: {e}"),
                };
                println!(
                    "{:<14} {:<16} {:<10} {:<42} {status}",
                    m.name,
                    m.role,
                    if m.commercial { "yes" } else { "NO" },
                    m.file
                );
            }
            println!("\nsearch path: {}", dirs_string());
            Ok(())
        }
        ModelsCmd::Fetch {
            names,
            from,
            dest,
            force,
        } => {
            let dest = dest.unwrap_or_else(models::user_cache_dir);
            std::fs::create_dir_all(&dest)
                .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
            let selected: Vec<&ModelSpec> = if names.is_empty() {
                reg.models.values().collect()
            } else {
                names
                    .iter()
                    .map(|n| reg.get(n).ok_or_else(|| format!("unknown model '{n}'")))
                    .collect::<Result<_, _>>()?
            };
            let mut failed = Vec::new();
            for m in selected {
                match fetch_one(m, from.as_deref(), &dest, force) {
                    Ok(msg) => println!("{:<14} {msg}", m.name),
                    Err(e) => {
                        println!("{:<14} FAILED: {e}", m.name);
                        failed.push(m.name.clone());
                    }
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("could not fetch: {}", failed.join(", ")))
            }
        }
        ModelsCmd::Verify => {
            let mut bad = 0;
            for m in reg.models.values() {
                match models::resolve(&m.name, &m.name) {
                    Ok(r) => println!("{:<14} ok      {}", m.name, r.path.display()),
                    Err(models::ModelError::NotFound { .. }) => println!("{:<14} missing", m.name),
                    Err(e) => {
                        bad += 1;
                        println!("{:<14} BAD     {e}", m.name)
                    }
                }
            }
            if bad > 0 {
                Err(format!("{bad} model file(s) failed verification"))
            } else {
                Ok(())
            }
        }
        ModelsCmd::Path { name } => {
            let r = models::resolve(&name, &name).map_err(|e| e.to_string())?;
            println!("{}", r.path.display());
            Ok(())
        }
    }
}

fn dirs_string() -> String {
    models::search_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn fetch_one(
    m: &ModelSpec,
    from: Option<&Path>,
    dest: &Path,
    force: bool,
) -> Result<String, String> {
    let target = dest.join(&m.file);
    if !force && target.is_file() && models::verify(&target, m).is_ok() {
        return Ok(format!("already present {}", target.display()));
    }
    let tmp = dest.join(format!(".{}.partial", m.file));
    if let Some(dir) = from {
        let src = dir.join(&m.file);
        std::fs::copy(&src, &tmp).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
    } else if let Some(url) = &m.url {
        let status = Command::new("curl")
            .args(["-fsSL", "--retry", "2", "-o"])
            .arg(&tmp)
            .arg(url)
            .status()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "download of {} failed ({status}); no network? use --from DIR",
                m.source
            ));
        }
    } else {
        return Err(format!(
            "not a plain download: source {}; recipe: {}; then `sightline models fetch --from DIR {}`",
            m.source,
            m.recipe.as_deref().unwrap_or("see models/models.toml"),
            m.name
        ));
    }
    if let Err(e) = models::verify(&tmp, m) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.to_string());
    }
    std::fs::rename(&tmp, &target)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok(format!("ok {}", target.display()))
}
