//! The mutations: AFL's "havoc" stage, a stack of small random edits, plus edits that know
//! our inputs are mostly text in lines (YAML, scenarios) and a target's dictionary of the
//! words its format is made of, so mutants stay close enough to valid to get past the
//! first check.

use crate::rng::Rng;

/// Bytes that tend to matter to parsers: delimiters, quotes, line ends, the UTF-8 edges.
const INTERESTING_BYTES: &[u8] = &[
    0, b'\n', b'\r', b'\t', b' ', b':', b'-', b'"', b'\'', b'{', b'}', b'[', b']', b'#', b'$',
    b'\\', b'|', b'>', b'&', b'*', b'!', b'%', b'@', b'`', b'=', b',', 0x7f, 0x80, 0xc3, 0xe2,
    0xf0, 0xff,
];

const INDENTS: &[&[u8]] = &[b" ", b"  ", b"\t"];

/// Numbers at the edges of the integer types and of what parsers accept.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "-0",
    "0.0000001",
    "NaN",
    ".inf",
    "0x10",
    "1_000",
];

/// Mutates `input` in place with a stack of 1 to 16 edits; `other` is another corpus
/// entry to splice from; the result is cut to `max_len`.
pub fn havoc(
    rng: &mut Rng,
    input: &mut Vec<u8>,
    other: &[u8],
    dictionary: &[&str],
    max_len: usize,
) {
    let edits = 1 << rng.below(5);
    for _ in 0..edits {
        edit(rng, input, other, dictionary);
    }
    input.truncate(max_len);
}

fn edit(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], dictionary: &[&str]) {
    match rng.below(15) {
        0 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] = *rng.pick(INTERESTING_BYTES);
        }
        2 => {
            let at = rng.below(input.len() + 1);
            input.insert(at, *rng.pick(INTERESTING_BYTES));
        }
        3 if !input.is_empty() => {
            let (start, end) = range(rng, input.len());
            input.drain(start..end);
        }
        4 if !input.is_empty() => {
            // A copy of a piece elsewhere: repeats keys, lines, nesting.
            let (start, end) = range(rng, input.len());
            let piece = input[start..end].to_vec();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, piece);
        }
        5 | 6 if !dictionary.is_empty() => {
            let word = rng.pick(dictionary).as_bytes();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, word.iter().copied());
        }
        7 => {
            let number = rng.pick(INTERESTING_NUMBERS).as_bytes();
            replace_number(rng, input, number);
        }
        8 if !other.is_empty() => {
            // Splice: our head, the other's tail.
            let cut = rng.below(input.len() + 1);
            let from = rng.below(other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        9 if !other.is_empty() => {
            // A line of another input put among ours.
            let lines = line_starts(other);
            let (start, end) = line_at(other, &lines, rng.below(lines.len()));
            let at = line_boundary(rng, input);
            input.splice(at..at, other[start..end].iter().copied());
        }
        10 if !input.is_empty() => {
            let lines = line_starts(input);
            let (start, end) = line_at(input, &lines, rng.below(lines.len()));
            input.drain(start..end);
        }
        11 if !input.is_empty() => {
            let lines = line_starts(input);
            let (start, end) = line_at(input, &lines, rng.below(lines.len()));
            let line = input[start..end].to_vec();
            let at = line_boundary(rng, input);
            input.splice(at..at, line);
        }
        12 if !input.is_empty() => {
            // Indentation is structure in YAML: shift a line in or out.
            let lines = line_starts(input);
            let start = *rng.pick(&lines);
            if rng.one_in(2) {
                let indent = rng.pick(INDENTS).iter().copied();
                input.splice(start..start, indent);
            } else if input.get(start) == Some(&b' ') {
                input.remove(start);
            }
        }
        13 => {
            let count = 1 + rng.below(8);
            let at = rng.below(input.len() + 1);
            let bytes: Vec<u8> = (0..count).map(|_| rng.next_u64() as u8).collect();
            input.splice(at..at, bytes);
        }
        _ if !input.is_empty() => {
            // Two bytes far apart swapped: closes a quote early, opens a bracket late.
            let a = rng.below(input.len());
            let b = rng.below(input.len());
            input.swap(a, b);
        }
        _ => input.extend_from_slice(rng.pick(dictionary).as_bytes()),
    }
}

/// A range of 1 to 32 bytes, now and then up to 256 (mostly short, as AFL does), inside
/// `0..len`, `len > 0`.
fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let longest = if rng.one_in(4) { 256 } else { 32 };
    let size = 1 + rng.below(len.min(longest));
    let start = rng.below(len - size + 1);
    (start, start + size)
}

/// Replaces the first run of digits at or after a random place with `number`, or inserts
/// it when there is none.
fn replace_number(rng: &mut Rng, input: &mut Vec<u8>, number: &[u8]) {
    let from = rng.below(input.len() + 1);
    replace_number_from(input, from, number);
}

fn replace_number_from(input: &mut Vec<u8>, from: usize, number: &[u8]) {
    let (start, end) = match input[from..].iter().position(u8::is_ascii_digit) {
        Some(i) => {
            let start = from + i;
            let end = input[start..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(input.len(), |n| start + n);
            (start, end)
        }
        None => (from, from),
    };
    input.splice(start..end, number.iter().copied());
}

/// Where each line starts (at least one entry, 0).
fn line_starts(input: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            input
                .iter()
                .enumerate()
                .filter(|(i, b)| **b == b'\n' && i + 1 < input.len())
                .map(|(i, _)| i + 1),
        )
        .collect()
}

/// Line `n` with its newline.
fn line_at(input: &[u8], starts: &[usize], n: usize) -> (usize, usize) {
    let end = starts.get(n + 1).copied().unwrap_or(input.len());
    (starts[n], end)
}

fn line_boundary(rng: &mut Rng, input: &[u8]) -> usize {
    *rng.pick(&line_starts(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn havoc_changes_inputs_and_respects_the_limit() {
        let mut rng = Rng::new(3);
        let seed = b"name: demo\nscenarios:\n  - demo/smoke.scn\n".to_vec();
        let mut changed = 0;
        for _ in 0..1000 {
            let mut input = seed.clone();
            havoc(&mut rng, &mut input, b"other: 1\n", &["key: ", "- "], 64);
            assert!(input.len() <= 64);
            changed += usize::from(input != seed);
        }
        // Some stacks cancel out (a byte swapped with itself), nearly all change something.
        assert!(
            changed > 900,
            "{changed} of 1000 mutants differ from the seed"
        );
    }

    #[test]
    fn havoc_grows_an_empty_input() {
        let mut rng = Rng::new(5);
        let mut grew = false;
        for _ in 0..100 {
            let mut input = Vec::new();
            havoc(&mut rng, &mut input, b"", &["word"], 1024);
            grew |= !input.is_empty();
        }
        assert!(grew);
    }

    #[test]
    fn numbers_are_replaced_whole() {
        let mut input = b"count: 10000\n".to_vec();
        replace_number_from(&mut input, 0, b"-1");
        assert_eq!(input, b"count: -1\n");
        let mut input = b"count: 10000\n".to_vec();
        replace_number_from(&mut input, 12, b"7");
        assert_eq!(input, b"count: 100007\n");
    }
}
