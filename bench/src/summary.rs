//! Summarises benchmark reports: medians across repetitions, ratios against
//! the Node server with the targets, a Markdown page and an SVG chart.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

/// Why the summary could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A report file is not a report.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Drawing the chart failed.
    #[error("chart: {0}")]
    Chart(String),
}

/// Every server a run may measure; `before-*` are an earlier build of ours
/// (`BEFORE=` in `bench/compare.sh`), shown beside the current one.
const TARGETS: [&str; 5] = ["ours-plain", "ours-json", "node", "before-plain", "before-json"];

/// What the independent probe (`bench/node/probe.js`) measured beside a run.
#[derive(Debug, serde::Deserialize)]
struct Probe {
    expected: u64,
    received: u64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One scenario: what it measures, the figure compared, and the goal.
struct Scenario {
    key: &'static str,
    title: &'static str,
    metric: &'static str,
    /// The compared figure of a report.
    value: fn(&Report) -> f64,
    /// Whether a higher figure is better.
    higher_is_better: bool,
    /// The goal, as a ratio of ours to Node's improvement factor, or an absolute bound.
    goal: Goal,
}

enum Goal {
    /// Ours must be at least this many times better than Node.
    TimesBetter(f64),
    /// Ours must be below this absolute value.
    Below(f64),
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            key: "a",
            title: "(a) 10,000 idle connections",
            metric: "server bytes per connection",
            value: Report::bytes_per_connection,
            higher_is_better: false,
            goal: Goal::TimesBetter(1.0),
        },
        Scenario {
            key: "b",
            title: "(b) 1,000 clients, 10 publishers x 10 msg/s",
            metric: "p99 latency (ms)",
            value: |r| r.latency_ms.p99,
            higher_is_better: false,
            goal: Goal::TimesBetter(3.0),
        },
        Scenario {
            key: "c",
            title: "(c) 1,000 clients, closed loop",
            metric: "deliveries per server CPU-second",
            value: |r| r.deliveries_per_cpu_second,
            higher_is_better: true,
            goal: Goal::TimesBetter(8.0),
        },
        Scenario {
            key: "d",
            title: "(d) 10-client room, everyone publishing flat out",
            metric: "deliveries per server CPU-second",
            value: |r| r.deliveries_per_cpu_second,
            higher_is_better: true,
            goal: Goal::TimesBetter(5.0),
        },
        Scenario {
            key: "e",
            title: "(e) one message to 19,000 clients",
            metric: "time until the last client has it (ms)",
            value: |r| r.latency_ms.max,
            higher_is_better: false,
            goal: Goal::Below(50.0),
        },
    ]
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] })
}

