//! The book's prose, checked: no measured quantity typed by hand, no lesson
//! that does not exist.
//!
//! A number with a unit of time, size or rate, a `×` ratio or a `%` in a
//! chapter's prose is a measurement, and a measurement typed by hand drifts
//! from the run that made it. So each must be one of:
//!
//! - generated: in a file of `book/src/generated` that the chapter includes
//!   (not in the chapter's own text, so never seen here);
//! - a checked claim: inside `<span class="claim" …>` (see [`crate::claims`]);
//! - a setting, written as code (`` `shared_buffers = 128MB` ``, `` `TTL 60 s` ``):
//!   inline code and code blocks are not prose;
//! - on the allow-list, `book/prose-allow.txt`: phrases that state a setting
//!   or a fact rather than a measurement ("a 60 s TTL", "2 cores");
//! - on the baseline, `book/prose-baseline.txt`: the sentences written before
//!   this check existed, each still to become a claim or a generated value.
//!
//! The baseline only shrinks. A chapter that states more hand-typed numbers
//! than the baseline lists for it fails. One that states as many or fewer,
//! but not the listed ones (a figure updated after a run, a sentence
//! reworded), fails until `--write-baseline` records it, which refuses to
//! let any chapter's count grow.
//!
//! `just report --lint-book` runs it; `.ci/book` fails on what it finds.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

/// A quantity found in prose, with the words before it (the baseline's key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub chapter: String,
    /// Up to six words before the quantity and the quantity itself.
    pub snippet: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.chapter, self.snippet)
    }
}

