//! Reads and writes across all slots through a cluster client, redirects included.

use cluster_tests::server::data;
use cluster_tests::{Cluster, Result};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_keys_over_all_slots_are_read_back_by_a_fresh_client() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("rw", 5000);
    data::write(&mut cluster.client().await?, &keys).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;

    let topology = cluster.topology().await?;
    let mut total = 0;
    for master in topology.live_masters() {
        let size: usize = cluster_tests::server::node::command(master.addr.unwrap(), &["DBSIZE"]).await?;
        assert!(size > 1000, "master {:?} holds {size} of 5000 keys", master.addr);
        total += size;
    }
    assert_eq!(total, keys.len(), "every key is stored once, on its slot's master");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_to_the_wrong_node_is_redirected_to_the_slot_owner() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let any = topology.live_masters()[0].addr.unwrap();
    let slot: u16 = cluster_tests::server::node::command(any, &["CLUSTER", "KEYSLOT", "foo"]).await?;
    assert_eq!(slot, 12182, "the tutorial's key `foo` hashes to slot 12182");
    assert_eq!(data::slot_of("foo"), slot, "and the harness agrees with the server");
    let owner = topology.owner_of(slot).expect("slot 12182 is served").addr.unwrap();
    let other = topology
        .live_masters()
        .iter()
        .find_map(|m| m.addr.filter(|a| *a != owner))
        .unwrap();

    let err = cluster_tests::server::node::command::<()>(other, &["SET", "foo", "bar"])
        .await
        .expect_err("a node that does not own the slot refuses the write");
    let redirect = err.redis_error().and_then(|e| e.redirect_node());
    assert_eq!(
        redirect,
        Some((owner.to_string().as_str(), slot)),
        "{other} answers MOVED {slot} {owner}: {err}"
    );

    let _: () = cluster.client().await?.set("foo", "bar").await?;
    let got: String = cluster_tests::server::node::command(owner, &["GET", "foo"]).await?;
    assert_eq!(got, "bar", "the value lives on the slot owner");
    let got: String = cluster.client().await?.get("foo").await?;
    assert_eq!(got, "bar");
    Ok(())
}
