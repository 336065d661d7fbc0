//! Env files read exactly as GoTrue reads them (its fork of joho/godotenv v1.5), so an operator's
//! existing GoTrue `.env` works unchanged. The rules, written from that parser's behaviour:
//!
//! - statements are `KEY=value` or `KEY: value`, optionally after `export `; keys hold letters,
//!   digits, `_` and `.`; blank lines and lines starting with `#` are skipped; CRLF counts as LF;
//! - an unquoted value runs to the end of its line, is trimmed, may hold spaces, and ends before the
//!   last `#` that follows a space (`A=b c # note` is `b c`);
//! - a single-quoted value is taken literally; a double-quoted one turns `\n` and `\r` into line
//!   breaks and drops the backslash of any other escape (`\"` is `"`); both may span lines;
//! - `$VAR` is never substituted (`\$` is a plain `$`);
//! - a later statement for the same key wins; an unterminated quote or a bad key is an error.
//!
//! dotenvy, used before, refuses unquoted values with spaces, which GoTrue's files often hold
//! (`GOTRUE_MAILER_SUBJECTS_CONFIRMATION=Confirm your signup`).

use std::collections::HashMap;

/// Parses env-file text into its variables.
pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let text = text.replace("\r\n", "\n");
    let mut vars = HashMap::new();
    let mut rest = text.as_str();
    loop {
        rest = skip_blank_and_comments(rest);
        if rest.is_empty() {
            return Ok(vars);
        }
        let (key, after_key) = key_name(rest)?;
        let (value, after_value) = value(after_key)?;
        vars.insert(key, value);
        rest = after_value;
    }
}

/// Spaces (not line breaks) in godotenv's sense.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

fn skip_blank_and_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if !text.starts_with('#') {
            return text;
        }
        text = text.find('\n').map_or("", |end| &text[end..]);
    }
}

/// The key of the statement at the start of `text`, and what follows its `=` or `:`.
fn key_name(text: &str) -> Result<(String, &str), String> {
    let mut text = text.trim_start_matches(is_space);
    if let Some(after_export) = text.strip_prefix("export")
        && after_export.starts_with(is_space)
    {
        text = after_export.trim_start_matches(is_space);
    }
    for (index, c) in text.char_indices() {
        match c {
            '=' | ':' => {
                let key = text[..index].trim_end().to_string();
                let value = text[index + 1..].trim_start_matches(is_space);
                return Ok((key, value));
            }
            c if is_space(c) || c == '_' || c == '.' || c.is_alphanumeric() => {}
            c => {
                let line = text.lines().next().unwrap_or_default();
                return Err(format!("unexpected character {c:?} in variable name near {line:?}"));
            }
        }
    }
    Err(format!("no `=` after variable name {:?}", text.trim()))
}

/// The value at the start of `text`, and the text after it.
fn value(text: &str) -> Result<(String, &str), String> {
    let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Ok(unquoted_value(text));
    };
    // The closing quote is the first one not preceded by a backslash.
    let bytes = text.as_bytes();
    let closing = (1..bytes.len()).find(|&i| bytes[i] == quote as u8 && bytes[i - 1] != b'\\');
    let Some(closing) = closing else {
        let line = text.lines().next().unwrap_or_default();
        return Err(format!("unterminated quoted value {line}"));
    };
    let inner = text[..closing].trim_matches(quote);
    let value = if quote == '"' {
        unescape_double_quoted(inner)
    } else {
        inner.to_string()
    };
    Ok((value, &text[closing + 1..]))
}

fn unquoted_value(text: &str) -> (String, &str) {
    let end_of_line = text.find(['\n', '\r']).unwrap_or(text.len());
    let line = &text[..end_of_line];
    // The last `#` that follows a space starts a comment.
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let end_of_value = (1..chars.len())
        .rev()
        .find(|&i| chars[i].1 == '#' && is_space(chars[i - 1].1))
        .map_or(line.len(), |i| chars[i].0);
    let value = line[..end_of_value].trim_matches(is_space).replace("\\$", "$");
    (value, &text[end_of_line..])
}

fn unescape_double_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn one(text: &str, key: &str) -> String {
        parse(text).expect("parses").remove(key).expect("key present")
    }

    #[test]
    fn reads_every_form_gotrue_reads() {
        let file = "\
# a comment line
export GOTRUE_SITE_URL=http://localhost:3000
GOTRUE_MAILER_SUBJECTS_CONFIRMATION=Confirm your signup please
SPACED =   padded value   
WITH_COMMENT=value # a comment
HASH_INSIDE=abc#def
YAML_STYLE: yaml value
SINGLE='literal \\n $HOME # not a comment'
DOUBLE=\"line\\nbreak \\\"quoted\\\" \\\\ back\"
MULTI=\"first
second\"
NO_SUBSTITUTION=$HOME and \\$PATH
EMPTY=
DOTTED.KEY=1
WINDOWS=crlf\r
LATER=1
LATER=2
";
        let vars = parse(file).expect("parses");
        assert_eq!(vars["GOTRUE_SITE_URL"], "http://localhost:3000");
        assert_eq!(
            vars["GOTRUE_MAILER_SUBJECTS_CONFIRMATION"],
            "Confirm your signup please"
        );
        assert_eq!(vars["SPACED"], "padded value");
        assert_eq!(vars["WITH_COMMENT"], "value");
        assert_eq!(vars["HASH_INSIDE"], "abc#def");
        assert_eq!(vars["YAML_STYLE"], "yaml value");
        assert_eq!(vars["SINGLE"], "literal \\n $HOME # not a comment");
        assert_eq!(vars["DOUBLE"], "line\nbreak \"quoted\" \\ back");
        assert_eq!(vars["MULTI"], "first\nsecond");
        assert_eq!(vars["NO_SUBSTITUTION"], "$HOME and $PATH");
        assert_eq!(vars["EMPTY"], "");
        assert_eq!(vars["DOTTED.KEY"], "1");
        assert_eq!(vars["WINDOWS"], "crlf");
        assert_eq!(vars["LATER"], "2");
        assert_eq!(one("A=x # one # two", "A"), "x # one");
        assert_eq!(one("A=\"quoted\" # trailing comment", "A"), "quoted");
    }

    #[test]
    fn refuses_what_gotrue_refuses() {
        assert!(parse("A=\"never closed\n").is_err());
        assert!(parse("BAD-KEY=1").is_err());
        assert!(parse("JUST_A_WORD\nB=1").is_err());
    }
}