/// The chapter's prose paragraphs (each joined into one line), with code,
/// comments, includes, claims and link targets taken out.
pub fn paragraphs(md: &str) -> Vec<String> {
    let mut text = String::new();
    let mut fenced = false;
    for line in md.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            text.push('\n');
            continue;
        }
        if fenced || t.starts_with("{{#") {
            text.push('\n');
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    let text = crate::claims::normalize_claim_tags(&text);
    let text = cut(&text, "<!--", "-->", " ");
    let text = cut(&text, "<span class=\"claim\"", "</span>", " ⟨claim⟩ ");
    let text = cut(&text, "](", ")", "]");
    let text = cut_code_spans(&text);
    // Any other inline HTML tag (its attributes are not prose).
    let text = cut(&text, "<", ">", " ");
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// `text` with every `open … close` replaced by `with`. An unclosed `open`
/// is left as it is.
fn cut(text: &str, open: &str, close: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        out.push_str(&rest[..i]);
        out.push_str(with);
        // Keep paragraph breaks that the cut spans over.
        let inner = &after[..j];
        if inner.contains("\n\n") {
            out.push_str("\n\n");
        }
        rest = &after[j + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Inline code spans (`` `x` ``, ``` ``x`` ```) replaced by a marker.
fn cut_code_spans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('`') {
        let ticks = rest[i..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[i..i + ticks];
        let after = &rest[i + ticks..];
        let Some(j) = after.find(fence) else { break };
        out.push_str(&rest[..i]);
        out.push_str(" ⟨code⟩ ");
        rest = &after[j + ticks..];
    }
    out.push_str(rest);
    out
}

/// Units that make a number a measurement. Longest first, so `ms` wins over `s`.
const UNITS: &[&str] = &[
    "k req/s", "req/s", "ops/s", "/s", "seconds", "second", "minutes", "ns", "µs", "us", "ms",
    "min", "s", "KiB", "MiB", "GiB", "kB", "KB", "MB", "GB", "bytes", "×", "%",
];

/// The measured quantities in one paragraph: (byte offset, byte end, text).
pub fn quantities(p: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let bytes = p.as_bytes();
    let mut i = 0;
    while i < p.len() {
        let c = bytes[i];
        if !c.is_ascii_digit() {
            i += 1;
            continue;
        }
        // Not a number when glued to a word before it (`p99`, `x86_64`, `lesson-03`).
        let glued = p[..i]
            .chars()
            .next_back()
            .is_some_and(|b| b.is_alphanumeric() || matches!(b, '_' | '-' | '.' | '/'));
        // The number, with a range after it (`1.27–1.86`, `5-10`).
        let mut j = i;
        loop {
            while j < p.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.' || bytes[j] == b',')
            {
                j += 1;
            }
            let rest = &p[j..];
            let dash = ["–", "-", " to ", " and "].iter().find(|d| {
                rest.starts_with(*d) && rest[d.len()..].starts_with(|c: char| c.is_ascii_digit())
            });
            match dash {
                Some(d) => j += d.len(),
                None => break,
            }
        }
        let num_end = j;
        // A trailing `.` or `,` ends the sentence, not the number.
        let num_end = p[..num_end].trim_end_matches(['.', ',']).len();
        let after = &p[num_end..];
        let gap = after.len() - after.trim_start_matches([' ', '\u{a0}']).len();
        let unit_text = &after[gap..];
        let unit = UNITS.iter().find(|u| {
            unit_text.starts_with(**u)
                && !unit_text[u.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() && !u.ends_with(['×', '%']))
        });
        if let (false, Some(u)) = (glued, unit) {
            // A unit follows at most one space; a bare `s` needs the space
            // (`5 s`), since `503s` is a plural, not seconds.
            if gap <= 2 && !(*u == "s" && gap == 0) {
                let end = num_end + gap + u.len();
                out.push((i, end, p[i..end].to_string()));
                i = end;
                continue;
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// Up to six words before the quantity, and the quantity.
fn snippet(p: &str, start: usize, end: usize) -> String {
    let before: Vec<&str> = p[..start].split_whitespace().collect();
    let from = before.len().saturating_sub(6);
    let mut s = before[from..].join(" ");
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(&p[start..end]);
    s
}

/// Every measured quantity in a chapter that no allow-list phrase covers.
pub fn lint_chapter(chapter: &str, md: &str, allow: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in paragraphs(md) {
        let allowed: Vec<(usize, usize)> = allow
            .iter()
            .filter(|a| !a.is_empty())
            .flat_map(|a| {
                p.match_indices(a.as_str())
                    .map(|(i, m)| (i, i + m.len()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (start, end, _) in quantities(&p) {
            if allowed.iter().any(|&(a, b)| a <= start && end <= b) {
                continue;
            }
            out.push(Finding {
                chapter: chapter.to_string(),
                snippet: snippet(&p, start, end),
            });
        }
    }
    out
}

/// References to a lesson or exercise past the last one (`lesson 12`).
pub fn missing_lessons(chapter: &str, md: &str, lessons: u32) -> Vec<String> {
    let mut out = Vec::new();
    for p in paragraphs(md) {
        let lower = p.to_ascii_lowercase();
        for word in ["lesson ", "lessons ", "exercise ", "exercises "] {
            for (i, _) in lower.match_indices(word) {
                if i > 0 && lower[..i].ends_with(|c: char| c.is_alphanumeric()) {
                    continue;
                }
                // `lessons 6, 7 and 8`, `lessons 2–9`: every number in the list.
                let mut rest = &p[i + word.len()..];
                let mut list = Vec::new();
                loop {
                    let digits =
                        rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    let Ok(n) = rest[..digits].parse::<u32>() else {
                        break;
                    };
                    list.push(n);
                    rest = &rest[digits..];
                    // `lesson 1, 19 for lesson 2`: a list only after the plural.
                    let seps: &[&str] = if word.ends_with("s ") {
                        &[", and ", ", ", " and ", " or ", " to ", "–", "-"]
                    } else {
                        &["–", "-", " to "]
                    };
                    let Some(sep) = seps.iter().find(|s| {
                        rest.starts_with(**s)
                            && rest[s.len()..].starts_with(|c: char| c.is_ascii_digit())
                    }) else {
                        break;
                    };
                    rest = &rest[sep.len()..];
                }
                for n in list {
                    if n == 0 || n > lessons {
                        out.push(format!(
                            "{chapter}: \"{}\" names {word}{n}, but the book has lessons 1 to {lessons}",
                            p[i..].chars().take(60).collect::<String>()
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Lines of a list file (`#` comments and blank lines skipped); none when it is missing.
pub fn read_list(path: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("Failed to read {}", path.display())),
    }
}

/// What the book check found.
#[derive(Debug, Default)]
pub struct Lint {
    /// Chapters with more hand-typed numbers than the baseline allows them:
    /// (chapter, found, allowed).
    pub over: Vec<(String, usize, usize)>,
    /// Quantities that match no baseline line (new, or an old one reworded).
    pub new: Vec<Finding>,
    /// Baseline lines the book no longer has.
    pub gone: Vec<String>,
    /// References to lessons that do not exist.
    pub lessons: Vec<String>,
    /// Every finding (for writing the baseline).
    pub all: Vec<Finding>,
}

impl Lint {
    /// Nothing to fix: no chapter over its count, no missing lesson, and
    /// the baseline lists exactly what the book holds.
    pub fn ok(&self) -> bool {
        self.over.is_empty()
            && self.lessons.is_empty()
            && self.new.is_empty()
            && self.gone.is_empty()
    }
}

/// Every `*.md` file in `book_src` (the chapters, or a directory of generated
/// tables), by file name, with its text, in name order.
pub fn chapters(book_src: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut paths: Vec<_> = std::fs::read_dir(book_src)
        .with_context(|| format!("Failed to read {}", book_src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let md = std::fs::read_to_string(&path)
                .with_context(|| format!("Failed to read {}", path.display()))?;
            Ok((name, md))
        })
        .collect()
}

/// Lints every chapter in `book_src` against `allow` and `baseline` (lines `chapter.md: snippet`).
pub fn lint_book(book_src: &Path, allow: &[String], baseline: &[String]) -> anyhow::Result<Lint> {
    let summary = std::fs::read_to_string(book_src.join("SUMMARY.md")).context("no SUMMARY.md")?;
    let lessons = summary.matches("(lesson-").count() as u32;
    let mut lint = Lint::default();
    for (name, md) in chapters(book_src)? {
        lint.all.extend(lint_chapter(&name, &md, allow));
        lint.lessons.extend(missing_lessons(&name, &md, lessons));
    }
    // The baseline as a multiset: each entry excuses one finding.
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for b in baseline {
        *left.entry(b.as_str()).or_default() += 1;
    }
    for f in &lint.all {
        let key = f.to_string();
        match left.get_mut(key.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => lint.new.push(f.clone()),
        }
    }
    for (entry, n) in left {
        lint.gone.extend(std::iter::repeat_n(entry.to_string(), n));
    }
    // The ratchet: per chapter, no more hand-typed numbers than listed.
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &lint.all {
        *found.entry(f.chapter.as_str()).or_default() += 1;
    }
    let mut allowed: BTreeMap<&str, usize> = BTreeMap::new();
    for b in baseline {
        if let Some((chapter, _)) = b.split_once(": ") {
            *allowed.entry(chapter).or_default() += 1;
        }
    }
    for (chapter, n) in found {
        let a = allowed.get(chapter).copied().unwrap_or(0);
        if n > a {
            lint.over.push((chapter.to_string(), n, a));
        }
    }
    Ok(lint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(md: &str) -> Vec<String> {
        lint_chapter("c.md", md, &["a 60 s TTL".to_string()])
            .into_iter()
            .map(|f| f.snippet)
            .collect()
    }

    #[test]
    fn a_number_typed_into_prose_is_found() {
        assert_eq!(found("The hit took 138 µs here."), ["The hit took 138 µs"]);
        assert_eq!(found("It ran 1.27–1.86× faster."), ["It ran 1.27–1.86×"]);
        assert_eq!(
            found("a hit share of 15.5%, and 2 MB"),
            ["a hit share of 15.5%", "a hit share of 15.5%, and 2 MB"]
        );
        assert_eq!(found("about 53k req/s"), ["about 53k req/s"]);
        assert_eq!(found("5,000 ms"), ["5,000 ms"]);
    }

    #[test]
    fn code_claims_includes_links_and_the_allow_list_are_not_prose() {
        assert!(found("with `shared_buffers = 128MB` set").is_empty());
        assert!(found("```text\n96.99 ms\n```").is_empty());
        assert!(found("{{#include generated/x.md}}").is_empty());
        assert!(found("<!-- 5 ms -->").is_empty());
        assert!(
            found("<span class=\"claim\" data-check=\"a[b][c] >= 50\">at least 50× faster</span>")
                .is_empty()
        );
        assert!(found("see [the run](generated/x-5%.md)").is_empty());
        assert!(found("we use a 60 s TTL here").is_empty());
        // Numbers without a unit, in names or counts, are not measurements.
        assert!(found("p99 on 2 cores, lesson 3, x86_64, 11 runs, 5 sessions, 503s").is_empty());
    }

    #[test]
    fn the_baseline_excuses_old_numbers_and_fails_on_new_and_gone_ones() {
        let dir = std::env::temp_dir().join(format!("report-prose-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("test setup or a check that must pass");
        std::fs::write(
            dir.join("SUMMARY.md"),
            "- [L1](lesson-01.md)\n- [L2](lesson-02.md)\n",
        )
        .expect("test setup or a check that must pass");
        std::fs::write(
            dir.join("lesson-01.md"),
            "It took 5 ms. Then 7 ms.\n\nSee lesson 3.",
        )
        .expect("test setup or a check that must pass");
        let base = vec![
            "lesson-01.md: It took 5 ms".to_string(),
            "lesson-01.md: gone 1 ms".to_string(),
        ];
        let lint = lint_book(&dir, &[], &base).expect("test setup or a check that must pass");
        // Two numbers where the baseline allows two, but one is not listed:
        // not over the count, yet the baseline is out of date.
        assert!(lint.over.is_empty(), "{lint:?}");
        std::fs::remove_dir_all(&dir).expect("test setup or a check that must pass");
        assert_eq!(lint.new.len(), 1, "{lint:?}");
        assert_eq!(lint.new[0].snippet, "It took 5 ms. Then 7 ms");
        assert_eq!(lint.gone, ["lesson-01.md: gone 1 ms"]);
        assert_eq!(lint.lessons.len(), 1, "{lint:?}");
        assert!(lint.lessons[0].contains("lesson 3"));
        assert!(!lint.ok());

        // A third number in the chapter: over the count of two.
        std::fs::create_dir_all(&dir).expect("test setup or a check that must pass");
        std::fs::write(dir.join("SUMMARY.md"), "- [L1](lesson-01.md)\n")
            .expect("test setup or a check that must pass");
        std::fs::write(
            dir.join("lesson-01.md"),
            "It took 5 ms. Then 7 ms, then 9 ms.",
        )
        .expect("test setup or a check that must pass");
        let lint = lint_book(&dir, &[], &base).expect("test setup or a check that must pass");
        std::fs::remove_dir_all(&dir).expect("test setup or a check that must pass");
        assert_eq!(lint.over, [("lesson-01.md".to_string(), 3, 2)], "{lint:?}");
    }

    #[test]
    fn lesson_lists_are_checked() {
        assert!(missing_lessons("c.md", "lessons 6, 7 and 8 exist", 9).is_empty());
        assert_eq!(missing_lessons("c.md", "lessons 2–10", 9).len(), 1);
        assert!(missing_lessons("c.md", "Lesson 9 and exercise 4", 9).is_empty());
        assert!(missing_lessons("c.md", "lesson 5 at 10 s", 9).is_empty());
        assert!(missing_lessons("c.md", "12 for lesson 1, 19 for lesson 2", 9).is_empty());
    }
}
