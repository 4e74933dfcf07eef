//! Claims as code: a chapter's sentence that states a measured comparison
//! carries the check that backs it, and every run of `just report` checks it.
//!
//! In a chapter, a claim is a span around the sentence (or the part of it
//! that states the number), with its check in an attribute:
//!
//! ```text
//! <span class="claim" data-check="index_suffix[seq_scan][median] / index_suffix[trgm_gin][median] >= 50">the
//! trigram index answers at least 50× faster than the scan</span>
//! ```
//!
//! The browser shows the sentence as plain text. A check is
//! `VALUE OP LIMIT` or `VALUE in LOW..HIGH`, where
//!
//! - `VALUE` is a cell of a generated table, `file[row][column]` (the file in
//!   `book/src/generated` without `.md`; the row by its first cell, without
//!   backticks; `a|b` matches the first two cells; the column by its header),
//!   or the same cell as run N recorded it, `file@N[row][column]` (see
//!   [`crate::history`]): a sentence about one run ("in the twelfth run,
//!   390×") stays true after later runs, and stays checked;
//!   or the same cell in *every* recorded run and this one,
//!   `file@all[row][column]`: a range across runs ("2.1× to 3.4× across
//!   this edition's runs") holds while every run's figure is in it, and a
//!   run that falls outside fails the report, so the range is widened with
//!   the measurement that widened it (runs without the cell are skipped);
//!   or one cell divided by another (`x / y`: a ratio, so the units must
//!   agree; with `@all` on both sides, divided run by run);
//! - `OP` is `>=`, `<=`, `>` or `<`; the limit is a number with or without
//!   a unit (`2 ms`, `50×`, `95%`), converted to the cell's unit, or another
//!   `VALUE` in the same unit (`a@12[r][c] < a@11[r][c]`).
//!
//! [`evaluate`] checks every claim of every chapter against a directory of
//! generated files; [`table_md`] renders one chapter's claims with ✓/✗ and
//! the measured value (`generated/claims_<chapter>.md`, included at the end
//! of the chapter). `just report` writes those tables after every run and a
//! full run fails, naming the sentence, when a claim no longer holds;
//! `just report --claims` re-checks the committed figures without benching.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// What a cell or a limit measures, in base units (seconds, bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dim {
    Time,
    Size,
    /// requests (or operations) per second
    Rate,
    /// `×`: already a ratio
    Ratio,
    Percent,
    /// a bare number (a count, a hit ratio)
    Count,
}

/// A number read from a table cell or a check, in base units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub dim: Dim,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        match self.dim {
            Dim::Time if v >= 1.0 => write!(f, "{} s", sig(v)),
            Dim::Time if v >= 1e-3 => write!(f, "{} ms", sig(v * 1e3)),
            Dim::Time if v >= 1e-6 => write!(f, "{} µs", sig(v * 1e6)),
            Dim::Time => write!(f, "{} ns", sig(v * 1e9)),
            Dim::Size if v >= 1024.0 * 1024.0 * 1024.0 => {
                write!(f, "{} GB", sig(v / (1024.0 * 1024.0 * 1024.0)))
            }
            Dim::Size if v >= 1024.0 * 1024.0 => write!(f, "{} MB", sig(v / (1024.0 * 1024.0))),
            Dim::Size if v >= 1024.0 => write!(f, "{} kB", sig(v / 1024.0)),
            Dim::Size => write!(f, "{} B", sig(v)),
            Dim::Rate => write!(f, "{} /s", sig(v)),
            Dim::Ratio => write!(f, "{}×", sig(v)),
            Dim::Percent => write!(f, "{}%", sig(v)),
            Dim::Count => write!(f, "{}", sig(v)),
        }
    }
}

