//! "Did you mean …?" suggestions for mistyped names (timeframes, categories).

/// The candidate closest to `given` by edit distance, if it is close enough to
/// be a plausible typo (at most a third of the longer word, and at least one edit).
pub fn nearest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.trim().to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&given, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (given.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_plausible_typos() {
        let cats = [
            "us_equities",
            "etf",
            "crypto",
            "fx",
            "options",
            "indices",
            "otc",
        ];
        assert_eq!(nearest("us_equity", cats), Some("us_equities"));
        assert_eq!(nearest("cryptos", cats), Some("crypto"));
        assert_eq!(nearest("ETF", cats), Some("etf"));
        assert_eq!(nearest("bonds", cats), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
