//! The operators' console across replicas: a console socket on one replica sees every replica's
//! sockets in its `online` snapshot and the payments credited on any replica; players on any
//! replica get none of it.

use serde_json::json;
use std::time::Duration;

use crate::helpers::{eventually, Api, Cluster, TestSocket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_on_one_replica_sees_the_whole_cluster() {
    let cluster = Cluster::start(3).await;
    let apis = [0, 1, 2].map(|i| Api::new(&cluster.replica_url(i)));
    let console = TestSocket::connect_namespace(&apis[0].base, "/admin", Some(json!({ "token": apis[0].admin.token })))
        .await
        .expect("an admin token connects to /admin");
    let player = apis[0].known_user().await;
    let mut players = Vec::new();
    for api in &apis {
        players.push(TestSocket::connect(&api.base, Some(&player.token)).await.unwrap());
    }
    let balance = format!("balance:updated:{}", player.id);
    for socket in &players {
        socket.expect(&balance).await;
    }

    // Each replica writes its counts to Redis every 2 s: the console's snapshot reaches 3 sockets,
    // one player, on three replicas.
    let snapshot = eventually(Duration::from_secs(10), "the cluster's counts in the snapshot", || async {
        let s = console.expect("online").await;
        let per_replica: Vec<u64> =
            s["replicas"].as_array().unwrap().iter().map(|r| r["sockets"].as_u64().unwrap()).collect();
        if s["sockets"] == 3 && s["users"] == 1 && per_replica == [1, 1, 1] {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .await;
    assert_eq!(snapshot["bus"], "up");
    assert_eq!(snapshot["clusterKnown"], true);

    // A payment credited on replica 3 reaches the console on replica 1 over the bus; the player's
    // sockets get their balance and nothing of the console's.
    let payment = json!({ "paymentId": "cluster-console-1", "userId": player.id, "amount": 3.5, "status": "success" });
    apis[2].payment(&payment).await.expect(200);
    let seen = console.expect("payment").await;
    assert_eq!((seen["paymentId"].as_str(), seen["amount"].as_f64()), (Some("cluster-console-1"), Some(3.5)));
    for socket in &players {
        socket.expect(&balance).await;
    }
    // The sentinel: a credit made after the payment, on the same replica, so it follows anything
    // the payment could have sent to the players on every replica.
    apis[2].fund(&player, 1.0).await;
    for socket in &players {
        socket.expect_none_before(&["payment", "online"], &balance).await;
    }
    for socket in players {
        socket.close().await;
    }
    console.close().await;
    cluster.shutdown().await;
}
