//! `edgeid`: the native host (`edgeid serve`) and the admin commands that talk to any host's
//! admin API (`edgeid client|user|app|role|keys|audit ...`).

mod admin;
mod export;
mod import;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgeid",
    version,
    about = "edgeid: OpenID Connect provider at the edge"
)]
struct Cli {
    /// Base URL of the edgeid instance (admin commands).
    #[arg(
        long,
        global = true,
        env = "EDGEID_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Admin bearer token (admin commands).
    #[arg(long, global = true, env = "EDGEID_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run edgeid natively with an embedded SQLite database.
    Serve(serve::ServeArgs),
    /// Manage OAuth 2.0 clients.
    #[command(subcommand)]
    Client(admin::ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage applications (dashboard tiles tied to OAuth clients).
    #[command(subcommand)]
    App(admin::AppCommand),
    /// Manage users' roles on applications.
    #[command(subcommand)]
    Role(admin::RoleCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Read the audit log of security events.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Import users, clients, apps and roles from another system, through the admin API.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Write the whole state of the instance (users with their password hashes and second
    /// factors, clients, apps, roles, consents, sealed signing keys) to a file of mode 0600,
    /// for `edgeid import edgeid` on another host.
    Export(export::ExportArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Client(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.client(cmd)),
        Command::User(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.user(cmd)),
        Command::App(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.app(cmd)),
        Command::Role(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.role(cmd)),
        Command::Keys(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.keys(cmd)),
        Command::Audit(cmd) => admin::Admin::new(&cli.url, cli.token).and_then(|a| a.audit(cmd)),
        Command::Import(cmd) => {
            admin::Admin::new(&cli.url, cli.token).and_then(|a| import::run(&a, cmd))
        }
        Command::Export(args) => {
            admin::Admin::new(&cli.url, cli.token).and_then(|a| export::run(&a, args))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgeid: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
