//! Colour for text reports on a terminal, as `git diff` and `ansible --diff` use it: added lines
//! green, removed red, hunk headers cyan; REFUSED, MISSING, FAILED and NOT RESTORED red;
//! "restored" and "all kept" green. Applied to the finished text, line by line; the text itself
//! is the same coloured or not.

const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// Words that mark a line needing the admin.
const ALARMS: [&str; 5] = ["REFUSED", "MISSING", "FAILED", "NOT RESTORED", "STILL LOADED"];

/// `text` with colour codes.
pub fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        let whole = |colour: &str| format!("{colour}{body}{RESET}{end}");
        let painted = if body.starts_with("+++") || body.starts_with("---") {
            format!("\x1b[1m{body}{RESET}{end}")
        } else if body.starts_with('+') {
            whole(GREEN)
        } else if body.starts_with('-') {
            whole(RED)
        } else if body.starts_with("@@") {
            whole(CYAN)
        } else if body == "restored" || body == "all kept" || body.starts_with("nothing to restore: every") {
            whole(GREEN)
        } else {
            let mut painted = body.to_string();
            for word in ALARMS {
                painted = painted.replace(word, &format!("{BOLD_RED}{word}{RESET}"));
            }
            format!("{painted}{end}")
        };
        out.push_str(&painted);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_and_alarms_are_coloured_and_the_text_kept() {
        let text = "--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n  REFUSED (1): x\nrestored\nplain\n";
        let painted = paint(text);
        assert!(painted.contains("\x1b[32m+new\x1b[0m\n") && painted.contains("\x1b[31m-old\x1b[0m\n"));
        assert!(painted.contains("\x1b[1;31mREFUSED\x1b[0m (1): x"));
        assert!(painted.contains("plain\n") && !painted.contains("\x1b[32mplain"));
        let stripped = regex_free_strip(&painted);
        assert_eq!(stripped, text);
    }

    /// The text without escape sequences.
    fn regex_free_strip(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