/// Reads every `*.json` report in `results` and writes the page and the chart.
pub fn write(results: &Path, markdown: &Path, chart: &Path) -> Result<(), SummaryError> {
    let mut runs: BTreeMap<(String, String), Vec<Report>> = BTreeMap::new();
    let mut probes: BTreeMap<(String, String), Vec<Probe>> = BTreeMap::new();
    for entry in std::fs::read_dir(results)? {
        let path = entry?.path();
        // Probe results are named like run reports, with the extension `.probe`.
        if path.extension().is_some_and(|e| e == "probe") {
            let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut parts = name.split("__");
            if let (Some(scenario), Some(target), Ok(probe)) =
                (parts.next(), parts.next(), serde_json::from_str::<Probe>(&std::fs::read_to_string(&path)?))
            {
                probes.entry((scenario.to_owned(), target.to_owned())).or_default().push(probe);
            }
            continue;
        }
        // Run reports are named `<scenario>__<server>__<repetition>.json`.
        let is_run = path.file_name().is_some_and(|n| n.to_string_lossy().contains("__"));
        if is_run && path.extension().is_some_and(|e| e == "json") {
            let report: Report = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            let (scenario, target) = report.label.split_once('/').unwrap_or((&report.label, ""));
            runs.entry((scenario.to_owned(), target.to_owned())).or_default().push(report);
        }
    }

    let mut page = String::from("# Benchmarks\n\n");
    page += "Generated by `bench/compare.sh` (rerun it to reproduce; `REPS` and `SCENARIOS` narrow it). \
             Server and load generator share one machine; every figure is the median of the repetitions. \
             `ours-plain` is our `/` endpoint (echo to all, like the seed), `ours-json` our `/ws` endpoint \
             (every message stored in SQLite before it is relayed), `node` the seed's Node `ws` server.\n\n";
    page += &machine_description();
    page += "\n![ours vs Node](bench/results/chart.svg)\n\n";

    let mut ratios: Vec<(String, [Option<f64>; 2])> = Vec::new();
    for scenario in scenarios() {
        page += &format!("## {}\n\n", scenario.title);
        page += "| server | connected | delivered / expected | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU s | deliveries per CPU-s | bytes per connection |\n";
        page += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
        let mut figure: BTreeMap<&str, f64> = BTreeMap::new();
        for target in TARGETS {
            let Some(reports) = runs.get(&(scenario.key.to_owned(), target.to_owned())) else { continue };
            let m = |f: fn(&Report) -> f64| median(reports.iter().map(f).collect()).unwrap_or(f64::NAN);
            if let Some(value) = median(reports.iter().map(scenario.value).collect()) {
                figure.insert(target, value);
            }
            page += &format!(
                "| {target} | {:.0} | {:.0} / {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |\n",
                m(|r| r.connected as f64),
                m(|r| r.delivered as f64),
                m(|r| r.expected as f64),
                m(|r| r.deliveries_per_second),
                m(|r| r.latency_ms.p50),
                m(|r| r.latency_ms.p90),
                m(|r| r.latency_ms.p99),
                m(|r| r.latency_ms.p999),
                m(|r| r.latency_ms.max),
                m(|r| r.server_cpu_seconds),
                m(|r| r.deliveries_per_cpu_second),
                m(Report::bytes_per_connection),
            );
        }
        page += "\n";
        let probed: Vec<String> = TARGETS
            .iter()
            .filter_map(|target| {
                let probes = probes.get(&(scenario.key.to_owned(), (*target).to_owned()))?;
                let m = |f: fn(&Probe) -> f64| median(probes.iter().map(f).collect()).unwrap_or(f64::NAN);
                let each: Vec<String> = probes.iter().map(|p| format!("{:.2}", p.p99_ms)).collect();
                Some(format!(
                    "{target} p50 {:.2} ms, p99 {:.2} ms (each repetition: {}; {:.0} of {:.0} received)",
                    m(|p| p.p50_ms),
                    m(|p| p.p99_ms),
                    each.join(", "),
                    m(|p| p.received as f64),
                    m(|p| p.expected as f64)
                ))
            })
            .collect();
        if !probed.is_empty() {
            page += &format!(
                "Independent probe (Node `ws` client in its own process: 20 receivers, one publisher at 5 msg/s, \
                 beside the load): {}.\n\n",
                probed.join("; ")
            );
            // The probe reads its few sockets promptly; chat-load's 1,000 readers
            // share two cores with the server and fall behind a server that
            // writes one frame per syscall (Node), which then buffers and
            // stalls. Where the two disagree the probe is the one to believe,
            // so it is what the goal is judged on.
            // Node at the edge of saturation swings between repetitions (a few
            // ms in one, seconds in the next): it is judged on its best one, so
            // a bad repetition of Node's cannot make ours look good.
            for target in TARGETS {
                let Some(probes) = probes.get(&(scenario.key.to_owned(), target.to_owned())) else { continue };
                let p99s = probes.iter().map(|p| p.p99_ms);
                let p99 = if target == "node" { p99s.reduce(f64::min) } else { median(p99s.collect()) };
                if let Some(p99) = p99 {
                    figure.insert(target, p99);
                }
            }
            page += "The goal below is judged on the probe's p99: the median of our repetitions against \
                     Node's best repetition.\n\n";
        }
        for (before, after) in [("before-plain", "ours-plain"), ("before-json", "ours-json")] {
            if let (Some(b), Some(a)) = (figure.get(before), figure.get(after)) {
                page += &format!("- {after}: {} before → after this change: {b:.2} → {a:.2}\n", scenario.metric);
            }
        }
        let node = figure.get("node").copied();
        let mut pair = [None, None];
        for (slot, target) in ["ours-plain", "ours-json"].into_iter().enumerate() {
            let Some(ours) = figure.get(target).copied() else { continue };
            let (verdict, ratio) = match scenario.goal {
                Goal::TimesBetter(times) => {
                    let ratio = node.map(|n| if scenario.higher_is_better { ours / n } else { n / ours });
                    let met = ratio.is_some_and(|r| r >= times);
                    (format!("goal ≥ {times}× better than Node: {}", if met { "met" } else { "missed" }), ratio)
                }
                Goal::Below(bound) => {
                    let ratio = node.map(|n| n / ours);
                    (format!("goal < {bound} ms: {}", if ours < bound { "met" } else { "missed" }), ratio)
                }
            };
            pair[slot] = ratio;
            page += &format!(
                "- {target}: {} = {ours:.2}{}; {verdict}\n",
                scenario.metric,
                ratio.map(|r| format!(" ({r:.2}× Node's)")).unwrap_or_default()
            );
        }
        page += "\n";
        ratios.push((scenario.title.to_owned(), pair));
    }
    page += &storm_section(&runs);
    page += &nodes_section(&runs);
    if let Ok(startup) = std::fs::read_to_string(results.join("startup.json"))
        && let Ok(figures) = serde_json::from_str::<serde_json::Value>(&startup)
    {
        let kb = |key: &str| figures["bundle_bytes"][key].as_f64().unwrap_or(f64::NAN) / 1000.0;
        let ms = |key: &str| figures["navigation_to_connected_ms"][key].as_f64().unwrap_or(f64::NAN);
        page += "## Frontend weight and startup\n\n";
        page += "Measured by `chat-e2e`'s `startup_and_weight` test against the release server and bundle: the \
                 bundle (wasm + js + css) as served, and the time from navigation to the `chat-connected` \
                 User Timing mark in headless Chromium on loopback.\n\n";
        page += "| bundle raw | gzip (goal ≤ 150 KB) | brotli | navigation → connected, first load | reloads (median of 5; goal < 300 ms) |\n";
        page += "| --- | --- | --- | --- | --- |\n";
        page += &format!(
            "| {:.1} KB | {:.1} KB | {:.1} KB | {:.0} ms | {:.0} ms |\n\n",
            kb("raw"),
            kb("gzip"),
            kb("brotli"),
            ms("cold"),
            ms("warm_median")
        );
    }
    if let Ok(notes) = std::fs::read_to_string(results.join("../NOTES.md")) {
        page += &notes;
    }
    std::fs::write(markdown, page)?;
    draw(chart, &ratios).map_err(|e| SummaryError::Chart(e.to_string()))
}

