//! Bounds on one SQL statement, checked on its tokens before it is parsed.
//!
//! Parsers, planners and optimizers walk expressions recursively. The parser bounds nesting by
//! parentheses and calls (`sql_parser.recursion_limit`), but an operator chain (`1+1+...+1`,
//! `a='x' OR a='y' OR ...`, what BI tools generate) is parsed in a loop into a tree as deep as
//! the chain is long, and every later pass recurses down it: a 2 KB statement overflowed the
//! query thread's stack and aborted the whole process. So a statement is refused (400,
//! "expression nests too deep") before any tree is built when one expression could nest deeper
//! than [`MAX_EXPRESSION_DEPTH`], and the query threads' stack ([`QUERY_THREAD_STACK`]) is sized
//! for that depth (tested at the limit over HTTP and Postgres wire).
//!
//! The count is a safe over-estimate, from tokens alone: every operator symbol, `.` and keyword
//! counts one level, each open parenthesis or bracket one more. A comma inside a list (function
//! arguments, `IN (...)`, an array) ends an expression at its level, so long lists are flat;
//! a comma of a query itself (select list, `FROM a, b`, `WITH` list, `VALUES` rows) counts, as
//! the planner nests such lists (a `FROM` list is a left-deep join). `a='x' OR a='y'` counts 3
//! (its tree is 2 deep), so a generated `OR` chain of about 2,000 terms is accepted.

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// The longest statement planned, bytes.
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// The deepest one expression may nest, as counted by [`check`].
pub const MAX_EXPRESSION_DEPTH: usize = 4096;

/// The stack of a query thread: room for DataFusion's recursive passes over an expression
/// [`MAX_EXPRESSION_DEPTH`] deep (reserved address space; pages are touched only as used).
pub const QUERY_THREAD_STACK: usize = 256 << 20;

/// Refuses `sql` if it is longer than [`MAX_SQL_BYTES`] or could nest deeper than
/// [`MAX_EXPRESSION_DEPTH`]; `dialect` is the session's (`sql_parser.dialect`).
pub fn check(sql: &str, dialect: &str) -> DfResult<()> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(DataFusionError::Plan(format!(
            "the statement is {} bytes, more than the {MAX_SQL_BYTES} a statement may be",
            sql.len()
        )));
    }
    let dialect = dialect_from_str(dialect)
        .ok_or_else(|| DataFusionError::Plan(format!("unsupported SQL dialect {dialect}")))?;
    // A statement that does not tokenize does not parse either: the parser says why.
    let Ok(tokens) = Tokenizer::new(dialect.as_ref(), sql).tokenize_with_location() else {
        return Ok(());
    };
    // Per open parenthesis (the outermost level first).
    let mut levels: Vec<Level> = vec![Level::query()];
    let mut depth = 0usize;
    for token in &tokens {
        if matches!(token.token, Token::Whitespace(_) | Token::EOF) {
            continue;
        }
        if let Some(level) = levels.last_mut()
            && level.opened
        {
            // `(SELECT ...`, `(WITH ...`, `(VALUES ...`: a query's parenthesis.
            level.opened = false;
            level.query = matches!(
                &token.token,
                Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES)
            );
        }
        let counts = match &token.token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                levels.push(Level {
                    count: 0,
                    query: false,
                    opened: true,
                });
                depth += 1;
                false
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1 {
                    depth -= levels.pop().map_or(0, |l| l.count) + 1;
                }
                false
            }
            Token::SemiColon => {
                // The next statement starts from nothing.
                levels = vec![Level::query()];
                depth = 0;
                false
            }
            Token::Comma => match levels.last_mut() {
                Some(level) if !level.query => {
                    depth -= level.count;
                    level.count = 0;
                    false
                }
                _ => true,
            },
            Token::Word(word) => word.quote_style.is_none() && word.keyword != Keyword::NoKeyword,
            Token::Number(..)
            | Token::Placeholder(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_) => false,
            // Every other token is an operator or another literal: counted, to be safe.
            _ => true,
        };
        if counts && let Some(level) = levels.last_mut() {
            level.count += 1;
            depth += 1;
        }
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(DataFusionError::Plan(format!(
                "expression nests too deep: more than {MAX_EXPRESSION_DEPTH} operators and \
                 parentheses in one expression at Line: {}, Column: {}; split it, or match a \
                 list with IN (...)",
                token.span.start.line, token.span.start.column
            )));
        }
    }
    Ok(())
}

