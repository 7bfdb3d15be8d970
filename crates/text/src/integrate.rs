//! Where a remote insert goes: the YjsMod / FugueMax scan described in the
//! crate docs, run over runs rather than single items.
//!
//! Within a run only the first scanned item can stop or steer the scan: every
//! later item's `origin_left` is the item just before it, which lies inside the
//! scanned region ("go on"), so the rest of a run is skipped in one step.

use std::cmp::Ordering;

use weft_primitives::PublicKey;

use crate::ItemId;
use crate::error::TextError;
use crate::run::Iid;
use crate::sequence::{Loc, RunSequence};

/// The slot where an insert with id `new_id` and these origins belongs.
///
/// Read-only: it fails (unknown origin, origins out of order) before anything
/// is changed. `authors` maps interned author indices to keys.
pub(crate) fn find_slot(
    seq: &RunSequence,
    authors: &[PublicKey],
    new_id: ItemId,
    left: Option<Iid>,
    right: Option<Iid>,
) -> Result<Loc, TextError> {
    let left_loc = match left {
        Some(id) => Some(locate(seq, authors, id)?),
        None => None,
    };
    let start = match left_loc {
        Some(loc) => seq.next_item(loc),
        None => seq.start(),
    };
    // Nothing between the origins (every local edit replayed elsewhere without
    // concurrency): the slot is right there.
    if seq.id_at(start) == right {
        return Ok(start);
    }
    let right_loc = match right {
        Some(id) => {
            let loc = locate(seq, authors, id)?;
            if let (Some(l_loc), Some(l_id)) = (left_loc, left)
                && loc <= l_loc
            {
                return Err(TextError::OriginsOutOfOrder {
                    left: item_id(authors, l_id)?,
                    right: item_id(authors, id)?,
                });
            }
            Some(loc)
        }
        None => None,
    };

    let mut cur = start;
    let mut dest = cur;
    let mut scanning = false;
    // Each pass moves `cur` to a later run (or to `right`), so the loop ends
    // within the number of runs between the origins.
    loop {
        if !scanning {
            dest = cur;
        }
        let Some(run) = seq.run(cur) else { break };
        let item = run.id_at(cur.off);
        if Some(item) == right {
            break;
        }
        let other_left = run.origin_left_at(cur.off);
        let by_left = if other_left == left {
            Ordering::Equal
        } else {
            let other_loc = match other_left {
                Some(id) => Some(locate(seq, authors, id)?),
                None => None,
            };
            // `None` (document start) sorts first, as it should.
            other_loc.cmp(&left_loc)
        };
        match by_left {
            Ordering::Less => break,
            Ordering::Equal => {
                let other_right = run.origin_right();
                let by_right = if other_right == right {
                    Ordering::Equal
                } else {
                    let other_loc = match other_right {
                        Some(id) => Some(locate(seq, authors, id)?),
                        None => None,
                    };
                    cmp_right_positions(other_loc, right_loc)
                };
                match by_right {
                    Ordering::Less => scanning = true,
                    Ordering::Equal => {
                        if new_id < item_id(authors, item)? {
                            break;
                        }
                        scanning = false;
                    }
                    Ordering::Greater => scanning = false,
                }
            }
            Ordering::Greater => {}
        }
        cur = match right {
            Some(r) if run.contains(r) && r.seq > item.seq => Loc { off: (r.seq - run.seq) as u32, ..cur },
            _ => seq.next_run(cur),
        };
    }
    Ok(dest)
}

/// Compare right origins by position, `None` (document end) last.
fn cmp_right_positions(a: Option<Loc>, b: Option<Loc>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn locate(seq: &RunSequence, authors: &[PublicKey], id: Iid) -> Result<Loc, TextError> {
    match seq.locate_id(id) {
        Some(loc) => Ok(loc),
        None => Err(TextError::UnknownId(item_id(authors, id)?)),
    }
}

/// The public id of an interned id.
pub(crate) fn item_id(authors: &[PublicKey], id: Iid) -> Result<ItemId, TextError> {
    match authors.get(id.author as usize) {
        Some(author) => Ok(ItemId { author: *author, seq: id.seq }),
        // Only reachable if the author table and the runs disagree; report the
        // seq with a blank key rather than panic.
        None => Err(TextError::UnknownId(ItemId { author: PublicKey::default(), seq: id.seq })),
    }
}
