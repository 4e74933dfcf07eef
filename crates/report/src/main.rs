//! `just report`: the benches → the book's tables, charts and stamp.
//!
//! ```text
//! just report            # run every bench, write book/src/generated/
//! just report --quick    # a few minutes; marked QUICK RUN, never committed
//! just report --reuse    # re-render from the last run's results
//! just report --chaos-only  # re-render chaos.md from the last `just chaos`
//! just report --claims      # re-check the chapters' claims against the committed figures
//! just report --lint-book   # find measured numbers typed into the prose by hand
//! just report --history-import COMMIT  # the runs committed since COMMIT → book/history
//! ```
//!
//! It runs `cargo bench` with the method the "How we measure" chapter
//! describes: private database servers spawned from the local binaries, the
//! bench process pinned to CPU 0 and the servers to CPU 1 (where there are
//! two or more), then reads criterion's saved estimates
//! (`target/criterion/**/new/estimates.json`) and writes, per bench group,
//! `<group>.md` (median, confidence interval, ratios against the floor and
//! the baseline) and `<group>.svg`, plus `stamp.md` (machine, versions,
//! placement). Chapters include them; they are committed, so the book builds
//! without running anything. After the benches it runs `just chaos` (about
//! 80 s; with `--quick`, `just chaos --quick`, about 55 s) and writes `chaos.md`.
//!
//! # Layout
//!
//! - this file: running the benches as the method says, then writing every file.
//! - [`groups`]: the criterion groups the book shows, row by row.
//! - [`criterion`]: reading criterion's saved estimates.
//! - [`render`]: a group's Markdown table and SVG chart.
//! - [`lesson_03`], [`lesson_04`], [`lesson_05`], [`lesson_06`],
//!   [`lesson_06_load`], [`lesson_07`], [`lesson_08`], [`lesson_09`]: each lesson's experiment results
//!   (read with `lab::results::Results::read`) → its tables and charts
//!   (and lesson 8's criterion group, `layer_costs`).
//! - [`chaos`]: `just chaos`'s results → the table of what breaks.
//! - [`stamp`]: the machine, versions and placement a run was made with.
//! - [`claims`]: the chapters' claims, checked against a run's figures.
//! - [`prose`]: measured numbers typed into a chapter by hand, found.
//! - [`history`]: every full run kept (`book/history`), and the appendix's table of them.

mod chaos;
mod claims;
mod criterion;
mod groups;
mod history;
mod lesson_02_hit_path;
mod lesson_03;
mod lesson_04;
mod lesson_05;
mod lesson_06;
mod lesson_06_load;
mod lesson_07;
mod lesson_08;
mod lesson_09;
mod prose;
mod render;
mod stamp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use ::chaos::results::ChaosResults;
use anyhow::{Context, bail};
use clap::Parser;
use lab::Kind;
use lab::results::Results;
use lab::spawn::{Binaries, SpawnOptions};
use lesson_03_stale_fallback::experiment::{OutageResults, SickResults};
use lesson_04_indexing::experiment::{
    IndexPlansMariadbResults, IndexPlansResults, IndexSizesResults,
};
use lesson_05_buffer_tuning::experiments::BuffersResults;
use lesson_06_http_edge::experiment::EdgeResults;
use lesson_06_http_edge::experiment::hit_path::HitPathResults;
use lesson_06_http_edge::experiment::load::LoadResults;
use lesson_07_stampede::experiment::StampedeResults;
use lesson_08_layers::experiment::LayersResults;
use lesson_09_scale_out::experiment::ScaleOutResults;

use crate::groups::GROUPS;
use crate::stamp::RunInfo;

