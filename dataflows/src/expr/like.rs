//! SQL LIKE pattern matching (`%` any run, `_` one character, `\` escapes).

/// Whether `s` matches the LIKE `pattern`; `ci` makes it case-insensitive (ILIKE).
pub fn like_match(s: &str, pattern: &str, ci: bool) -> bool {
    let fold = |x: &str| if ci { x.to_lowercase() } else { x.to_string() };
    let s: Vec<char> = fold(s).chars().collect();
    let p: Vec<char> = fold(pattern).chars().collect();
    // Iterative matcher with backtracking to the last '%': linear in practice, no recursion.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < p.len() {
            match p[j] {
                '%' => {
                    star = Some((j, i));
                    j += 1;
                    continue;
                }
                '\\' if j + 1 < p.len() && p[j + 1] == s[i] => {
                    i += 1;
                    j += 2;
                    continue;
                }
                '_' => {
                    i += 1;
                    j += 1;
                    continue;
                }
                c if c != '\\' && c == s[i] => {
                    i += 1;
                    j += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sj, si)) => {
                j = sj + 1;
                i = si + 1;
                star = Some((sj, si + 1));
            }
            None => return false,
        }
    }
    while j < p.len() && p[j] == '%' {
        j += 1;
    }
    j == p.len()
}

#[cfg(test)]
mod tests {
    use super::like_match;

    #[test]
    fn patterns() {
        assert!(like_match("hello", "h%o", false));
        assert!(like_match("hello", "_ello", false));
        assert!(!like_match("hello", "h_o", false));
        assert!(like_match("HeLLo", "hello", true));
        assert!(like_match("50%", "50\\%", false));
        assert!(!like_match("500", "50\\%", false));
        assert!(like_match("", "%", false));
        assert!(like_match("abcabc", "%abc", false));
    }
}