/// Three significant digits, as the generated tables print.
fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Reads the first number in `text` and the unit right after it
/// (`96.99 ms`, `1,040`, `76.8× vs …`, `**0.0%**`, `53k req/s`).
pub fn parse_quantity(text: &str) -> Option<Quantity> {
    let t: String = text.chars().filter(|c| !matches!(c, '*' | '`')).collect();
    let start = t.find(|c: char| c.is_ascii_digit())?;
    let neg = t[..start].ends_with('-') || t[..start].ends_with('−');
    let rest = &t[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(rest.len());
    let digits: String = rest[..end].chars().filter(|&c| c != ',').collect();
    let mut value: f64 = digits.trim_end_matches('.').parse().ok()?;
    if neg {
        value = -value;
    }
    let unit = rest[end..].trim_start_matches([' ', '\u{a0}']);
    // A thousands suffix before a rate: `53k req/s`.
    let (value, unit) = match unit.strip_prefix('k') {
        Some(u) if u.trim_start().starts_with("req/s") || u.trim_start().starts_with("/s") => {
            (value * 1e3, u.trim_start())
        }
        _ => (value, unit),
    };
    let word: String = unit
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, 'µ' | '×' | '%' | '/'))
        .collect();
    let (scale, dim) = match word.as_str() {
        "ns" => (1e-9, Dim::Time),
        "µs" | "us" => (1e-6, Dim::Time),
        "ms" => (1e-3, Dim::Time),
        "s" => (1.0, Dim::Time),
        "min" => (60.0, Dim::Time),
        "B" | "bytes" => (1.0, Dim::Size),
        "kB" | "KB" | "KiB" => (1024.0, Dim::Size),
        "MB" | "MiB" => (1024.0 * 1024.0, Dim::Size),
        "GB" | "GiB" => (1024.0 * 1024.0 * 1024.0, Dim::Size),
        "req/s" | "/s" | "ops/s" => (1.0, Dim::Rate),
        w if w.starts_with('×') => (1.0, Dim::Ratio),
        w if w.starts_with('%') => (1.0, Dim::Percent),
        _ => (1.0, Dim::Count),
    };
    Some(Quantity {
        value: value * scale,
        dim,
    })
}

/// A limit as written in a check: a number and an optional unit, nothing
/// else (so that a mistyped cell reference is an error, not its digits).
fn limit_quantity(text: &str) -> Option<Quantity> {
    let t = text.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-')))
        .unwrap_or(t.len());
    let unit = t[num_end..].trim();
    const UNITS: &[&str] = &[
        "", "ns", "µs", "us", "ms", "s", "min", "B", "bytes", "kB", "KB", "KiB", "MB", "MiB", "GB",
        "GiB", "req/s", "/s", "ops/s", "×", "%",
    ];
    if num_end == 0 || !UNITS.contains(&unit) {
        return None;
    }
    parse_quantity(t)
}

/// One Markdown pipe table: its header cells and rows of cells.
#[derive(Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The pipe tables in a generated file, in order.
pub fn tables(md: &str) -> Vec<Table> {
    let mut out = Vec::new();
    let mut cur: Option<Table> = None;
    for line in md.lines() {
        let line = line.trim();
        if !(line.starts_with('|') && line.ends_with('|') && line.len() > 1) {
            out.extend(cur.take());
            continue;
        }
        let cells: Vec<String> = line[1..line.len() - 1]
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        match cur.as_mut() {
            None => {
                cur = Some(Table {
                    headers: cells,
                    rows: Vec::new(),
                })
            }
            // The `| --- | ---: |` line under the header.
            Some(t)
                if t.rows.is_empty()
                    && cells
                        .iter()
                        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':'))) => {}
            Some(t) => t.rows.push(cells),
        }
    }
    out.extend(cur);
    out
}

/// A cell's text as a row key: no backticks, no bold, trimmed.
pub fn key(cell: &str) -> String {
    cell.chars()
        .filter(|c| !matches!(c, '`' | '*'))
        .collect::<String>()
        .trim()
        .to_string()
}

/// Where a check's cells are read: this run's generated files, and the
/// runs kept in `book/history` (for `file@N[row][column]`).
#[derive(Debug, Clone)]
pub struct Sources {
    pub generated: PathBuf,
    pub history: PathBuf,
}

/// `file[row][column]`, or `file@N[row][column]` for run N of the history,
/// as written in a check.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRef {
    pub file: String,
    /// A recorded run (`@12`): a sentence about that run stays checked,
    /// and true, after later runs.
    pub run: Option<u32>,
    /// `@all`: every recorded run and this one (only in a check's value).
    pub every: bool,
    pub row: String,
    pub column: String,
}

impl fmt::Display for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.run {
            Some(n) => write!(f, "{}@{n}[{}][{}]", self.file, self.row, self.column),
            None if self.every => write!(f, "{}@all[{}][{}]", self.file, self.row, self.column),
            None => write!(f, "{}[{}][{}]", self.file, self.row, self.column),
        }
    }
}