#[derive(Parser, Debug)]
#[command(
    name = "report",
    about = "Run the benches and write the book's tables, charts and machine stamp."
)]
struct Args {
    /// Fewer, shorter samples: minutes, not the book's figures (marked QUICK RUN).
    #[arg(long)]
    quick: bool,
    /// Re-render from the last `just report` run instead of benching again.
    #[arg(long)]
    reuse: bool,
    /// Re-render only `chaos.md`, from the last `just chaos` run.
    #[arg(long, conflicts_with_all = ["quick", "reuse"])]
    chaos_only: bool,
    /// Only check the chapters' claims against the figures in --out and
    /// write their `claims_*.md` tables; no benches. Exits 1 when one fails.
    #[arg(long, conflicts_with_all = ["quick", "reuse", "chaos_only"])]
    claims: bool,
    /// With --claims: write nothing; also fail when a committed
    /// `claims_*.md` differs from what the check renders.
    #[arg(long, requires = "claims")]
    check: bool,
    /// Only lint the chapters' prose: a measured number typed by hand (not
    /// generated, not a claim, not allowed, not on the baseline) fails, as
    /// does a lesson that does not exist. No benches.
    #[arg(long, conflicts_with_all = ["quick", "reuse", "chaos_only", "claims"])]
    lint_book: bool,
    /// With --lint-book: rewrite book/prose-baseline.txt with every finding.
    #[arg(long, requires = "lint_book")]
    write_baseline: bool,
    /// Rebuild book/history from the full runs committed since COMMIT (each
    /// commit that changed generated/stamp.md), then write generated/history.md.
    #[arg(long, value_name = "COMMIT", conflicts_with_all = ["quick", "reuse", "chaos_only", "claims", "lint_book"])]
    history_import: Option<String>,
    /// Where to write the generated files.
    #[arg(long, default_value = "book/src/generated")]
    out: PathBuf,
}

/// Where every full run's numbers are kept (see [`history`]).
const HISTORY_DIR: &str = "book/history";

/// The file next to criterion's results that records how they were made.
const RUN_FILE: &str = "lab-run.json";

