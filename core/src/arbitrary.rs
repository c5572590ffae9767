//! proptest strategies for the protocol types that cannot derive them
//! (fixed arrays, bounded collections, the recursive quorum set).

use crate::address::{AccountId, NodeId};
use crate::codec::{BoundedBytes, BoundedVec};
use crate::crypto::{Hash256, NetworkId, PublicKey, Signature};
use crate::scp::{QuorumSet, Value};
use proptest::prelude::*;

/// Generated collections stay small: round-trips care about shape, not bulk.
const MAX_GEN_ITEMS: usize = 4;

impl Arbitrary for Hash256 {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<[u8; 32]>().prop_map(Hash256).boxed()
    }
}

impl Arbitrary for PublicKey {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<[u8; 32]>().prop_map(PublicKey).boxed()
    }
}

impl Arbitrary for Signature {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        (any::<[u8; 32]>(), any::<[u8; 32]>())
            .prop_map(|(a, b)| {
                let mut s = [0u8; 64];
                s[..32].copy_from_slice(&a);
                s[32..].copy_from_slice(&b);
                Signature(s)
            })
            .boxed()
    }
}

impl Arbitrary for AccountId {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<PublicKey>().prop_map(AccountId).boxed()
    }
}

impl Arbitrary for NodeId {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<PublicKey>().prop_map(NodeId).boxed()
    }
}

impl Arbitrary for NetworkId {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<Hash256>().prop_map(NetworkId).boxed()
    }
}

impl<T: Arbitrary + 'static, const N: usize> Arbitrary for BoundedVec<T, N> {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        proptest::collection::vec(any::<T>(), 0..=N.min(MAX_GEN_ITEMS))
            .prop_map(|v| BoundedVec::try_from_vec(v).expect("generated within the bound"))
            .boxed()
    }
}

impl<const N: usize> Arbitrary for BoundedBytes<N> {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        proptest::collection::vec(any::<u8>(), 0..=N.min(64))
            .prop_map(|v| BoundedBytes::try_from_vec(v).expect("generated within the bound"))
            .boxed()
    }
}

impl Arbitrary for Value {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<BoundedBytes<{ crate::scp::statement::MAX_VALUE_LEN }>>().prop_map(Value).boxed()
    }
}

impl Arbitrary for QuorumSet {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        let leaf = (any::<u32>(), proptest::collection::vec(any::<NodeId>(), 0..4)).prop_map(|(t, v)| QuorumSet {
            threshold: t,
            validators: BoundedVec::try_from_vec(v).expect("small"),
            inner_sets: BoundedVec::new(),
        });
        leaf.prop_recursive(3, 12, 3, |inner| {
            (any::<u32>(), proptest::collection::vec(any::<NodeId>(), 0..4), proptest::collection::vec(inner, 0..3))
                .prop_map(|(t, v, i)| QuorumSet {
                    threshold: t,
                    validators: BoundedVec::try_from_vec(v).expect("small"),
                    inner_sets: BoundedVec::try_from_vec(i).expect("small"),
                })
        })
        .boxed()
    }
}
