//! `chat-chart RESULTS_DIR BENCHMARKS_MD CHART_SVG`: turns the JSON reports of
//! `bench/compare.sh` into the Markdown tables and the SVG chart.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [results, markdown, chart] = args.as_slice() else {
        eprintln!("usage: chat-chart RESULTS_DIR BENCHMARKS_MD CHART_SVG");
        return ExitCode::from(2);
    };
    match chat_bench::summary::write(results, markdown, chart) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-chart: {error}");
            ExitCode::FAILURE
        }
    }
}
