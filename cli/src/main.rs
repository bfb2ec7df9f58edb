//! `capsuledb`: the command-line tool for capsuledb databases.
//!
//! Every subcommand exits 0 on success; on failure it prints one line,
//! `capsuledb: <error>`, to stderr and exits non-zero (2 for a bad command line).

mod backup;
mod bench;
mod codec;
mod data;
mod error;
mod interrupt;
mod salvage;

use clap::{Args, Parser, Subcommand};
use codec::Encoding;
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect, query and benchmark capsuledb database files.
///
/// Start with `capsuledb bench`: it measures this machine's durable commit rate on a
/// temporary database and prints one summary table.
#[derive(Parser)]
#[command(name = "capsuledb", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How keys and values are written on the command line and printed.
#[derive(Args, Clone, Copy)]
struct EncodingArg {
    /// Keys and values are hex (two digits per byte, optional 0x) on input and output,
    /// instead of UTF-8 text.
    #[arg(long)]
    hex: bool,
}

impl EncodingArg {
    fn encoding(self) -> Encoding {
        Encoding::from_flag(self.hex)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Show a database's header, file size and engine counters.
    ///
    /// Shows the format version, page size, file size, checkpoint state, the last
    /// visible and durable commit sequences, the commits recovery replayed at open, the
    /// versions held in memory, free pages and the high-water page, the durable bound and
    /// the log records recovery rebuilt from redundancy (a read-write open writes them
    /// back). Opens the file read-only, as a live reader (it works while an application
    /// writes the file); for a log damaged where durable commits lie, says what lies
    /// beyond the damage. FILE must exist.
    Info {
        /// The database file.
        file: PathBuf,
    },
    /// Run a benchmark on a temporary database and print a summary table.
    ///
    /// Phases, each with a progress bar: the raw fdatasync rate of the file system
    /// (the physical reference); durable single-writer commits; durable concurrent
    /// commits on disjoint keys (--threads); a contended Serializable workload on a
    /// small hot set, retrying conflicts; Applied-durability (in-memory) commits; a bulk
    /// load of --keys keys in one transaction; random point reads on snapshots; and
    /// 1000-key range scans. Keys are 24 random bytes from a seeded generator, values
    /// 150 bytes. The defaults take about a minute. The database lives in a temporary
    /// directory (honouring TMPDIR) unless --path names a directory, and is removed
    /// afterwards, also when the run is interrupted (Ctrl-C, SIGTERM, SIGHUP).
    Bench(bench::BenchArgs),
    /// Write a consistent, compacted copy of a database to a new file.
    ///
    /// Copies every table as of one snapshot into OUT through bulk transactions, folds
    /// them into the copy's tree, checks the copy and renames it into place (until then
    /// it has a temporary name beside OUT). FILE is opened read-only and never written.
    /// Prints the tables, keys, snapshot sequence and size of the copy, with the result
    /// of checking it again after reopening. A program with the database open backs up
    /// through the library (`Database::backup_to`) while it keeps committing.
    Backup {
        /// The database file (must exist).
        file: PathBuf,
        /// Where the copy goes (must not exist unless --force).
        out: PathBuf,
        /// Replace OUT if it exists and is a regular file (only once the copy is complete
        /// and checked).
        #[arg(long)]
        force: bool,
    },
    /// Verify every checksum and invariant of a database.
    ///
    /// Checks every page of the checkpointed B+tree (checksums, key order, balance),
    /// the catalog, the free list, every marker, proof and capsule of the log since the
    /// last checkpoint, and that every page is used exactly once and none is leaked.
    /// Reads the whole log past the first damaged record and reports damage in the
    /// middle of it, repairable (a write open rebuilds it) or not. Opens the file
    /// read-only and changes nothing. Prints each problem with its page number; exits 1
    /// if any was found.
    Check {
        /// The database file (must exist).
        file: PathBuf,
    },
    /// Copy every commit of a damaged database that can be recovered into a new file.
    ///
    /// Opens IN read-only (it is never modified) up to the first damage to its log that
    /// no redundancy repairs, writes the tables' state there into the new database OUT
    /// (with a progress bar), checks OUT, and prints which commits were lost and why. A
    /// damaged tree page is passed over: every other key is copied, and the keys it hid
    /// are named with the page.
    /// History (states before the last one) is not copied.
    Salvage {
        /// The damaged database file (read only).
        input: PathBuf,
        /// The new database file to write (must not exist).
        output: PathBuf,
    },
    /// Checkpoint, then return free space at the end of the file to the OS.
    ///
    /// Folds every commit into the B+tree, frees the log it made obsolete, and cuts the
    /// file after its last used page. Prints the bytes returned. The CLI keeps no history
    /// window (the window is an application's open option, not stored in the file), so
    /// the checkpoint drops the retained history that `get --at` and `scan --at` read.
    Compact {
        /// The database file (must exist).
        file: PathBuf,
    },
    /// List the tables of a database, one per line.
    Tables {
        /// The database file (must exist).
        file: PathBuf,
    },
    /// Print the value of a key.
    ///
    /// Exits non-zero with "key ... not found" when the key is absent.
    Get {
        /// The database file (must exist).
        file: PathBuf,
        /// The table.
        table: String,
        /// The key (UTF-8 text, or hex with --hex). One spelled like an option (`-h`,
        /// `--help`, `--hex`) goes after `--`: `put app.db t -- -h v`.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// Read the state as of commit SEQ instead of the newest; SEQ must be inside
        /// the history window (`info` shows it). Opens the file read-only.
        #[arg(long, value_name = "SEQ")]
        at: Option<u64>,
        #[command(flatten)]
        enc: EncodingArg,
    },
    /// Write a key in one durable commit.
    Put {
        /// The database file (must exist unless --create).
        file: PathBuf,
        /// The table.
        table: String,
        /// The key (UTF-8 text, or hex with --hex). One spelled like an option (`-h`,
        /// `--help`, `--hex`) goes after `--`: `put app.db t -- -h v`.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The value (UTF-8 text, or hex with --hex); after `--` when spelled like an
        /// option.
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Create the table, and the database file, if they are missing.
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        enc: EncodingArg,
    },
    /// Delete a key in one durable commit.
    ///
    /// Exits non-zero with "key ... not found" when the key is absent.
    Delete {
        /// The database file (must exist).
        file: PathBuf,
        /// The table.
        table: String,
        /// The key (UTF-8 text, or hex with --hex). One spelled like an option (`-h`,
        /// `--help`, `--hex`) goes after `--`: `put app.db t -- -h v`.
        #[arg(allow_hyphen_values = true)]
        key: String,
        #[command(flatten)]
        enc: EncodingArg,
    },
    /// Print the entries of a key range as `key<TAB>value` lines, in key order.
    ///
    /// Text that is not UTF-8, or holds a tab or a line break, is refused: use --hex.
    Scan {
        /// The database file (must exist).
        file: PathBuf,
        /// The table.
        table: String,
        /// First key of the range (inclusive); the start of the table if omitted.
        #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
        from: Option<String>,
        /// End of the range (exclusive); the end of the table if omitted.
        #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
        to: Option<String>,
        /// Descending key order.
        #[arg(long)]
        reverse: bool,
        /// Read the state as of commit SEQ instead of the newest; SEQ must be inside
        /// the history window (`info` shows it). Opens the file read-only.
        #[arg(long, value_name = "SEQ")]
        at: Option<u64>,
        /// Print at most N entries.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        #[command(flatten)]
        enc: EncodingArg,
    },
    /// Print every entry of a table, in key order, one per line.
    Dump {
        /// The database file (must exist).
        file: PathBuf,
        /// The table.
        table: String,
        /// Line format.
        #[arg(long, value_enum, default_value_t = data::DumpFormat::Jsonl)]
        format: data::DumpFormat,
        /// With jsonl: every key and value as `key_hex` / `value_hex`.
        #[command(flatten)]
        enc: EncodingArg,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            say_error(format_args!("{}; see --help", usage_error_line(&e)));
            return ExitCode::from(2);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            say_error(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints `capsuledb: <what>` on stderr, ignoring a stderr that cannot be written (a
/// closed pipe, a full disk: `eprintln!` would panic, and the status would be 101).
fn say_error(what: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "capsuledb: {what}");
}

/// Clap's message on one line: its first paragraph (before the tips and usage),
/// without the `error: ` prefix.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = first.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    if line.is_empty() {
        "bad command line".into()
    } else {
        line.to_string()
    }
}

fn run(command: Command) -> error::CliResult<()> {
    let result = run_command(command);
    // A signal during `bench`, `backup` or `salvage`: its thread removes what the
    // command was writing and ends the process with 128 + the signal's number; the
    // command's own ending (an error from its file vanishing) must not exit first with
    // status 1.
    interrupt::wait_if_interrupted();
    result
}

fn run_command(command: Command) -> error::CliResult<()> {
    match command {
        Command::Info { file } => data::info(&file),
        Command::Bench(args) => bench::run(&args),
        Command::Backup { file, out, force } => backup::backup(&file, &out, force),
        Command::Check { file } => data::check(&file),
        Command::Compact { file } => data::compact(&file),
        Command::Salvage { input, output } => salvage::salvage(&input, &output),
        Command::Tables { file } => data::tables(&file),
        Command::Get {
            file,
            table,
            key,
            at,
            enc,
        } => data::get(&file, &table, &key, at, enc.encoding()),
        Command::Put {
            file,
            table,
            key,
            value,
            create,
            enc,
        } => data::put(&file, &table, &key, &value, create, enc.encoding()),
        Command::Delete {
            file,
            table,
            key,
            enc,
        } => data::delete(&file, &table, &key, enc.encoding()),
        Command::Scan {
            file,
            table,
            from,
            to,
            reverse,
            at,
            limit,
            enc,
        } => data::scan(
            &file,
            &data::ScanArgs {
                table: &table,
                from: from.as_deref(),
                to: to.as_deref(),
                reverse,
                at,
                limit,
                enc: enc.encoding(),
            },
        ),
        Command::Dump {
            file,
            table,
            format,
            enc,
        } => data::dump(&file, &table, format, enc.encoding()),
    }
}
