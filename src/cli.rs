//! `cyberhub serve | migrate | token | verify`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use uuid::Uuid;

use crate::auth::{parse_ttl, JwtKeys};
use crate::config::Config;
use crate::domain::Role;
use crate::startup::{self, Application};
use crate::{fair, store, telemetry};

#[derive(Parser)]
#[command(name = "cyberhub", version, about = "Realtime backend for computer-club case-opening sites")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and Socket.IO (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Print a signed token (JWT) for an operator or a test. Without --sub, on a
    /// zero-configuration node (no JWT_SECRET): an admin token for the node's own admin.
    Token {
        /// The user id (UUID) the token speaks for.
        #[arg(long)]
        sub: Option<Uuid>,
        /// `user` or `admin` (default: user, or admin without --sub).
        #[arg(long)]
        role: Option<String>,
        /// Lifetime such as 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Recompute a provably fair roll offline from a revealed server seed.
    Verify {
        #[arg(long)]
        server_seed: String,
        #[arg(long)]
        client_seed: String,
        #[arg(long)]
        nonce: u64,
        /// The case's item weights in pick order, e.g. 1,10,100,889.
        #[arg(long, value_delimiter = ',')]
        weights: Vec<u32>,
        /// The commitment (serverSeedHash) shown before the rolls, to check against.
        #[arg(long)]
        commitment: Option<String>,
        /// The nextServerSeedHash shown before the client seed of this pair was chosen (before
        /// the client-seed change or rotation that activated the seed), to check against.
        #[arg(long)]
        next_server_seed_hash: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Verify { server_seed, client_seed, nonce, weights, commitment, next_server_seed_hash } => {
            verify(&server_seed, &client_seed, nonce, &weights, commitment.as_deref(), next_server_seed_hash.as_deref())
        }
        command => runtime().and_then(|rt| rt.block_on(run(command))),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cyberhub: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    match command {
        Command::Serve => {
            telemetry::init(config.log_format, &config.replica_id);
            let bind = (config.bind, config.port);
            let app = Application::build(config).await?;
            eprintln!("CyberHub listening on http://{}:{}", bind.0, app.port());
            if let Some(token) = app.dev_admin_token() {
                // Once, on the start that generated the secret: `cyberhub token` prints another.
                eprintln!("No JWT_SECRET set: generated a signing secret and kept it in the database.");
                eprintln!(
                    "Admin token (valid 24 h), for trying the API; `cyberhub token` prints a new one:\n\n  {token}\n"
                );
                let address = std::net::SocketAddr::new(bind.0, app.port());
                let address =
                    if bind.0.is_unspecified() { format!("localhost:{}", app.port()) } else { address.to_string() };
                eprintln!("Operators' console: http://{address}/console#token={token}\n");
            }
            let (shutdown, hurry) = startup::shutdown_signals();
            app.run_until_with(shutdown, hurry).await?;
        }
        Command::Migrate => {
            let store = store::connect(
                &config.database_url,
                store::PoolSettings { max_connections: 1, ..store::PoolSettings::from_config(&config) },
            )
            .await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url);
        }
        Command::Token { sub, role, ttl } => {
            let role = role.as_deref().unwrap_or(if sub.is_some() { "user" } else { "admin" });
            let role = Role::parse(Some(role)).ok_or_else(|| anyhow::anyhow!("--role must be user or admin"))?;
            let ttl = parse_ttl(&ttl).ok_or_else(|| anyhow::anyhow!("--ttl must look like 30s, 15m, 1h or 7d"))?;
            let (secret, sub) = match (&config.jwt_secret, sub) {
                (Some(secret), Some(sub)) => (secret.expose().to_string(), sub),
                (Some(_), None) => anyhow::bail!("--sub is required when JWT_SECRET is set"),
                (None, sub) => {
                    let store = store::connect(
                        &config.database_url,
                        store::PoolSettings { max_connections: 1, ..store::PoolSettings::from_config(&config) },
                    )
                    .await?;
                    let (secret, _) = startup::jwt_secret(&config, store.as_ref()).await?;
                    let sub = match sub {
                        Some(sub) => sub,
                        None => startup::dev_admin_id(store.as_ref()).await?,
                    };
                    store.close().await;
                    (secret, sub)
                }
            };
            println!("{}", JwtKeys::new(&secret).issue(sub, role, ttl));
        }
        Command::Verify { .. } => unreachable!("handled without a runtime"),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    server_seed: &str,
    client_seed: &str,
    nonce: u64,
    weights: &[u32],
    commitment: Option<&str>,
    next_server_seed_hash: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let v = fair::verify(server_seed, client_seed, nonce, weights)?;
    // The seed's hash is both commitments: the serverSeedHash shown on every open, and the
    // nextServerSeedHash shown before the client seed was chosen (so the seed was fixed first).
    let check = |hash: Option<&str>| hash.map(|c| fair::verify_commitment(server_seed, c.trim())).transpose();
    let matches = check(commitment)?;
    let next_matches = check(next_server_seed_hash)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "commitment": v.commitment,
            "commitmentMatches": matches,
            "nextServerSeedHashMatches": next_matches,
            "hmac": v.hmac,
            "roll": v.roll,
            "index": v.index,
        }))?
    );
    let failed = matches == Some(false) || next_matches == Some(false);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
