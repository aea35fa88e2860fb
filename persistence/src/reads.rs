//! Reading records back (paged-out messages) with as few preads as their places allow.

use bytes::Bytes;

use crate::StoreError;

/// Records this close together in one file are read with one pread.
const READ_SPAN: u64 = 1 << 20;

/// Read the records at `places` (segment, offset, length), in the order given: consecutive
/// places in one segment within `READ_SPAN` bytes are read together by `read(segment, start,
/// end)`, then each record's bytes go to `decode`. Every record of a span that cannot be read
/// gets `failed(segment)` in its place.
pub(crate) fn read_records<T>(
    places: &[(u32, u64, u64)],
    mut read: impl FnMut(u32, u64, u64) -> Result<Bytes, StoreError>,
    mut decode: impl FnMut(&Bytes, u32) -> Result<T, StoreError>,
    failed: impl Fn(u32) -> StoreError,
) -> Vec<Result<T, StoreError>> {
    let mut out = Vec::with_capacity(places.len());
    let mut i = 0;
    while let Some(&(segment, start, len)) = places.get(i) {
        let mut end = start + len;
        let mut j = i + 1;
        while let Some(&(next_segment, next_start, next_len)) = places.get(j) {
            let next_end = next_start + next_len;
            if next_segment != segment || next_start < start || next_end - start > READ_SPAN {
                break;
            }
            end = end.max(next_end);
            j += 1;
        }
        match read(segment, start, end) {
            Ok(span) => {
                for &(_, offset, len) in &places[i..j] {
                    let from = (offset - start) as usize;
                    out.push(decode(&span.slice(from..from + len as usize), segment));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read stored messages back");
                out.extend((i..j).map(|_| Err(failed(segment))));
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_share_a_read_and_order_is_kept() {
        let file: Vec<u8> = (0..=255u8).collect();
        let mut reads = Vec::new();
        let places = [(1, 10, 2), (1, 12, 3), (2, 0, 1), (1, 0, 1), (1, 1, 1)];
        let got = read_records(
            &places,
            |seg, start, end| {
                reads.push((seg, start, end));
                Ok(Bytes::copy_from_slice(&file[start as usize..end as usize]))
            },
            |b, seg| Ok((seg, b.to_vec())),
            |seg| StoreError::corrupt(std::path::Path::new("x"), u64::from(seg), "unused"),
        );
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [(1, vec![10, 11]), (1, vec![12, 13, 14]), (2, vec![0]), (1, vec![0]), (1, vec![1])]);
        // one read for the first two, one for the other segment, one for the two going back
        assert_eq!(reads, [(1, 10, 15), (2, 0, 1), (1, 0, 2)]);
    }
}
