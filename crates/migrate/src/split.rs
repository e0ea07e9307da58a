//! Splitting a SQL file into statements, so that a failure can name its statement and line.
//!
//! The split follows what the database itself counts as statements: semicolons outside
//! strings (`'..'`, `E'..'`, `"..."`, `` `..` ``), comments (`--`, nested `/* */`) and
//! dollar quotes (`$tag$..$tag$`), and outside the `BEGIN .. END` body of a `CREATE TRIGGER`
//! (SQLite) or `BEGIN ATOMIC .. END` function (Postgres). Empty statements are dropped, as
//! the database drops them.

/// One statement of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of its first token.
    pub start: usize,
    /// Byte offset just past its last token (before the `;`).
    pub end: usize,
}

impl Statement {
    /// Its text.
    pub fn text(self, sql: &str) -> &str {
        &sql[self.start..self.end]
    }
}

/// The 1-based line of a byte offset.
pub fn line_at(sql: &str, byte: usize) -> usize {
    sql.as_bytes()[..byte.min(sql.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The byte offset of a 1-based character position (as Postgres reports positions).
pub fn byte_of_char_position(sql: &str, position: usize) -> usize {
    sql.char_indices()
        .nth(position.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(sql.len())
}

/// The statements of `sql`, in order.
pub fn split_statements(sql: &str) -> Vec<Statement> {
    let b = sql.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    // The current statement: where its first token is, where its last token ends.
    let mut start: Option<usize> = None;
    let mut last_end = 0;
    // Block depth inside a trigger/atomic body, and the words of the statement so far.
    let mut depth = 0usize;
    let mut first_word: Option<String> = None;
    let mut has_body_kind = false;
    let mut prev_word = String::new();
    while i < b.len() {
        let c = b[i];
        let tok_start = i;
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 1;
                i += 2;
                while i < b.len() && nest > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        nest += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        nest -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b';' if depth == 0 => {
                if let Some(s) = start.take() {
                    out.push(Statement {
                        start: s,
                        end: last_end,
                    });
                }
                first_word = None;
                has_body_kind = false;
                prev_word.clear();
                i += 1;
                continue;
            }
            b'\'' => {
                let backslash =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_word_byte(b[i - 2]));
                i = skip_quoted(b, i, b'\'', backslash);
            }
            b'"' | b'`' => i = skip_quoted(b, i, c, false),
            b'$' => match dollar_tag(b, i) {
                Some(tag_len) => {
                    let tag = &b[i..i + tag_len];
                    let mut j = i + tag_len;
                    loop {
                        if j >= b.len() {
                            i = b.len();
                            break;
                        }
                        if b[j..].starts_with(tag) {
                            i = j + tag_len;
                            break;
                        }
                        j += 1;
                    }
                }
                None => i += 1,
            },
            c if is_word_byte(c) => {
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                let word = sql[tok_start..i].to_ascii_uppercase();
                if first_word.is_none() {
                    first_word = Some(word.clone());
                }
                let creating = first_word.as_deref() == Some("CREATE");
                if creating && matches!(word.as_str(), "TRIGGER" | "FUNCTION" | "PROCEDURE") {
                    has_body_kind = true;
                }
                match word.as_str() {
                    "BEGIN" if creating && has_body_kind => depth += 1,
                    "CASE" if depth > 0 => depth += 1,
                    // `END IF`, `END LOOP` do not occur in these bodies, but `END` after `;`
                    // closing the body does.
                    "END" if depth > 0 && prev_word != "END" => depth -= 1,
                    _ => {}
                }
                prev_word = word;
            }
            _ => i += 1,
        }
        if start.is_none() {
            start = Some(tok_start);
        }
        last_end = i;
    }
    if let Some(s) = start {
        out.push(Statement {
            start: s,
            end: last_end,
        });
    }
    out
}

/// A statement that controls the transaction (`BEGIN`, `COMMIT`, `ROLLBACK`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionControl {
    /// The 1-based line where it starts.
    pub line: usize,
    /// Its leading keywords as written (`COMMIT`, `start transaction`, `PREPARE TRANSACTION`).
    pub keyword: String,
}

/// The statements of `sql` that begin, end or split a transaction: `BEGIN` (not `BEGIN
/// ATOMIC` bodies, which are inside a `CREATE`), `START TRANSACTION`, `COMMIT` (and `COMMIT
/// PREPARED`), `END`, `ROLLBACK` (and `ROLLBACK TO`, `ROLLBACK PREPARED`), `ABORT`,
/// `SAVEPOINT`, `RELEASE`, `PREPARE TRANSACTION`. Case does not matter; words inside strings,
/// comments, dollar quotes and trigger bodies are not statements and do not count. A
/// migration is run inside a transaction of the runner's, so any of these would commit part
/// of it early or end it (see `docs/migrations.md`).
pub fn transaction_control(sql: &str) -> Vec<TransactionControl> {
    split_statements(sql)
        .into_iter()
        .filter_map(|st| {
            let text = st.text(sql);
            let mut words = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty());
            let first = words.next()?;
            // The first word must be the statement's first token (not `"begin"` or `(x)`).
            if !text.starts_with(first) {
                return None;
            }
            let second = words.next().unwrap_or_default();
            let upper = first.to_ascii_uppercase();
            let keyword = match upper.as_str() {
                "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {
                    first.to_owned()
                }
                "START" | "PREPARE" if second.eq_ignore_ascii_case("TRANSACTION") => {
                    format!("{first} {second}")
                }
                _ => return None,
            };
            Some(TransactionControl {
                line: line_at(sql, st.start),
                keyword,
            })
        })
        .collect()
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Past the closing quote of the string starting at `i` (doubled quotes escape it).
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The length of a dollar-quote tag (`$$`, `$body$`) starting at `i`, if it is one.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_word_byte(b[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split_statements(sql)
            .into_iter()
            .map(|s| s.text(sql))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let sql = "-- head; comment\nCREATE TABLE a (x text default 'a;b');\n/* c; /* nested; */ */ INSERT INTO a VALUES (E'it\\'s;');\n;\nSELECT \"we;ird\" FROM a";
        assert_eq!(
            texts(sql),
            vec![
                "CREATE TABLE a (x text default 'a;b')",
                "INSERT INTO a VALUES (E'it\\'s;')",
                "SELECT \"we;ird\" FROM a"
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_one_statement() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql; SELECT $1;";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn trigger_bodies_are_one_statement() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = CASE WHEN 1 THEN 2 END; DELETE FROM c; END;\nBEGIN;";
        assert_eq!(
            texts(sql),
            vec![
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = CASE WHEN 1 THEN 2 END; DELETE FROM c; END",
                "BEGIN"
            ]
        );
    }

    #[test]
    fn transaction_control_statements_are_found_with_their_lines() {
        let sql = "CREATE TABLE a (id int);\ncommit;\nINSERT INTO a VALUES (1); Begin Work;\n\
                   start transaction;\nSAVEPOINT s; RELEASE s; ROLLBACK TO s;\nEND;\nABORT;\n\
                   PREPARE TRANSACTION 'x';\nCOMMIT PREPARED 'x';";
        let found: Vec<(usize, String)> = transaction_control(sql)
            .into_iter()
            .map(|t| (t.line, t.keyword))
            .collect();
        assert_eq!(
            found,
            vec![
                (2, "commit".into()),
                (3, "Begin".into()),
                (4, "start transaction".into()),
                (5, "SAVEPOINT".into()),
                (5, "RELEASE".into()),
                (5, "ROLLBACK".into()),
                (6, "END".into()),
                (7, "ABORT".into()),
                (8, "PREPARE TRANSACTION".into()),
                (9, "COMMIT".into()),
            ]
        );
    }

    #[test]
    fn transaction_words_in_strings_comments_bodies_and_names_do_not_count() {
        let sql = "-- COMMIT;\n/* BEGIN; */\nINSERT INTO log VALUES ('COMMIT;');\n\
                   CREATE FUNCTION f() RETURNS void AS $$ BEGIN COMMIT; END; $$ LANGUAGE plpgsql;\n\
                   DO $body$ BEGIN ROLLBACK; END $body$;\n\
                   CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; END;\n\
                   PREPARE q AS SELECT 1;\nSELECT \"commit\" FROM begin_log;\n\
                   CREATE TABLE commits (id int); UPDATE savepoints SET x = 1;";
        assert_eq!(transaction_control(sql), vec![]);
    }

    #[test]
    fn comment_only_file_has_no_statements() {
        assert!(split_statements("-- nothing\n/* here */\n").is_empty());
    }

    #[test]
    fn lines_and_character_positions() {
        let sql = "é\nab\ncd";
        assert_eq!(line_at(sql, byte_of_char_position(sql, 4)), 2);
        assert_eq!(line_at(sql, byte_of_char_position(sql, 6)), 3);
    }
}