impl CellRef {
    fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        let (file, rest) = s
            .split_once('[')
            .with_context(|| format!("`{s}` is not file[row][column]"))?;
        let (row, rest) = rest
            .split_once("][")
            .with_context(|| format!("`{s}` is not file[row][column]"))?;
        let column = rest
            .strip_suffix(']')
            .with_context(|| format!("`{s}` is not file[row][column]"))?;
        let (file, run, every) = match file.split_once('@') {
            Some((f, n)) if n.trim() == "all" => (f, None, true),
            Some((f, n)) => (
                f,
                Some(
                    n.trim()
                        .parse::<u32>()
                        .with_context(|| format!("`{s}`: `@{n}` is not a run number or `all`"))?,
                ),
                false,
            ),
            None => (file, None, false),
        };
        Ok(CellRef {
            file: file.trim().to_string(),
            run,
            every,
            row: row.trim().to_string(),
            column: column.trim().to_string(),
        })
    }

    /// The cell's text: in `generated/<file>.md`, or in run N's record.
    pub fn lookup(&self, src: &Sources) -> anyhow::Result<String> {
        if self.every {
            bail!("{self}: `@all` is a set of runs, not one cell: use it in a check's value");
        }
        if let Some(n) = self.run {
            let path = src.history.join(format!("run-{n:02}.json"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{self}: no recorded run {n} ({})", path.display()))?;
            let run: crate::history::Run = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a recorded run", path.display()))?;
            let rows = run
                .cells
                .get(&self.file)
                .with_context(|| format!("{self}: run {n} has no table {}", self.file))?;
            // The history keys a row by its first cell, or by its first two
            // where the first repeats; a check may name more than needed.
            let first = self.row.split('|').next().unwrap_or_default().trim();
            let cols = rows
                .get(&self.row)
                .or_else(|| rows.get(first))
                .with_context(|| {
                    format!(
                        "{self}: run {n}'s {} has no row `{}` (rows: {})",
                        self.file,
                        self.row,
                        rows.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?;
            return cols
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&self.column))
                .map(|(_, v)| v.clone())
                .with_context(|| {
                    format!(
                        "{self}: run {n}'s {} row `{}` has no column `{}` (it has: {})",
                        self.file,
                        self.row,
                        self.column,
                        cols.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
        }
        let path = src.generated.join(format!("{}.md", self.file));
        let md = std::fs::read_to_string(&path)
            .with_context(|| format!("{self}: no generated file {}", path.display()))?;
        let want: Vec<&str> = self.row.split('|').map(str::trim).collect();
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for t in tables(&md) {
            let Some(col) = t
                .headers
                .iter()
                .position(|h| key(h).eq_ignore_ascii_case(&self.column))
            else {
                columns.extend(t.headers.iter().map(|h| key(h)));
                continue;
            };
            let hits: Vec<&Vec<String>> = t
                .rows
                .iter()
                .filter(|r| {
                    r.len() >= want.len() && want.iter().zip(r.iter()).all(|(w, c)| key(c) == *w)
                })
                .collect();
            match hits.as_slice() {
                [row] => {
                    return row
                        .get(col)
                        .cloned()
                        .with_context(|| format!("{self}: the row has no column {col}"));
                }
                [] => rows.extend(t.rows.iter().filter_map(|r| r.first()).map(|c| key(c))),
                _ => bail!("{self}: {} rows match; name more cells (`a|b`)", hits.len()),
            }
        }
        if columns.is_empty() || !rows.is_empty() {
            bail!(
                "{self}: no row `{}` in {}.md's tables with a column `{}` (rows: {})",
                self.row,
                self.file,
                self.column,
                rows.join(", ")
            )
        }
        bail!(
            "{self}: no column `{}` in {}.md (it has: {})",
            self.column,
            self.file,
            columns.join(", ")
        )
    }
}

/// A check's left side: one cell, or one cell divided by another.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Cell(CellRef),
    /// `a / b`, or `a / (b + c + …)`: a cell against the sum of others.
    Ratio(CellRef, Vec<CellRef>),
}

impl Value {
    fn every(&self) -> bool {
        match self {
            Value::Cell(c) => c.every,
            Value::Ratio(a, b) => a.every || b.iter().any(|c| c.every),
        }
    }

    /// This value with every `@all` replaced by run `n` (or by this run).
    fn at(&self, n: Option<u32>) -> Value {
        let at = |c: &CellRef| {
            if c.every {
                CellRef {
                    run: n,
                    every: false,
                    ..c.clone()
                }
            } else {
                c.clone()
            }
        };
        match self {
            Value::Cell(c) => Value::Cell(at(c)),
            Value::Ratio(a, b) => Value::Ratio(at(a), b.iter().map(at).collect()),
        }
    }

    /// An `@all` value in every recorded run that has it, and in this run.
    fn eval_every(&self, dir: &Sources) -> anyhow::Result<Vec<Quantity>> {
        let mut runs: Vec<u32> = std::fs::read_dir(&dir.history)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("run-")?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        runs.sort_unstable();
        let mut out: Vec<Quantity> = runs
            .into_iter()
            .filter_map(|n| self.at(Some(n)).eval(dir).ok())
            .collect();
        // This run's figure must be there: a claim about a figure the report
        // no longer writes is an error, not a range over old runs.
        out.push(self.at(None).eval(dir)?);
        Ok(out)
    }

    fn eval(&self, dir: &Sources) -> anyhow::Result<Quantity> {
        let read = |c: &CellRef| -> anyhow::Result<Quantity> {
            let text = c.lookup(dir)?;
            parse_quantity(&text).with_context(|| format!("{c}: `{text}` holds no number"))
        };
        match self {
            Value::Cell(c) => read(c),
            Value::Ratio(a, b) => {
                let x = read(a)?;
                let mut y: Option<Quantity> = None;
                for c in b {
                    let q = read(c)?;
                    y = Some(match y {
                        None => q,
                        Some(sum) if sum.dim == q.dim => Quantity {
                            value: sum.value + q.value,
                            dim: q.dim,
                        },
                        Some(sum) => bail!("{c}: {q} cannot be added to {sum}"),
                    });
                }
                let y = y.context("a ratio needs a divisor")?;
                let b = b
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" + ");
                if x.dim != y.dim {
                    bail!("{a} / {b}: {x} and {y} are not in the same unit");
                }
                if y.value == 0.0 {
                    bail!("{a} / {b}: divides by zero ({y})");
                }
                Ok(Quantity {
                    value: x.value / y.value,
                    dim: Dim::Ratio,
                })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Ge,
    Le,
    Gt,
    Lt,
}

/// Where the cell starting at `from` ends: after `file[row][column]`.
fn cell_end(s: &str, from: usize) -> Option<usize> {
    let open = from + s[from..].find('[')?;
    let mid = open + s[open..].find("][")?;
    Some(mid + 2 + s[mid + 2..].find(']')? + 1)
}

/// Parses the value at the start of a check: `cell`, `cell / cell` or
/// `cell / (cell + cell + …)`. Returns it and the rest of `s` (the test).
/// Each cell ends where its `[column]` closes, so a row or column name may
/// hold " in ", " / " or "<"; the test may not.
fn parse_value(s: &str) -> anyhow::Result<(Value, &str)> {
    let cell = |from: usize| -> anyhow::Result<(CellRef, usize)> {
        let end = cell_end(s, from)
            .with_context(|| format!("`{s}`: expected file[row][column] at `{}`", &s[from..]))?;
        Ok((CellRef::parse(&s[from..end])?, end))
    };
    let (a, end) = cell(0)?;
    let Some(rest) = s[end..].trim_start().strip_prefix("/ ") else {
        return Ok((Value::Cell(a), &s[end..]));
    };
    let Some(inner) = rest.strip_prefix('(') else {
        let (b, end) = cell(s.len() - rest.len())?;
        return Ok((Value::Ratio(a, vec![b]), &s[end..]));
    };
    let (mut divisors, mut from) = (Vec::new(), s.len() - inner.len());
    loop {
        let (c, end) = cell(from)?;
        divisors.push(c);
        let after = s[end..].trim_start();
        if let Some(more) = after.strip_prefix("+ ") {
            from = s.len() - more.len();
        } else if let Some(rest) = after.strip_prefix(')') {
            return Ok((Value::Ratio(a, divisors), rest));
        } else {
            bail!("`{s}`: `( … )` needs a `+` between cells and a closing `)`");
        }
    }
}

/// A parsed `data-check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    value: Value,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Cmp(Op, String),
    Between(String, String),
}

impl Check {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (value, rest) = parse_value(s)?;
        let rest = rest.trim();
        let test = if let Some(r) = rest.strip_prefix("in ") {
            let (lo, hi) = r
                .split_once("..")
                .with_context(|| format!("`{s}`: `in` needs LOW..HIGH"))?;
            Test::Between(lo.trim().into(), hi.trim().into())
        } else {
            let (op, n) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)]
                .iter()
                .find_map(|(t, op)| rest.starts_with(t).then_some((*op, t.len())))
                .with_context(|| format!("`{s}`: no comparison (>=, <=, >, < or in LOW..HIGH)"))?;
            Test::Cmp(op, rest[n..].trim().into())
        };
        Ok(Check { value, test })
    }

    /// The measured value and whether the check holds.
    pub fn eval(&self, dir: &Sources) -> anyhow::Result<(Quantity, bool)> {
        if !self.value.every() {
            let q = self.value.eval(dir)?;
            return Ok((q, self.test_holds(q, dir)?));
        }
        // Every run must hold; the value shown is the first that does not,
        // or else the one nearest a limit (the smallest for `>=`, the
        // largest for `<=`, the nearer end for `in`).
        let all = self.value.eval_every(dir)?;
        for q in &all {
            if !self.test_holds(*q, dir)? {
                return Ok((*q, false));
            }
        }
        let pick = match &self.test {
            Test::Cmp(Op::Ge | Op::Gt, _) => all.iter().min_by(|a, b| a.value.total_cmp(&b.value)),
            Test::Cmp(Op::Le | Op::Lt, _) => all.iter().max_by(|a, b| a.value.total_cmp(&b.value)),
            Test::Between(lo, hi) => {
                let (lo, hi) = (self.limit(lo, all[0], dir)?, self.limit(hi, all[0], dir)?);
                let gap = |q: &Quantity| (q.value - lo).min(hi - q.value);
                all.iter().min_by(|a, b| gap(a).total_cmp(&gap(b)))
            }
        };
        pick.map(|q| (*q, true)).context("no run has this figure")
    }

    /// A limit's value, in `q`'s unit.
    fn limit(&self, text: &str, q: Quantity, dir: &Sources) -> anyhow::Result<f64> {
        // Another cell (`a < b@11[…][…]`): compared in the same unit.
        if text.contains('[') {
            let (other, rest) = parse_value(text)?;
            if !rest.trim().is_empty() {
                bail!("limit `{text}`: `{}` after the cell", rest.trim());
            }
            let l = other.eval(dir)?;
            if l.dim != q.dim {
                bail!("`{text}` ({l}) is not in the unit of the value ({q})");
            }
            return Ok(l.value);
        }
        let l = limit_quantity(text)
            .with_context(|| format!("limit `{text}` is not a number with an optional unit"))?;
        // A unitless limit is in the value's own unit (`>= 50` for a ratio).
        if l.dim == Dim::Count || l.dim == q.dim || (l.dim == Dim::Ratio && q.dim == Dim::Count) {
            Ok(l.value)
        } else {
            bail!("limit `{text}` is not in the unit of the value ({q})")
        }
    }

    fn test_holds(&self, q: Quantity, dir: &Sources) -> anyhow::Result<bool> {
        let limit = |text: &str| self.limit(text, q, dir);
        Ok(match &self.test {
            Test::Cmp(op, l) => {
                let l = limit(l)?;
                match op {
                    Op::Ge => q.value >= l,
                    Op::Le => q.value <= l,
                    Op::Gt => q.value > l,
                    Op::Lt => q.value < l,
                }
            }
            Test::Between(lo, hi) => (limit(lo)?..=limit(hi)?).contains(&q.value),
        })
    }
}

/// A claim found in a chapter.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The sentence, whitespace joined, as the reader sees it (Markdown left in).
    pub sentence: String,
    /// The `data-check` text.
    pub check: String,
}

const OPEN: &str = "<span class=\"claim\"";

/// `md` with every claim's opening tag in one shape, `<span class="claim"
/// data-check=`, however the author wrapped it (`<span` at a line's end).
pub fn normalize_claim_tags(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(i) = rest.find("<span") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "<span".len()..];
        let trimmed = after.trim_start();
        if trimmed.len() < after.len() && trimmed.starts_with("class=\"claim\"") {
            let after_class = trimmed["class=\"claim\"".len()..].trim_start();
            out.push_str(OPEN);
            out.push(' ');
            rest = after_class;
        } else {
            out.push_str("<span");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
const CHECK: &str = "data-check=\"";

/// The claims in one chapter's text.
pub fn find_claims(chapter: &str, md: &str) -> anyhow::Result<Vec<Claim>> {
    let mut out = Vec::new();
    // A claim shown as an example in a code block is not one.
    let mut prose = String::with_capacity(md.len());
    let mut fenced = false;
    for line in md.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
        }
        prose.push('\n');
    }
    let prose = normalize_claim_tags(&prose);
    let mut rest = prose.as_str();
    while let Some(i) = rest.find(OPEN) {
        let after = rest[i + OPEN.len()..].trim_start();
        let after = after.strip_prefix(CHECK).with_context(|| {
            format!("{chapter}: a claim span must be <span class=\"claim\" data-check=\"…\">")
        })?;
        let (check, after) = after.split_once("\">").with_context(|| {
            format!("{chapter}: a claim span whose data-check is not closed by `\">`")
        })?;
        let (sentence, after) = after
            .split_once("</span>")
            .with_context(|| format!("{chapter}: a claim span with no `</span>`"))?;
        out.push(Claim {
            sentence: sentence.split_whitespace().collect::<Vec<_>>().join(" "),
            check: check.split_whitespace().collect::<Vec<_>>().join(" "),
        });
        rest = after;
    }
    Ok(out)
}

