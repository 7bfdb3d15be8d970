//! The member set's rules and its join, change by change.

use weft_primitives::{Hlc, SigningKey};

use super::*;

fn key(i: u8) -> PublicKey {
    SigningKey::from_seed([i; 32]).public_key()
}

#[test]
fn a_change_round_trips_and_refuses_non_canonical_bytes() {
    let change = MembershipChange::Add { member: key(1), invitation: Hash::of(b"inv") };
    let bytes = change.encode();
    assert_eq!(MembershipChange::decode(&bytes), Ok(change));
    assert!(MembershipChange::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(MembershipChange::decode(&padded).is_err());
    assert!(MembershipChange::decode(&[9]).is_err(), "unknown tag");
}

#[test]
fn membership_event_has_the_reserved_kind_and_no_handler() {
    let change = MembershipChange::Leave { member: key(1) };
    let by_ref: &MembershipChange = &change;
    let event = Event::membership(by_ref);
    assert_eq!(event.kind, MEMBERSHIP_EVENT_KIND);
    assert!(is_reserved_event_kind(&event.kind));
    assert_eq!(event.handler, None);
    assert_eq!(Event::membership(change), event);
    assert!(!is_reserved_event_kind("Wrote"));
    assert!(!is_reserved_event_kind("weft"));
    assert!(is_reserved_event_kind("weft.anything"));
}

#[test]
fn leave_of_another_member_is_refused() {
    let set = MemberSet::new([key(1), key(2)]);
    let events = vec![Event::membership(MembershipChange::Leave { member: key(2) })];
    assert_eq!(
        set.check(&key(1), Hash::ZERO, Hlc::new(1, 0), &events),
        Err(MembershipError::LeaveOfOther { author: key(1), member: key(2) })
    );
}

#[test]
fn malformed_membership_event_is_refused() {
    let set = MemberSet::new([key(1)]);
    let events = vec![
        Event { kind: "Other".into(), data: vec![1], handler: None },
        Event { kind: MEMBERSHIP_EVENT_KIND.into(), data: vec![7, 7], handler: None },
    ];
    assert!(matches!(
        set.check(&key(1), Hash::ZERO, Hlc::new(1, 0), &events),
        Err(MembershipError::Malformed { index: 1, .. })
    ));
}

#[test]
fn non_member_author_is_refused() {
    let set = MemberSet::new([key(1)]);
    assert_eq!(set.check(&key(2), Hash::ZERO, Hlc::new(1, 0), &[]), Err(MembershipError::NotMember { author: key(2) }));
}

#[test]
fn concurrent_add_and_leave_resolve_by_stamp_not_by_arrival() {
    let add = (Hash::of(b"a"), Hlc::new(10, 0), vec![MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
    let leave = (Hash::of(b"l"), Hlc::new(11, 0), vec![MembershipChange::Leave { member: key(2) }]);
    let mut one = MemberSet::new([key(1), key(2)]);
    let mut two = one.clone();
    one.apply(add.0, add.1, &add.2);
    one.apply(leave.0, leave.1, &leave.2);
    two.apply(leave.0, leave.1, &leave.2);
    two.apply(add.0, add.1, &add.2);
    assert_eq!(one, two);
    assert!(!one.contains(&key(2)));
    assert_eq!(one.len(), 1);
}

#[test]
fn a_later_add_readmits_and_reports_flips() {
    let mut set = MemberSet::new([key(1)]);
    let flips = set.apply(
        Hash::of(b"a"),
        Hlc::new(1, 0),
        &[MembershipChange::Add { member: key(2), invitation: Hash::of(b"i") }],
    );
    assert_eq!(flips, vec![(key(2), false)]);
    assert_eq!(set.invitation(&key(2)), Some(Hash::of(b"i")));
    assert_eq!(set.admitted_by(&key(2)), Some(Hash::of(b"a")));
    let flips = set.apply(Hash::of(b"l"), Hlc::new(2, 0), &[MembershipChange::Leave { member: key(2) }]);
    assert_eq!(flips, vec![(key(2), true)]);
    assert_eq!(set.admitted_by(&key(2)), None);
    set.apply(Hash::of(b"b"), Hlc::new(3, 0), &[MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
    assert!(set.contains(&key(2)));
    assert_eq!(set.iter().count(), 2);
}

#[test]
fn invitation_use_is_the_earliest_add_whatever_the_order_and_revocation_wins() {
    let invitation = Hash::of(b"inv");
    let add = |i: u8| [MembershipChange::Add { member: key(i), invitation }];
    let (early, late) = (Hlc::new(1, 0), Hlc::new(2, 0));
    let (d1, d2) = (Hash::of(b"d1"), Hash::of(b"d2"));
    let mut one = MemberSet::new([key(1)]);
    assert_eq!(one.invitation_use(&invitation), InvitationUse::Unused);
    one.apply(d1, early, &add(2));
    one.apply(d2, late, &add(3));
    let mut other = MemberSet::new([key(1)]);
    other.apply(d2, late, &add(3));
    other.apply(d1, early, &add(2));
    assert_eq!(one.invitation_use(&invitation), InvitationUse::UsedBy(key(2)));
    assert_eq!(other, one, "one set whatever the order");
    let revoke = [MembershipChange::Revoke { invitation }];
    one.apply(Hash::of(b"d3"), Hlc::new(3, 0), &revoke);
    assert_eq!(one.invitation_use(&invitation), InvitationUse::Revoked);
    assert!(one.contains(&key(2)), "revoking admits nobody and removes nobody");
    assert_eq!(MembershipChange::decode(&revoke[0].encode()), Ok(revoke[0].clone()));
}

#[test]
fn join_is_the_set_of_the_union_of_histories_in_any_order() {
    let changes = [
        (Hash::of(b"1"), Hlc::new(1, 0), MembershipChange::Add { member: key(3), invitation: Hash::of(b"i") }),
        (Hash::of(b"2"), Hlc::new(2, 0), MembershipChange::Leave { member: key(2) }),
        (Hash::of(b"3"), Hlc::new(3, 0), MembershipChange::Leave { member: key(3) }),
        (Hash::of(b"4"), Hlc::new(4, 0), MembershipChange::Add { member: key(4), invitation: Hash::of(b"i") }),
        (Hash::of(b"5"), Hlc::new(5, 0), MembershipChange::Revoke { invitation: Hash::of(b"j") }),
    ];
    let initial = MemberSet::new([key(1), key(2)]);
    let build = |subset: &[usize]| {
        let mut set = initial.clone();
        for &i in subset {
            let (delta, hlc, change) = &changes[i];
            set.apply(*delta, *hlc, std::slice::from_ref(change));
        }
        set
    };
    let all = build(&[0, 1, 2, 3, 4]);
    // Every split of the changes into two overlapping histories.
    for mask in 0u32..(1 << 5) {
        let left: Vec<usize> = (0..5).filter(|i| mask & (1 << i) != 0).collect();
        let right: Vec<usize> = (0..5).filter(|i| mask & (1 << i) == 0 || *i == 2).collect();
        let (a, b) = (build(&left), build(&right));
        let mut ab = a.clone();
        ab.join(&b);
        let mut ba = b.clone();
        ba.join(&a);
        assert_eq!(ab, all, "mask {mask:05b}");
        assert_eq!(ba, all, "mask {mask:05b}");
        let mut twice = ab.clone();
        twice.join(&a);
        assert_eq!(twice, all, "idempotent");
    }
    assert_eq!(all.len(), 2);
    assert_eq!(all.invitation_use(&Hash::of(b"i")), InvitationUse::UsedBy(key(3)));
}

fn rotate(epoch: u64, members: &[u8]) -> MembershipChange {
    MembershipChange::Rotate { epoch, wrapped: members.iter().map(|i| (key(*i), vec![*i; 84])).collect() }
}

fn events(changes: &[MembershipChange]) -> Vec<Event> {
    changes.iter().map(Event::membership).collect()
}

/// Sorted key indices (keys are not in index order).
fn sorted(indices: &[u8]) -> Vec<u8> {
    let mut out = indices.to_vec();
    out.sort_by_key(|i| key(*i));
    out
}

#[test]
fn only_an_admin_removes_and_nobody_removes_the_creator() {
    let mut set = MemberSet::new([key(1)]);
    let add = |i: u8| MembershipChange::Add { member: key(i), invitation: Hash::of(&[i]) };
    set.apply(Hash::of(b"a"), Hlc::new(1, 0), &[add(2), add(3)]);
    let (d, t) = (Hash::of(b"r"), Hlc::new(2, 0));
    let remove = |i: u8| events(&[MembershipChange::Remove { member: key(i) }]);
    assert!(set.is_admin(&key(1)) && !set.is_admin(&key(2)));
    assert_eq!(set.check(&key(1), d, t, &remove(3)), Ok(vec![MembershipChange::Remove { member: key(3) }]));
    assert_eq!(set.check(&key(2), d, t, &remove(3)), Err(MembershipError::NotAdmin { author: key(2) }));
    assert_eq!(
        set.check(&key(1), d, t, &remove(1)),
        Err(MembershipError::Malformed { index: 0, reason: "a member removes itself with Leave".into() })
    );
    let mut two_creators = MemberSet::new([key(1), key(4)]);
    two_creators.apply(Hash::of(b"a"), Hlc::new(1, 0), &[add(2)]);
    assert_eq!(
        two_creators.check(&key(1), d, t, &remove(4)),
        Err(MembershipError::RemoveOfInitialMember { member: key(4) })
    );
    let flips = set.apply(d, t, &[MembershipChange::Remove { member: key(3) }]);
    assert_eq!(flips, vec![(key(3), true)]);
    assert!(!set.contains(&key(3)));
}

#[test]
fn a_rotation_names_the_next_epoch_and_exactly_the_members_after_the_delta_s_earlier_changes() {
    let mut set = MemberSet::new([key(1)]);
    let add = |i: u8| MembershipChange::Add { member: key(i), invitation: Hash::of(&[i]) };
    set.apply(Hash::of(b"a"), Hlc::new(1, 0), &[add(2), add(3)]);
    let (d, t) = (Hash::of(b"r"), Hlc::new(2, 0));
    let remove = MembershipChange::Remove { member: key(3) };
    let good = [remove.clone(), rotate(1, &sorted(&[1, 2]))];
    assert_eq!(set.check(&key(1), d, t, &events(&good)), Ok(good.to_vec()));
    let refused = |changes: &[MembershipChange]| {
        matches!(set.check(&key(1), d, t, &events(changes)), Err(MembershipError::Rotation { .. }))
    };
    assert!(refused(&[remove.clone(), rotate(2, &sorted(&[1, 2]))]), "skips an epoch");
    assert!(refused(&[remove.clone(), rotate(1, &sorted(&[1, 2, 3]))]), "wraps for the removed member");
    assert!(refused(&[rotate(1, &sorted(&[1, 2]))]), "leaves a member out");
    assert!(refused(&[remove.clone(), rotate(1, &sorted(&[1, 2])), rotate(2, &sorted(&[1, 2]))]), "twice");
    let mut unsorted = sorted(&[1, 2]);
    unsorted.reverse();
    assert!(refused(&[remove.clone(), rotate(1, &unsorted)]), "not in key order");
    let huge = MembershipChange::Rotate { epoch: 1, wrapped: vec![(key(1), vec![0; ROTATION_WRAP_BYTES_MAX + 1])] };
    assert!(refused(&[huge]));
    // Any member may rotate; a leaver cannot wrap for itself after leaving.
    let by_two = [rotate(1, &sorted(&[1, 2, 3]))];
    assert_eq!(set.check(&key(2), d, t, &events(&by_two)), Ok(by_two.to_vec()));
    let leave_then_rotate = [MembershipChange::Leave { member: key(2) }, rotate(1, &sorted(&[1, 3]))];
    assert!(matches!(set.check(&key(2), d, t, &events(&leave_then_rotate)), Err(MembershipError::Rotation { .. })));

    set.apply(d, t, &good);
    let epoch = KeyEpoch { number: 1, rotation: d };
    assert_eq!(set.current_epoch(), epoch);
    assert_eq!(set.wrapped_key(&epoch, &key(2)), Some(&[2u8; 84][..]));
    assert_eq!(set.wrapped_key(&epoch, &key(3)), None, "the removed member gets no key");
    assert!(!set.rotation_needed());
}

#[test]
fn a_departure_needs_a_rotation_until_one_covers_it() {
    let mut set = MemberSet::new([key(1)]);
    set.apply(Hash::of(b"a"), Hlc::new(1, 0), &[MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
    assert!(!set.rotation_needed());
    set.apply(Hash::of(b"l"), Hlc::new(2, 0), &[MembershipChange::Leave { member: key(2) }]);
    assert!(set.rotation_needed(), "the leaver holds the first key");
    set.apply(Hash::of(b"r"), Hlc::new(3, 0), &[rotate(1, &[1])]);
    assert!(!set.rotation_needed());
    set.apply(Hash::of(b"b"), Hlc::new(4, 0), &[MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
    assert!(!set.rotation_needed(), "a member again: nothing to hide from it");
}

#[test]
fn concurrent_removals_each_rotating_leave_a_point_that_needs_one_more_rotation() {
    let mut base = MemberSet::new([key(1), key(5)]);
    let add = |i: u8| MembershipChange::Add { member: key(i), invitation: Hash::of(&[i]) };
    base.apply(Hash::of(b"a"), Hlc::new(1, 0), &[add(2), add(3)]);
    // Admin 1 removes 2 while admin 5 removes 3, each wrapping for the rest.
    let (d1, d2) = (Hash::of(b"r1"), Hlc::new(2, 0));
    let one = [MembershipChange::Remove { member: key(2) }, rotate(1, &sorted(&[1, 3, 5]))];
    let (e1, e2) = (Hash::of(b"r2"), Hlc::new(2, 1));
    let two = [MembershipChange::Remove { member: key(3) }, rotate(1, &sorted(&[1, 2, 5]))];
    let mut left = base.clone();
    assert!(left.check(&key(1), d1, d2, &events(&one)).is_ok());
    left.apply(d1, d2, &one);
    let mut right = base.clone();
    assert!(right.check(&key(5), e1, e2, &events(&two)).is_ok());
    right.apply(e1, e2, &two);
    assert!(!left.rotation_needed() && !right.rotation_needed());
    let mut joined = left.clone();
    joined.join(&right);
    let mut other = right.clone();
    other.join(&left);
    assert_eq!(joined, other);
    assert_eq!(joined.current_epoch(), KeyEpoch { number: 1, rotation: d1.max(e1) });
    assert!(joined.rotation_needed(), "the winning key was wrapped for a member the other side removed");
    let again = [rotate(2, &sorted(&[1, 5]))];
    assert!(joined.check(&key(1), Hash::of(b"r3"), Hlc::new(3, 0), &events(&again)).is_ok());
    joined.apply(Hash::of(b"r3"), Hlc::new(3, 0), &again);
    assert!(!joined.rotation_needed());
    assert_eq!(joined.iter().count(), 2);
}