/// One parenthesis level of [`check`].
struct Level {
    /// Levels counted at this parenthesis since its last list comma.
    count: usize,
    /// A query's parenthesis (or the statement): its commas nest, they are counted.
    query: bool,
    /// Just opened: its first token says whether it is a query's.
    opened: bool,
}

impl Level {
    fn query() -> Level {
        Level {
            count: 0,
            query: true,
            opened: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(terms: usize, op: &str) -> String {
        let terms: Vec<String> = (0..terms).map(|i| format!("vehicle = 'v{i}'")).collect();
        format!("select * from positions where {}", terms.join(op))
    }

    #[test]
    fn long_operator_chains_are_refused_before_parsing() {
        let refused = check(&chain(3_000, " or "), "PostgreSQL").expect_err("too deep");
        assert!(
            refused.to_string().contains("expression nests too deep"),
            "{refused}"
        );
        let plus = format!("select {}1", "1+".repeat(MAX_EXPRESSION_DEPTH));
        assert!(check(&plus, "PostgreSQL").is_err());
    }

    #[test]
    fn what_bi_tools_generate_is_accepted() {
        check(&chain(1_000, " or "), "PostgreSQL").expect("1,000 OR terms");
        let list: Vec<String> = (0..50_000).map(|i| format!("'v{i}'")).collect();
        let in_list = format!(
            "select * from positions where vehicle in ({})",
            list.join(",")
        );
        check(&in_list, "PostgreSQL").expect("a long IN list is flat");
        let columns: Vec<String> = (0..1_000).map(|i| format!("{i} + 1 as c{i}")).collect();
        check(&format!("select {}", columns.join(", ")), "PostgreSQL")
            .expect("many short expressions");
        let args: Vec<String> = (0..20_000).map(|i| format!("{i} + 1")).collect();
        check(
            &format!("select greatest({})", args.join(", ")),
            "PostgreSQL",
        )
        .expect("a long argument list is flat");
    }

    #[test]
    fn lists_the_planner_nests_are_counted() {
        // `FROM t, t, ...` is a left-deep join, inside a subquery as well.
        let from = format!("select 1 from {}t", "t, ".repeat(MAX_EXPRESSION_DEPTH));
        assert!(check(&from, "PostgreSQL").is_err());
        let sub = format!(
            "select * from (select 1 from {}t) s",
            "t, ".repeat(MAX_EXPRESSION_DEPTH)
        );
        assert!(check(&sub, "PostgreSQL").is_err());
        // `a.'x'.'x'...` nests one field access per `.`.
        let fields = format!(
            "select vehicle{} from positions",
            ".'x'".repeat(MAX_EXPRESSION_DEPTH)
        );
        assert!(check(&fields, "PostgreSQL").is_err());
        // Unary minus chains (`- - - 1`, spaced: `--` is a comment).
        let minus = format!("select {}1", "- ".repeat(MAX_EXPRESSION_DEPTH + 1));
        assert!(check(&minus, "PostgreSQL").is_err());
        // A statement ends at `;`: the next one starts from nothing.
        let two = format!(
            "select {0}1; select {0}1",
            "1+".repeat(MAX_EXPRESSION_DEPTH - 10)
        );
        check(&two, "PostgreSQL").expect("two statements, each within the bound");
    }

    #[test]
    fn size_is_bounded() {
        let long = format!("select '{}'", "x".repeat(MAX_SQL_BYTES));
        let refused = check(&long, "PostgreSQL").expect_err("too long");
        assert!(refused.to_string().contains("bytes"), "{refused}");
    }
}