/// A claim and what this run measured for it.
#[derive(Debug)]
pub struct Outcome {
    pub claim: Claim,
    /// The measured value and whether the claim holds, or why it could not be checked.
    pub result: Result<(Quantity, bool), String>,
}

impl Outcome {
    pub fn holds(&self) -> bool {
        matches!(self.result, Ok((_, true)))
    }
}

/// Every chapter's claims in `book_src`, checked against the generated
/// files in `generated` and the runs in `book_src/../history`.
pub fn evaluate(
    book_src: &Path,
    generated: &Path,
) -> anyhow::Result<BTreeMap<String, Vec<Outcome>>> {
    let sources = Sources {
        generated: generated.to_path_buf(),
        history: book_src.parent().unwrap_or(book_src).join("history"),
    };
    let mut by_chapter = BTreeMap::new();
    for (name, md) in crate::prose::chapters(book_src)? {
        let outcomes: Vec<Outcome> = find_claims(&name, &md)?
            .into_iter()
            .map(|claim| {
                let result = Check::parse(&claim.check)
                    .and_then(|c| c.eval(&sources))
                    .map_err(|e| format!("{e:#}"));
                Outcome { claim, result }
            })
            .collect();
        if !outcomes.is_empty() {
            by_chapter.insert(name, outcomes);
        }
    }
    Ok(by_chapter)
}

