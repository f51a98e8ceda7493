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

/// Edit distance over characters, counting a swap of two neighbours as one
/// edit (the optimal string alignment distance): `MSTF` is one edit from
/// `MSFT`, as a typist would count it.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the distance table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j - 1] + cost)
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
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
        // A swap of neighbours is one edit.
        assert_eq!(edit_distance("mstf", "msft"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(nearest("MSTF", ["AAPL", "MSFT"]), Some("MSFT"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
