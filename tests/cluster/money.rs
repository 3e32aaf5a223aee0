use futures::future::join_all;
use serde_json::json;

use crate::helpers::{Api, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_spread_over_replicas_stay_exact() {
    let cluster = Cluster::start(3).await;
    let replicas: Vec<Api> = (0..3).map(|i| Api::new(&cluster.replica_url(i))).collect();
    let user = replicas[0].known_user().await;
    let case = replicas[1].simple_case(1.0, 0.5).await;
    replicas[2].fund(&user, 20.0).await;

    let body = json!({ "caseId": case["id"] });
    let responses =
        join_all((0..50).map(|i| replicas[i % 3].post("/api/cases/open", Some(&user.token), body.clone()))).await;
    let ok = responses.iter().filter(|r| r.status == 200).count();
    let refused = responses.iter().filter(|r| r.status == 422).count();
    assert_eq!((ok, refused), (20, 30));
    assert_eq!(replicas[0].balance(&user).await, (0.0, 21));

    let payment = json!({ "paymentId": "cluster-race", "userId": user.id, "amount": 7.5, "status": "success" });
    let responses = join_all((0..10).map(|i| replicas[i % 3].payment(&payment))).await;
    assert!(responses.iter().all(|r| r.status == 200));
    assert_eq!(responses.iter().filter(|r| r.body["duplicate"] == false).count(), 1);
    assert_eq!(replicas[1].balance(&user).await, (7.5, 22));
    cluster.shutdown().await;
}
