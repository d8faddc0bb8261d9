//! `sightline auth`: the access tokens of the runner's API (`sightline run --auth FILE`).

use clap::{Args, Subcommand};
use sightline_core::control::auth::{Role, TokenFile};
use sightline_core::events::utc_now;
use std::path::PathBuf;

#[derive(Args)]
pub struct AuthArgs {
    /// The token file (JSON, Argon2 hashes only; created by `add`, mode 0600).
    #[arg(long, env = "SIGHTLINE_AUTH")]
    pub file: PathBuf,
    #[command(subcommand)]
    pub cmd: AuthCmd,
}

#[derive(Subcommand)]
pub enum AuthCmd {
    /// Makes a token: printed once, alone on the last line (only its hash is kept).
    Add {
        name: String,
        /// viewer (reads state, streams, events), operator (also acknowledges alerts,
        /// manages the gallery), admin (also cameras and tokens).
        #[arg(long)]
        role: String,
    },
    /// Names, roles and creation times (never the tokens).
    List,
    /// Removes a token; a running server refuses it from its next request.
    Revoke { name: String },
}

pub fn run(a: AuthArgs) -> Result<(), String> {
    let mut f = TokenFile::load(&a.file)?;
    match a.cmd {
        AuthCmd::Add { name, role } => {
            let role = Role::parse(&role)?;
            let token = f.add(&name, role, &utc_now())?;
            f.save(&a.file)?;
            eprintln!(
                "token {name} ({}) added to {}; it is shown only now:",
                role.name(),
                a.file.display()
            );
            println!("{token}");
        }
        AuthCmd::List => {
            for t in &f.tokens {
                println!("{}\t{}\t{}", t.name, t.role.name(), t.created);
            }
        }
        AuthCmd::Revoke { name } => {
            if !f.revoke(&name) {
                return Err(format!("no token named {name} in {}", a.file.display()));
            }
            f.save(&a.file)?;
            eprintln!("token {name} revoked");
        }
    }
    Ok(())
}
