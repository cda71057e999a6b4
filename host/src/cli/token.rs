//! `corral token issue`: a token signed with the host's own secret, for an
//! operator or a script (the same token a login would hand out).

use std::path::Path;

use crate::config::Config;
use crate::tokens::{AuthSettings, Tokens};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a token for a subject, signed with the `[auth]` secret (or
    /// the one generated into the state folder).
    Issue {
        /// The subject (`sub` claim): who the token speaks for.
        #[arg(long)]
        sub: String,
        /// Extra claims, as a JSON object.
        #[arg(long)]
        claims: Option<String>,
        /// Print `{"token","token_type","expires_in"}` instead of the bare token.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config_path: &Path, command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue { sub, claims, json } = command;
    let config = Config::load(config_path)?;
    let settings: AuthSettings = config.section("auth")?;
    let issued = Tokens::new(settings).issue(&sub, claims.as_deref())?;
    if json {
        let body = serde_json::json!({
            "token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        });
        println!("{body}");
    } else {
        println!("{}", issued.token);
    }
    Ok(())
}