/// Scenario (f), the reconnect storm: its own table (its figures are not a
/// single number against Node's).
fn storm_section(runs: &BTreeMap<(String, String), Vec<Report>>) -> String {
    let mut page =
        String::from("## (f) Reconnect storm: 19,000 clients join one room at once, one publisher at 2 msg/s\n\n");
    page += "`chat-load --storm`: the publisher is in first; then every other client connects and (JSON) joins \
             as fast as 500 concurrent connects allow, reading from the start. *Storm CPU* is the server's from \
             the first connect to the last client in (*+ settling*: the next 3 s). *Frames per joiner* counts \
             everything a joining client received besides messages and its history. *During* are the \
             publisher's messages sent before the last client was in, *after* those of the next 10 s; a client \
             owes every message sent after it was in. *Load tool CPU* is chat-load's own, for the storm: the \
             two share the machine's two cores.\n\n";
    page += "| server | joined | storm s | storm CPU s (+ settling) | load tool CPU s | frames per joiner | during: lost / owed, p99 ms | after: lost / owed, p99 ms |\n";
    page += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    let mut json = BTreeMap::new();
    for target in TARGETS {
        let Some(reports) = runs.get(&("f".to_owned(), target.to_owned())) else { continue };
        let storms: Vec<_> = reports.iter().filter_map(|r| r.storm.clone()).collect();
        if storms.is_empty() {
            continue;
        }
        let m =
            |f: &dyn Fn(&crate::storm::StormReport) -> f64| median(storms.iter().map(f).collect()).unwrap_or(f64::NAN);
        let (cpu, frames, during_p99, after_p99) = (
            m(&|s| s.server_cpu_seconds),
            m(&|s| s.frames_per_joiner),
            m(&|s| s.during.latency_ms.p99),
            m(&|s| s.after.latency_ms.p99),
        );
        let lost = m(&|s| (s.during.lost + s.after.lost) as f64);
        if target.ends_with("json") {
            json.insert(target, (cpu, frames, lost, during_p99, after_p99));
        }
        page += &format!(
            "| {target} | {:.0} | {:.1} | {cpu:.2} (+ {:.2}) | {:.2} | {frames:.2} | {:.0} / {:.0}, {during_p99:.0} | {:.0} / {:.0}, {after_p99:.0} |\n",
            m(&|s| s.joiners as f64),
            m(&|s| s.seconds),
            m(&|s| s.settle_cpu_seconds),
            m(&|s| s.load_cpu_seconds),
            m(&|s| s.during.lost as f64),
            m(&|s| s.during.expected as f64),
            m(&|s| s.after.lost as f64),
            m(&|s| s.after.expected as f64),
        );
    }
    page += "\n";
    if let (Some(before), Some(after)) = (json.get("before-json"), json.get("ours-json")) {
        page += &format!(
            "- ours-json before → after this change: storm CPU {:.2} → {:.2} s, frames per joiner {:.2} → {:.2}, \
             p99 during {:.0} → {:.0} ms, after {:.0} → {:.0} ms\n",
            before.0, after.0, before.1, after.1, before.3, after.3, before.4, after.4
        );
    }
    if let Some((cpu, frames, lost, during, after)) = json.get("ours-json").copied() {
        let verdict = |met: bool| if met { "met" } else { "missed" };
        page += &format!(
            "- ours-json goals: storm CPU ≤ 1.5 s: {} ({cpu:.2}); ≤ 3 frames per joiner: {} ({frames:.2}); no loss: {} \
             ({lost:.0}); p99 during < 500 ms: {} ({during:.0}); p99 after < 50 ms: {} ({after:.0})\n",
            verdict(cpu <= 1.5),
            verdict(frames <= 3.0),
            verdict(lost == 0.0),
            verdict(during < 500.0),
            verdict(after < 50.0),
        );
    }
    page + "\n"
}

