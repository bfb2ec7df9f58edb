//! Runs files through a harness on stable, without libFuzzer:
//!
//! ```sh
//! cd fuzz && cargo run --release --example replay -- <target> <file or dir>...
//! ```

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: replay <target> <file or dir>...");
    let harness: fn(&[u8]) = match target.as_str() {
        "open_bytes" => capsuledb_fuzz::fuzz_open_bytes,
        "decode" => capsuledb_fuzz::fuzz_decode,
        "api_model" => capsuledb_fuzz::fuzz_api_model,
        "key_decode" => capsuledb_fuzz::fuzz_key_decode,
        "raftlog" => capsuledb_fuzz::fuzz_raftlog,
        other => panic!("unknown target {other}"),
    };
    let mut files = Vec::new();
    for arg in args {
        let path = std::path::PathBuf::from(arg);
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&path)
                .expect("read dir")
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path);
        }
    }
    for file in &files {
        let data = std::fs::read(file).expect("read input");
        let start = std::time::Instant::now();
        harness(&data);
        println!("{}: ok in {:?}", file.display(), start.elapsed());
    }
}