fn main() -> anyhow::Result<()> {
    lab::init_tracing();
    let args = Args::parse();
    let root = workspace_root();
    let criterion_dir = target_dir(&root).join("criterion");
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };

    if args.lint_book {
        return lint_book(&root, args.write_baseline);
    }
    if let Some(since) = &args.history_import {
        let runs = history::import_git(&root, &root.join(HISTORY_DIR), since)?;
        std::fs::write(out.join("history.md"), history::history_md(&runs))?;
        println!(
            "history: imported {} runs into {HISTORY_DIR} and wrote {}",
            runs.len(),
            out.join("history.md").display()
        );
        return Ok(());
    }
    if args.claims {
        return write_claims(&root.join("book/src"), &out, false, args.check);
    }
    if args.chaos_only {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("Failed to create {}", out.display()))?;
        return write_chaos(&out, &ChaosResults::read()?, false);
    }

    let run = if args.reuse {
        let run: RunInfo = serde_json::from_str(
            &std::fs::read_to_string(criterion_dir.join(RUN_FILE))
                .context("no results from `just report` to reuse: run it without --reuse first")?,
        )?;
        if run.quick && !args.quick {
            bail!(
                "the last run was --quick; its results cannot become the book's figures. Run `just report`."
            );
        }
        run
    } else {
        run_benches(&root, &criterion_dir, args.quick)?
    };

    // Results are stale when the code they measured has changed since.
    if args.reuse {
        let now = stamp::bench_inputs(&root);
        if now != run.inputs {
            bail!(
                "the last run measured other code (bench inputs {} then, {now} now): run `just report` without --reuse",
                run.inputs
            );
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("Failed to create {}", out.display()))?;
    for spec in GROUPS {
        let all = criterion::read_group(&criterion_dir, spec.id)?;
        let rows = render::select(spec, &all)?;
        let md = render::table_md(spec, &rows, run.quick);
        std::fs::write(out.join(format!("{}.md", spec.id)), &md)?;
        render::chart_svg(
            spec,
            &rows,
            &out.join(format!("{}.svg", spec.id)),
            run.quick,
        )?;
        println!("\n{}\n{md}", spec.title);
    }
    let outage = OutageResults::read()?;
    std::fs::write(
        out.join("outage.md"),
        lesson_03::table_md(&outage, run.quick),
    )?;
    std::fs::write(out.join("outage.csv"), lesson_03::csv(&outage, run.quick))?;
    lesson_03::chart_svg(&outage, &out.join("outage.svg"), run.quick)?;
    println!("\nLesson 3: the outage experiment\n{}", outage.table_md());
    let sick = SickResults::read()?;
    std::fs::write(out.join("sick.md"), lesson_03::sick_md(&sick, run.quick))?;
    println!("\nLesson 3: the sick database\n{}", sick.table_md());
    let sizes = IndexSizesResults::read()?;
    let sizes_md = lesson_04::table_md(&sizes, run.quick);
    std::fs::write(out.join("index_sizes.md"), &sizes_md)?;
    for (name, md) in lesson_04::plans_md(&IndexPlansResults::read()?, run.quick) {
        std::fs::write(out.join(name), md)?;
    }
    std::fs::write(
        out.join("index_plan_mariadb.md"),
        lesson_04::mariadb_md(&IndexPlansMariadbResults::read()?, run.quick),
    )?;
    println!("\nLesson 4: index sizes\n{sizes_md}");
    let buffers = BuffersResults::read()?;
    for (name, md) in lesson_05::files(&buffers, run.quick) {
        std::fs::write(out.join(name), md)?;
    }
    println!(
        "\nLesson 5: what the servers reported\n{}",
        buffers.shared_buffers_md(false)
    );
    // A --reuse of a run from before the edge bench existed keeps what is there.
    match EdgeResults::read() {
        Ok(edge) => {
            for (name, md) in lesson_06::files(&edge, run.quick) {
                std::fs::write(out.join(name), md)?;
            }
            lesson_06::stale_svg(&edge, &out.join("edge_stale.svg"), run.quick)?;
            println!(
                "\nLesson 6: the edge experiments\n{}\n{}",
                edge.table_md(),
                edge.findings()
            );
        }
        Err(e) if args.reuse => eprintln!("report: the edge_*.md files left as they are: {e:#}"),
        Err(e) => return Err(e),
    }
    match LoadResults::read() {
        Ok(edge_load) => {
            std::fs::write(
                out.join("edge_load.md"),
                lesson_06_load::table_md(&edge_load, run.quick),
            )?;
            lesson_06_load::chart_svg(&edge_load, &out.join("edge_load.svg"), run.quick)?;
            println!(
                "\nLesson 6: edge HIT vs origin vs static (wrk)\n{}",
                edge_load.table_md()
            );
        }
        Err(e) if args.reuse => eprintln!("report: edge_load.md left as it is: {e:#}"),
        Err(e) => return Err(e),
    }
    // A --reuse of a run from before the hit-path bench existed keeps what is there.
    match HitPathResults::read() {
        Ok(hit_path) => {
            std::fs::write(
                out.join("hit_path.md"),
                lesson_02_hit_path::table_md(&hit_path, run.quick),
            )?;
            lesson_02_hit_path::chart_svg(&hit_path, &out.join("hit_path.svg"), run.quick)?;
            println!(
                "\nLesson 2: the hit path under load (wrk)\n{}",
                hit_path.table_md()
            );
        }
        Err(e) if args.reuse => eprintln!("report: hit_path.md left as it is: {e:#}"),
        Err(e) => return Err(e),
    }
    match StampedeResults::read() {
        Ok(stampede) => {
            for (name, md) in lesson_07::files(&stampede, run.quick) {
                std::fs::write(out.join(name), md)?;
            }
            lesson_07::qps_svg(&stampede, &out.join("stampede_qps.svg"), run.quick)?;
            lesson_07::jitter_svg(&stampede, &out.join("stampede_jitter.svg"), run.quick)?;
            println!(
                "\nLesson 7: the stampede experiments\n{}\n{}",
                stampede.herd_md(),
                stampede.findings()
            );
        }
        Err(e) if args.reuse => {
            eprintln!("report: the stampede_*.md files left as they are: {e:#}")
        }
        Err(e) => return Err(e),
    }
    match LayersResults::read() {
        Ok(layers) => {
            for (name, md) in lesson_08::files(&layers, run.quick) {
                std::fs::write(out.join(name), md)?;
            }
            lesson_08::staleness_svg(&layers, &out.join("layers_staleness.svg"), run.quick)?;
            println!(
                "\nLesson 8: the layers experiments\n{}\n{}",
                layers.staleness_md(),
                layers.findings()
            );
        }
        Err(e) if args.reuse => eprintln!("report: the layers_*.md files left as they are: {e:#}"),
        Err(e) => return Err(e),
    }
    match ScaleOutResults::read() {
        Ok(scale_out) => {
            for (name, md) in lesson_09::files(&scale_out, run.quick) {
                std::fs::write(out.join(name), md)?;
            }
            lesson_09::failover_svg(&scale_out, &out.join("scale_out_failover.svg"), run.quick)?;
            println!(
                "\nLesson 9: the scaling-out experiments\n{}\n{}",
                scale_out.failover_md(),
                scale_out.findings()
            );
        }
        Err(e) if args.reuse => {
            eprintln!("report: the scale_out_*.md files left as they are: {e:#}")
        }
        Err(e) => return Err(e),
    }
    // Lesson 8's criterion group: not in `GROUPS`, because its table has
    // sentences of its own under it.
    let costs = &lesson_08::COSTS;
    let all = criterion::read_group(&criterion_dir, costs.id)?;
    match render::select(costs, &all) {
        Ok(rows) => {
            let md = lesson_08::costs_md(&rows, run.quick);
            std::fs::write(out.join(format!("{}.md", costs.id)), &md)?;
            render::chart_svg(
                costs,
                &rows,
                &out.join(format!("{}.svg", costs.id)),
                run.quick,
            )?;
            println!("\n{}\n{md}", costs.title);
        }
        // A --reuse of a run from before the bench existed.
        Err(e) if args.reuse => eprintln!("report: layer_costs.md left as it is: {e:#}"),
        Err(e) => return Err(e),
    }
    // A --reuse of a run from before `just chaos` existed keeps the
    // committed chaos.md.
    match ChaosResults::read() {
        Ok(r) => write_chaos(&out, &r, run.quick)?,
        Err(e) if args.reuse => eprintln!("report: chaos.md left as it is: {e:#}"),
        Err(e) => return Err(e),
    }
    std::fs::write(out.join("stamp.md"), stamp::stamp_md(&run))?;
    println!("{}", stamp::stamp_md(&run));
    // A full run joins the history the appendix shows; a quick one never does.
    if !run.quick {
        history::record(&root.join(HISTORY_DIR), &out)?;
        let runs = history::load(&root.join(HISTORY_DIR))?;
        std::fs::write(out.join("history.md"), history::history_md(&runs))?;
        println!(
            "history: {} runs in {HISTORY_DIR}; wrote history.md",
            runs.len()
        );
    }
    // Last, so that every figure the claims read is this run's.
    let claims = write_claims(&root.join("book/src"), &out, run.quick, false);
    println!(
        "wrote {} bench tables and charts, the experiments' tables and charts, outage.csv and stamp.md to {}",
        GROUPS.len() + 1,
        out.display()
    );
    if run.quick {
        println!(
            "QUICK RUN: these files are for trying the pipeline; don't commit them (`git checkout book/src/generated`)."
        );
    }
    claims
}