/// Scenarios (g) and (h): one node against two behind one PostgreSQL and
/// Redis, clients spread over both (JSON).
fn nodes_section(runs: &BTreeMap<(String, String), Vec<Report>>) -> String {
    const SETUPS: [&str; 2] = ["one-node", "two-nodes"];
    let titles = [
        ("g", "(g) Two nodes, one room: 1,000 clients, 10 publishers, closed loop"),
        ("h", "(h) Two nodes, 100 rooms: 1,000 clients, 100 publishers (one per room), closed loop"),
    ];
    let mut page = String::new();
    for (key, title) in titles {
        if !SETUPS.iter().any(|setup| runs.contains_key(&(key.to_owned(), (*setup).to_owned()))) {
            continue;
        }
        page += &format!(
            "## {title}

"
        );
        page += "`one-node`: one chat-server on PostgreSQL (no Redis); `two-nodes`: two chat-servers on the same \
                 PostgreSQL and a Redis, clients taking them in turn, so half of every room is on each node and \
                 every message crosses Redis. Server CPU is the chat-servers' (PostgreSQL's and Redis's own CPU \
                 is not counted); latency is from the publisher's send to each delivery, whichever node.\n\n";
        page += "| setup | connected | delivered / expected | deliveries/s | p50 ms | p99 ms | max ms | server CPU s | deliveries per CPU-s |\n";
        page += "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
        let mut per_cpu = BTreeMap::new();
        for setup in SETUPS {
            let Some(reports) = runs.get(&(key.to_owned(), setup.to_owned())) else { continue };
            let m = |f: fn(&Report) -> f64| median(reports.iter().map(f).collect()).unwrap_or(f64::NAN);
            per_cpu.insert(setup, m(|r| r.deliveries_per_cpu_second));
            page += &format!(
                "| {setup} | {:.0} | {:.0} / {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
                m(|r| r.connected as f64),
                m(|r| r.delivered as f64),
                m(|r| r.expected as f64),
                m(|r| r.deliveries_per_second),
                m(|r| r.latency_ms.p50),
                m(|r| r.latency_ms.p99),
                m(|r| r.latency_ms.max),
                m(|r| r.server_cpu_seconds),
                m(|r| r.deliveries_per_cpu_second),
            );
        }
        if let (Some(one), Some(two)) = (per_cpu.get("one-node"), per_cpu.get("two-nodes")) {
            page += &format!("\n- deliveries per server CPU-second, the pair against one node: {:.2}×\n", two / one);
        }
        page += "\n";
    }
    page
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find_map(|l| l.strip_prefix("model name\t: ").map(str::to_owned)))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("Machine: {cores} cores ({cpu}), Linux; loopback only.\n")
}

/// Bars of "times better than Node" per scenario, plain and JSON side by side.
fn draw(path: &Path, ratios: &[(String, [Option<f64>; 2])]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = ratios.iter().flat_map(|(_, pair)| pair.iter().flatten()).fold(1.0_f64, |a, b| a.max(*b)) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("Our server vs the seed's Node server (× better; 1 = equal)", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..(ratios.len() as f64), 0.0..top)?;
    let labels: Vec<String> = ratios.iter().map(|(title, _)| title.chars().take(3).collect()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(ratios.len() * 2)
        .x_label_formatter(&|x| labels.get(x.floor() as usize).cloned().unwrap_or_default())
        .y_desc("× better than Node")
        .draw()?;
    let colours = [RGBColor(47, 111, 222), RGBColor(30, 142, 62)];
    for (slot, name) in ["ours-plain", "ours-json"].iter().enumerate() {
        let bars = ratios.iter().enumerate().filter_map(|(i, (_, pair))| {
            let value = pair[slot]?;
            let left = i as f64 + 0.15 + slot as f64 * 0.35;
            Some(Rectangle::new([(left, 0.0), (left + 0.3, value)], colours[slot].filled()))
        });
        chart
            .draw_series(bars)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colours[slot].filled()));
    }
    chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 1.0), (ratios.len() as f64, 1.0)], RED)))?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