/// The generated file that lists a chapter's claims: `claims_lesson-04-indexing.md`.
pub fn file_name(chapter: &str) -> String {
    format!("claims_{chapter}")
}

/// One chapter's claims as a table: the sentence, the check, the value this run measured, ✓/✗.
pub fn table_md(outcomes: &[Outcome], quick: bool) -> String {
    let mut md = String::from(
        "<!-- generated by `just report` from the chapter's claims; do not edit -->\n",
    );
    if quick {
        md.push_str(&format!(
            "<!-- {q} -->\n> **{q}**: checked against a quick run's figures, not the book's.\n\n",
            q = crate::render::QUICK_MARKER
        ));
    }
    md.push_str("| | claim | checked as | this run |\n| --- | --- | --- | ---: |\n");
    for o in outcomes {
        let (mark, measured) = match &o.result {
            Ok((q, true)) => ("✓", q.to_string()),
            Ok((q, false)) => ("✗", format!("**{q}**")),
            Err(e) => ("✗", format!("not checked: {e}")),
        };
        md.push_str(&format!(
            "| {mark} | {} | `{}` | {measured} |\n",
            o.claim.sentence.replace('|', "\\|"),
            o.claim.check.replace('|', "\\|")
        ));
    }
    let held = outcomes.iter().filter(|o| o.holds()).count();
    md.push_str(&format!(
        "\n{held} of {} claims hold on this run.\n",
        outcomes.len()
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_the_tables_print_them() {
        let q = |s| parse_quantity(s).expect("test setup or a check that must pass");
        assert_eq!(q("96.99 ms").dim, Dim::Time);
        assert!((q("96.99 ms").value - 0.09699).abs() < 1e-12);
        assert_eq!(q("293.5 µs").dim, Dim::Time);
        assert!((q("293.5 µs").value - 293.5e-6).abs() < 1e-12);
        assert_eq!(
            q("76.8× vs `seq_scan`"),
            Quantity {
                value: 76.8,
                dim: Dim::Ratio
            }
        );
        assert_eq!(
            q("**0.0%**"),
            Quantity {
                value: 0.0,
                dim: Dim::Percent
            }
        );
        assert_eq!(
            q("1,040"),
            Quantity {
                value: 1040.0,
                dim: Dim::Count
            }
        );
        assert_eq!(
            q("53k req/s"),
            Quantity {
                value: 53000.0,
                dim: Dim::Rate
            }
        );
        assert_eq!(q("16MB").value, 16.0 * 1024.0 * 1024.0);
        assert_eq!(
            q("0.883"),
            Quantity {
                value: 0.883,
                dim: Dim::Count
            }
        );
        assert_eq!(parse_quantity("none"), None);
    }

    const SUFFIX: &str = "<!-- generated -->
| bench | what it measures | median | speed-up |
| --- | --- | ---: | ---: |
| `seq_scan` | no index | 96.99 ms | |
| `trgm_gin` | pg_trgm GIN index | 1.26 ms | 76.8× vs `seq_scan` |

| phase | service | p99 |
| --- | --- | ---: |
| PostgreSQL slow | lesson 3: swr | 1.9 ms |
| PostgreSQL slow | lesson 2: cache-aside | 254 ms |
";

    fn dir() -> tempfile_dir::Dir {
        let d = tempfile_dir::Dir::new();
        std::fs::write(d.path().join("index_suffix.md"), SUFFIX)
            .expect("test setup or a check that must pass");
        d
    }

    /// A scratch directory removed on drop (no extra dependency for it).
    mod tempfile_dir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "report-claims-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).expect("test setup or a check that must pass");
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn check(s: &str, d: &tempfile_dir::Dir) -> anyhow::Result<(Quantity, bool)> {
        Check::parse(s)?.eval(&Sources {
            generated: d.path().to_path_buf(),
            history: d.path().join("history"),
        })
    }

    #[test]
    fn a_check_reads_cells_and_compares() {
        let d = dir();
        let (q, ok) = check(
            "index_suffix[seq_scan][median] / index_suffix[trgm_gin][median] >= 50",
            &d,
        )
        .expect("test setup or a check that must pass");
        assert!(ok);
        assert!((q.value - 96.99 / 1.26).abs() < 1e-9);
        // The same claim with a threshold the run does not reach fails.
        assert!(
            !check(
                "index_suffix[seq_scan][median] / index_suffix[trgm_gin][median] >= 100",
                &d
            )
            .expect("test setup or a check that must pass")
            .1
        );
        assert!(
            check("index_suffix[trgm_gin][speed-up] in 50..100", &d)
                .expect("test setup or a check that must pass")
                .1
        );
        assert!(
            !check("index_suffix[trgm_gin][speed-up] in 80..100", &d)
                .expect("test setup or a check that must pass")
                .1
        );
        assert!(
            check("index_suffix[trgm_gin][median] < 2 ms", &d)
                .expect("test setup or a check that must pass")
                .1
        );
        assert!(
            !check("index_suffix[trgm_gin][median] < 1000 µs", &d)
                .expect("test setup or a check that must pass")
                .1
        );
        // A recorded run's cell: `@N` reads book/history/run-NN.json.
        std::fs::create_dir_all(d.path().join("history")).expect("a history directory");
        let run = crate::history::Run {
            n: 3,
            measured: "day 3".into(),
            cpu: "AMD EPYC".into(),
            cells: [(
                "index_suffix".to_string(),
                crate::history::snapshot_file(&SUFFIX.replace("76.8×", "95.0×")),
            )]
            .into(),
        };
        std::fs::write(
            d.path().join("history/run-03.json"),
            serde_json::to_string(&run).expect("json"),
        )
        .expect("write run 3");
        assert!(
            check("index_suffix@3[trgm_gin][speed-up] in 94..96", &d)
                .expect("run 3")
                .1
        );
        assert!(
            !check("index_suffix[trgm_gin][speed-up] in 94..96", &d)
                .expect("this run")
                .1
        );
        let e = format!(
            "{:#}",
            check("index_suffix@4[trgm_gin][speed-up] > 1", &d).expect_err("no run 4")
        );
        assert!(e.contains("no recorded run 4"), "{e}");
        // A name may hold " in ", " / " or "<": only the test after the
        // last cell's closing bracket is read as the test.
        let c = Check::parse("f[a in b][x / y < z] in 1..2").expect("parses");
        assert_eq!(
            c.value,
            Value::Cell(CellRef::parse("f[a in b][x / y < z]").expect("a cell"))
        );
        assert_eq!(c.test, Test::Between("1".into(), "2".into()));
        let c = Check::parse("f[a][b in c] / g[d][e] >= 3").expect("parses");
        assert!(matches!(c.value, Value::Ratio(..)));
        assert_eq!(c.test, Test::Cmp(Op::Ge, "3".into()));
        let c = Check::parse("f[a][b] / (g[c][d] + h[e in f][g]) in 1..2").expect("parses");
        let Value::Ratio(_, divisor) = &c.value else {
            panic!("a ratio: {c:?}")
        };
        assert_eq!(divisor.len(), 2);
        assert_eq!(c.test, Test::Between("1".into(), "2".into()));
        // A cell against the sum of others.
        let (half, holds) = check(
            "index_suffix[trgm_gin][median] / (index_suffix[trgm_gin][median] + index_suffix[trgm_gin][median]) in 0.49..0.51",
            &d,
        )
        .expect("a sum");
        assert!(holds, "{half}");
        // `@all`: run 3's 95.0× and this run's 76.8× must both be in range.
        let (shown, holds) =
            check("index_suffix@all[trgm_gin][speed-up] in 70..100", &d).expect("every run");
        assert!(holds);
        assert!(
            (shown.value - 95.0).abs() < 1e-9,
            "the run nearest a limit: {shown}"
        );
        let (shown, holds) =
            check("index_suffix@all[trgm_gin][speed-up] in 70..90", &d).expect("every run");
        assert!(!holds, "run 3 is outside");
        assert!(
            (shown.value - 95.0).abs() < 1e-9,
            "the run that fails is shown: {shown}"
        );
        assert!(
            check("index_suffix@all[trgm_gin][speed-up] >= 76.8", &d)
                .expect("every run")
                .1
        );
        assert!(
            !check("index_suffix@all[trgm_gin][speed-up] >= 80", &d)
                .expect("every run")
                .1,
            "this run's 76.8× is below"
        );
        // Two key cells pick the row of a second table.
        assert!(
            check(
                "index_suffix[PostgreSQL slow|lesson 3: swr][p99] <= 5 ms",
                &d
            )
            .expect("test setup or a check that must pass")
            .1
        );
    }

    #[test]
    fn a_bad_check_names_what_is_wrong() {
        let d = dir();
        let e = |s: &str| format!("{:#}", check(s, &d).expect_err("this must fail"));
        assert!(e("index_suffix[seq_scan][mean] >= 1").contains("no column `mean`"));
        assert!(e("index_suffix[nope][median] >= 1").contains("no row `nope`"));
        assert!(e("missing[seq_scan][median] >= 1").contains("no generated file"));
        assert!(e("index_suffix[PostgreSQL slow][p99] >= 1").contains("2 rows match"));
        assert!(e("index_suffix[seq_scan][median] >= 5 MB").contains("not in the unit"));
        assert!(
            e("index_suffix[seq_scan][median] / index_suffix[trgm_gin][speed-up] >= 1")
                .contains("same unit")
        );
        assert!(e("index_suffix[seq_scan][median] = 1").contains("no comparison"));
        assert!(
            e("index_suffix[seq_scan][median] > 11 apples")
                .contains("not a number with an optional unit")
        );
        // Another cell as the limit.
        assert!(
            check(
                "index_suffix[trgm_gin][median] < index_suffix[seq_scan][median]",
                &d
            )
            .expect("cells")
            .1
        );
        assert!(
            !check(
                "index_suffix[seq_scan][median] < index_suffix[trgm_gin][median]",
                &d
            )
            .expect("cells")
            .1
        );
    }

    #[test]
    fn claims_are_found_in_a_chapter() {
        let md = "Text <span class=\"claim\"\ndata-check=\"a[b][c] >= 50\">the trigram index is\nat least 50× faster</span>, and <span class=\"claim\" data-check=\"a[b][d] in 0.8..1.25\">no gain</span>.";
        let c = find_claims("x.md", md).expect("test setup or a check that must pass");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].sentence, "the trigram index is at least 50× faster");
        assert_eq!(c[1].check, "a[b][d] in 0.8..1.25");
        assert!(find_claims("x.md", "<span class=\"claim\" data-check=\"a >= 1\">open").is_err());
        let wrapped = "a <span\nclass=\"claim\"\n  data-check=\"a[b][c] >= 1\">x</span>";
        assert_eq!(find_claims("x.md", wrapped).expect("one claim").len(), 1);
        let example = "```html\n<span class=\"claim\" data-check=\"a[b][c] >= 1\">x</span>\n```\n";
        assert!(find_claims("x.md", example).expect("no claim").is_empty());
    }
}
