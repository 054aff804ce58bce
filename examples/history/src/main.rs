//! `weft-history-tour [FOLDER]`: runs the tour with its databases in FOLDER (default: a new
//! folder under the system's temporary folder) and prints each step.

use std::{path::PathBuf, process::ExitCode};

#[tokio::main]
async fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("weft-history-tour-{}", std::process::id())),
        PathBuf::from,
    );
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    println!("databases in {}", dir.display());
    match weft_example_history::tour(&dir).await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("the tour failed: {error}");
            ExitCode::FAILURE
        }
    }
}