/// Checks every chapter's claims against the figures in `out`, prints them,
/// and writes `claims_<chapter>.md` (or, with `check`, compares). A claim
/// that does not hold fails a full run, naming its sentence; a quick run's
/// figures are too noisy for that, so it only prints.
fn write_claims(book_src: &Path, out: &Path, quick: bool, check: bool) -> anyhow::Result<()> {
    let by_chapter = claims::evaluate(book_src, out)?;
    let mut failed = Vec::new();
    let mut stale = Vec::new();
    let mut total = 0;
    println!(
        "
The chapters' claims, checked against {}",
        out.display()
    );
    for (chapter, outcomes) in &by_chapter {
        let md = claims::table_md(outcomes, quick);
        let path = out.join(claims::file_name(chapter));
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(md.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::write(&path, &md)
                .with_context(|| format!("Failed to write {}", path.display()))?;
        }
        println!(
            "
{chapter}
{md}"
        );
        total += outcomes.len();
        for o in outcomes.iter().filter(|o| !o.holds()) {
            let why = match &o.result {
                Ok((q, _)) => format!("measured {q}, checked as `{}`", o.claim.check),
                Err(e) => e.clone(),
            };
            failed.push(format!("{chapter}: \"{}\": {why}", o.claim.sentence));
        }
    }
    println!(
        "claims: {} of {total} hold, in {} chapters",
        total - failed.len(),
        by_chapter.len()
    );
    if !stale.is_empty() {
        bail!(
            "these claims tables are not what the chapters' claims render now: {}. Run `just report --claims` and commit them.",
            stale.join(", ")
        );
    }
    if !failed.is_empty() && !quick {
        bail!(
            "{} claim(s) do not hold on these figures; change the sentence (and its check) or find out what changed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// `--lint-book`: the prose check (see [`prose`]).
fn lint_book(root: &Path, write_baseline: bool) -> anyhow::Result<()> {
    let book = root.join("book");
    let allow = prose::read_list(&book.join("prose-allow.txt"))?;
    let baseline_path = book.join("prose-baseline.txt");
    let baseline = prose::read_list(&baseline_path)?;
    let lint = prose::lint_book(&book.join("src"), &allow, &baseline)?;
    for (chapter, n, a) in &lint.over {
        eprintln!(
            "lint-book: {chapter} states {n} measured numbers by hand; its baseline allows {a}"
        );
    }
    if write_baseline {
        // The baseline only shrinks: it may record reworded or updated
        // numbers, never more of them in any chapter.
        if !lint.over.is_empty() {
            for f in &lint.new {
                eprintln!("lint-book: not on the baseline: {f}");
            }
            bail!(
                "the baseline only shrinks: make the new numbers claims (<span class=\"claim\" data-check=\"…\">) \
                 or generated values, then write it again"
            );
        }
        let mut text = String::from(
            "# Measured numbers typed into the book's prose before `just report --lint-book` existed.\n\
             # Each is still to become a claim (<span class=\"claim\" …>) or a generated value. The\n\
             # list only shrinks: no chapter may hold more of them than it lists. Written by\n\
             # `just report --lint-book --write-baseline`, which refuses to let a chapter's count grow.\n",
        );
        for f in &lint.all {
            text.push_str(&format!("{f}\n"));
        }
        std::fs::write(&baseline_path, text)?;
        println!(
            "lint-book: wrote {} entries to {} (it listed {})",
            lint.all.len(),
            baseline_path.display(),
            baseline.len()
        );
        return Ok(());
    }
    for f in &lint.new {
        eprintln!("lint-book: a measured number typed by hand, not on the baseline: {f}");
    }
    for g in &lint.gone {
        eprintln!("lint-book: on the baseline but no longer in the book: {g}");
    }
    for l in &lint.lessons {
        eprintln!("lint-book: {l}");
    }
    println!(
        "lint-book: {} measured numbers in prose, {} on the baseline still to become claims or generated values",
        lint.all.len(),
        baseline.len()
    );
    if !lint.over.is_empty() || !lint.lessons.is_empty() {
        bail!(
            "{} chapter(s) state more measured numbers by hand than their baseline allows, and {} missing \
             lesson(s) are named. Make each new number a claim (<span class=\"claim\" data-check=\"…\">) or \
             include it from book/src/generated; a setting goes in `code` or on book/prose-allow.txt",
            lint.over.len(),
            lint.lessons.len()
        );
    }
    if !lint.ok() {
        bail!(
            "book/prose-baseline.txt is out of date ({} number(s) not listed, {} listed line(s) gone; no chapter \
             over its count): run `just report --lint-book --write-baseline` and commit it",
            lint.new.len(),
            lint.gone.len()
        );
    }
    Ok(())
}

/// Writes `chaos.md` and prints its table.
fn write_chaos(out: &Path, r: &ChaosResults, quick: bool) -> anyhow::Result<()> {
    let md = chaos::table_md(r, quick);
    std::fs::write(out.join("chaos.md"), &md)?;
    println!("\nWhat breaks, and what doesn't (just chaos)\n{md}");
    Ok(())
}

/// Runs `just chaos` after the benches, on the same quiet machine. A run
/// that finds a panic or a hung request exits 1 and still writes its
/// results: the book shows what breaks, so that is rendered, not an error.
fn run_chaos(root: &Path, quick: bool) -> anyhow::Result<()> {
    eprintln!(
        "report: the chaos run (`just chaos{}`, about {} s)…",
        if quick { " --quick" } else { "" },
        if quick { 55 } else { 80 }
    );
    let mut cmd = Command::new("cargo");
    cmd.args(["run", "-q", "-p", "chaos", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    let status = cmd.current_dir(root).status()?;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => {
            eprintln!("report: the chaos run found panics or hung requests; chaos.md says which");
            Ok(())
        }
        _ => bail!("the chaos run failed ({status}; see above)"),
    }
}

/// Runs `cargo bench` as the method says, and records how.
fn run_benches(root: &Path, criterion_dir: &Path, quick: bool) -> anyhow::Result<RunInfo> {
    let mut env: Vec<(&str, String)> = Vec::new();
    let pg_local = Binaries::find(Kind::Postgres, &SpawnOptions::default()).is_ok();
    let backend = std::env::var("LAB_BACKEND").ok().filter(|v| !v.is_empty());
    if backend.is_none() && pg_local {
        // Private servers: a known configuration, fresh data, and ours to pin.
        env.push(("LAB_BACKEND", "local".into()));
    }
    let servers_private = backend.as_deref() == Some("local") || (backend.is_none() && pg_local);
    if stamp::cores() >= 2
        && std::env::var(lab::pin::CLIENT_ENV).is_err()
        && std::env::var(lab::pin::SERVERS_ENV).is_err()
    {
        env.push((lab::pin::CLIENT_ENV, "0".into()));
        if servers_private {
            env.push((lab::pin::SERVERS_ENV, "1".into()));
        }
    }
    if quick {
        env.push(("LAB_QUICK", "1".into()));
    }

    eprintln!("report: building the benches (release)…");
    let status = Command::new("cargo")
        .args(["bench", "-p", "benches", "--no-run"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("the benches did not build");
    }
    eprintln!(
        "report: running the benches{} with {}",
        if quick { " (quick)" } else { "" },
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let inputs = stamp::bench_inputs(root);
    let started = SystemTime::now();
    let status = Command::new("cargo")
        .args(["bench", "-p", "benches"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("a bench failed (see above)");
    }
    run_chaos(root, quick)?;

    // Describe the placement as the benches saw it.
    let placement = {
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(k).ok())
        };
        match (get(lab::pin::CLIENT_ENV), get(lab::pin::SERVERS_ENV)) {
            (Some(c), Some(s)) => format!(
                "bench process (client and HTTP server) pinned to CPU {c}, database servers to CPU {s}"
            ),
            (Some(c), None) => format!(
                "bench process pinned to CPU {c}; database servers unpinned (not ours to pin)"
            ),
            _ => "unpinned: client and servers may or may not share a core, run to run".into(),
        }
    };
    let run = RunInfo {
        quick,
        date: stamp::utc_now(),
        commit: stamp::first_line(
            "git",
            &[
                "-C",
                &root.display().to_string(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
        ),
        servers: if servers_private {
            "private instances spawned by the harness (LAB_BACKEND=local), default settings".into()
        } else {
            format!(
                "found by the harness (LAB_BACKEND={})",
                backend.as_deref().unwrap_or("auto")
            )
        },
        placement,
        versions: server_versions(),
        inputs,
    };
    std::fs::create_dir_all(criterion_dir)?;
    std::fs::write(
        criterion_dir.join(RUN_FILE),
        serde_json::to_string_pretty(&run)?,
    )?;
    // Every group must have been written by this run, not an earlier one.
    for spec in GROUPS.iter().chain([&lesson_08::COSTS]) {
        let all = criterion::read_group(criterion_dir, spec.id)?;
        for e in render::select(spec, &all)? {
            if e.modified < started {
                bail!("{}/{} was not measured by this run", spec.id, e.bench);
            }
        }
    }
    for path in [
        OutageResults::path(),
        SickResults::path(),
        IndexSizesResults::path(),
        IndexPlansResults::path(),
        IndexPlansMariadbResults::path(),
        BuffersResults::path(),
        EdgeResults::path(),
        LoadResults::path(),
        StampedeResults::path(),
        LayersResults::path(),
        ScaleOutResults::path(),
        ChaosResults::path(),
    ] {
        let written = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("the benches wrote no {}", path.display()))?;
        if written < started {
            bail!("{} was not written by this run", path.display());
        }
    }
    Ok(run)
}

/// The versions of the server binaries the harness spawns from, and of
/// lesson 6's edge and load generator.
fn server_versions() -> Vec<(String, String)> {
    let mut versions: Vec<(String, String)> = Kind::ALL
        .iter()
        .filter_map(|&kind| {
            let bins = Binaries::find(kind, &SpawnOptions::default()).ok()?;
            let path = bins.server.display().to_string();
            Some((
                kind.name().to_string(),
                stamp::first_line(&path, &["--version"]),
            ))
        })
        .collect();
    // Both print their version on stderr, which `first_line` does not read.
    let stderr_first = |cmd: &str, arg: &str| {
        Command::new(cmd).arg(arg).output().ok().and_then(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            text.lines().next().map(|l| l.trim().to_string())
        })
    };
    if let Ok(nginx) = lab::edge::binary()
        && let Some(v) = stderr_first(&nginx.display().to_string(), "-v")
    {
        versions.push(("nginx".into(), v));
    }
    if let Some(v) = stderr_first("wrk", "-v") {
        versions.push(("wrk".into(), v));
    }
    versions
}

fn workspace_root() -> PathBuf {
    // crates/report → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book with one chapter making one claim, and the generated table it reads.
    fn book(limit: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("report-main-{}-{limit}", std::process::id()));
        let (src, generated) = (root.join("src"), root.join("src/generated"));
        std::fs::create_dir_all(&generated).expect("test setup or a check that must pass");
        std::fs::write(
            src.join("lesson-04-indexing.md"),
            format!(
                "Text. <span class=\"claim\" data-check=\"index_suffix[trgm_gin][speed-up] >= {limit}\">The \
                 trigram index is at least {limit}× faster than the scan</span>.\n"
            ),
        )
        .expect("test setup or a check that must pass");
        std::fs::write(
            generated.join("index_suffix.md"),
            "| bench | speed-up |\n| --- | ---: |\n| `trgm_gin` | 76.8× vs `seq_scan` |\n",
        )
        .expect("test setup or a check that must pass");
        (src, generated)
    }

    #[test]
    fn a_claim_made_false_fails_a_full_run_naming_the_sentence() {
        let (src, generated) = book("50");
        write_claims(&src, &generated, false, false).expect("test setup or a check that must pass");
        let table = std::fs::read_to_string(generated.join("claims_lesson-04-indexing.md"))
            .expect("test setup or a check that must pass");
        assert!(
            table.contains("| ✓ |") && table.contains("76.8×"),
            "{table}"
        );
        // The committed table matches: --check passes.
        write_claims(&src, &generated, false, true).expect("test setup or a check that must pass");

        // The threshold raised past the measured value: the full run fails
        // and names the sentence; a quick run only prints it.
        let (src, generated) = book("100");
        let err = format!(
            "{:#}",
            write_claims(&src, &generated, false, false).expect_err("this must fail")
        );
        assert!(
            err.contains("The trigram index is at least 100× faster than the scan"),
            "{err}"
        );
        assert!(err.contains("measured 76.8×"), "{err}");
        write_claims(&src, &generated, true, false).expect("test setup or a check that must pass");
        // A quick run's table is marked as such, so it is never committed.
        let table = std::fs::read_to_string(generated.join("claims_lesson-04-indexing.md"))
            .expect("test setup or a check that must pass");
        assert!(
            table.contains(render::QUICK_MARKER) && table.contains("| ✗ |"),
            "{table}"
        );
        for limit in ["50", "100"] {
            let root =
                std::env::temp_dir().join(format!("report-main-{}-{limit}", std::process::id()));
            let _ = std::fs::remove_dir_all(root);
        }
    }

    #[test]
    fn a_stale_claims_table_fails_the_check() {
        let (src, generated) = book("60");
        write_claims(&src, &generated, false, false).expect("test setup or a check that must pass");
        std::fs::write(
            src.join("lesson-04-indexing.md"),
            "<span class=\"claim\" data-check=\"index_suffix[trgm_gin][speed-up] >= 70\">at least 70×</span>",
        )
        .expect("test setup or a check that must pass");
        let err = format!(
            "{:#}",
            write_claims(&src, &generated, false, true).expect_err("this must fail")
        );
        assert!(err.contains("Run `just report --claims`"), "{err}");
        let _ =
            std::fs::remove_dir_all(src.parent().expect("test setup or a check that must pass"));
    }
}
