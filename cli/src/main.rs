//! `capsuledb`: the command-line tool for capsuledb databases.

use capsuledb::Database;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect, check, query and benchmark capsuledb database files.
#[derive(Parser)]
#[command(name = "capsuledb", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a database's format version, page size, file size and checkpoint state.
    ///
    /// Creates the database if FILE does not exist.
    Info {
        /// The database file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { file } => info(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capsuledb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn info(file: &std::path::Path) -> capsuledb::Result<()> {
    let db = Database::open(file)?;
    let i = db.info()?;
    println!("file               {}", file.display());
    println!("format version     {}", i.format_version);
    println!("page size          {} bytes", i.page_size);
    println!("file size          {} bytes", i.file_len);
    println!("pages              {}", i.page_count);
    println!("checkpoint seq     {}", i.checkpoint_seq);
    println!(
        "header             copy {} (generation {})",
        if i.header_copy == 0 { "A" } else { "B" },
        i.header_generation
    );
    println!("database id        {:016x}", i.database_id);
    Ok(())
}
