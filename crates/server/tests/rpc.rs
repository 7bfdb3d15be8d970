//! JSON-RPC 2.0 over real HTTP against a real node: exact shapes, id
//! echo, notifications, and every error code of the spec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Api, NOWHERE};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn kv_context(api: &Api) -> String {
    let app = api.install(weft_apps::KV_STORE).await;
    api.create_context(&app).await
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error response: {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_and_query_return_the_documented_shapes_and_echo_ids() {
    let api = Api::start(1).await;
    let context = kv_context(&api).await;
    let response =
        api.rpc("execute", json!({ "context": context, "method": "set", "args": { "key": "a", "value": "1" } })).await;
    assert_eq!(response["jsonrpc"], "2.0");
    assert_eq!(response["id"], 1);
    let result = &response["result"];
    assert_eq!(result["output"], Value::Null, "set returns nothing: {response}");
    assert_eq!(result["delta"].as_str().unwrap().len(), 64);
    let info = api.get(&format!("/admin/contexts/{context}")).await.1;
    assert_eq!(result["root_hash"], info["root_hash"], "the reply comes once the delta is applied");
    assert_eq!(info["heads"], json!([result["delta"]]));

    assert_eq!(api.query(&context, "get", json!({ "key": "a" })).await, json!("1"));
    assert_eq!(api.query(&context, "entries", json!({})).await, json!({ "a": "1" }));
    // `args` defaults to {}.
    let response = api.rpc("query", json!({ "context": context, "method": "len" })).await;
    assert_eq!(response["result"], json!({ "output": 1 }));
    // A mutation that returns a value: remove.
    let result = api.execute(&context, "remove", json!({ "key": "a" })).await;
    assert_eq!(result["output"], json!("1"));

    for id in [json!("abc"), json!(42), json!(-1.5), Value::Null] {
        let request =
            json!({ "jsonrpc": "2.0", "id": id, "method": "query", "params": { "context": context, "method": "len" } });
        let (status, response) = api.post("/jsonrpc", request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(response["id"], id, "{response}");
        assert_eq!(response["result"]["output"], json!(0));
        assert!(response.get("error").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_run_and_get_no_response_body() {
    let api = Api::start(1).await;
    let context = kv_context(&api).await;
    let request = json!({ "jsonrpc": "2.0", "method": "execute", "params": { "context": context, "method": "set", "args": { "key": "n", "value": "x" } } });
    let response = api.request(reqwest::Method::POST, "/jsonrpc").json(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(api.query(&context, "get", json!({ "key": "n" })).await, json!("x"), "the notification ran");
    // A failing notification is silent too.
    let request = json!({ "jsonrpc": "2.0", "method": "no_such_method" });
    let (status, body) = api.post("/jsonrpc", request).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_have_the_standard_codes() {
    let api = Api::start(1).await;
    let (status, response) = api.post_raw("/jsonrpc", "{\"jsonrpc\": \"2.0\", ").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((error_code(&response), &response["id"]), (-32700, &Value::Null));
    assert_eq!(response["jsonrpc"], "2.0");

    let batch = json!([{ "jsonrpc": "2.0", "id": 1, "method": "sync_status" }]);
    let (_, response) = api.post("/jsonrpc", batch).await;
    assert_eq!((error_code(&response), &response["id"]), (-32600, &Value::Null));
    let (_, response) = api.post("/jsonrpc", json!({ "jsonrpc": "1.0", "id": 9, "method": "query" })).await;
    assert_eq!((error_code(&response), &response["id"]), (-32600, &json!(9)));
    let (_, response) = api.post("/jsonrpc", json!({ "jsonrpc": "2.0", "id": [1], "method": "query" })).await;
    assert_eq!((error_code(&response), &response["id"]), (-32600, &Value::Null));
    let (_, response) = api.post("/jsonrpc", json!({ "jsonrpc": "2.0", "id": 1 })).await;
    assert_eq!(error_code(&response), -32600);

    let response = api.rpc("frobnicate", json!({})).await;
    assert_eq!(error_code(&response), -32601);

    for params in [
        json!({ "method": "get" }),
        json!({ "context": "123", "method": "get" }),
        json!({ "context": NOWHERE }),
        json!({ "context": NOWHERE, "method": "get", "extra": true }),
        json!(["positional"]),
    ] {
        let response = api.rpc("query", params.clone()).await;
        assert_eq!(error_code(&response), -32602, "{params}: {response}");
    }
    let response = api.rpc("query", json!({ "context": "123", "method": "get" })).await;
    assert!(response["error"]["message"].as_str().unwrap().contains("`context`"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_errors_have_weft_codes() {
    let api = Api::start(1).await;
    let context = kv_context(&api).await;

    let response =
        api.rpc("execute", json!({ "context": context, "method": "remove", "args": { "key": "missing" } })).await;
    assert_eq!(error_code(&response), -32000, "{response}");
    assert_eq!(response["error"]["data"], json!({ "NotFound": { "key": "missing" } }));

    let response = api.rpc("query", json!({ "context": NOWHERE, "method": "get" })).await;
    assert_eq!(error_code(&response), -32001, "{response}");

    let response = api.rpc("query", json!({ "context": context, "method": "no_such" })).await;
    assert_eq!(error_code(&response), -32002, "{response}");
    // A view through execute, a mutation through query, init through either.
    let response = api.rpc("execute", json!({ "context": context, "method": "get", "args": { "key": "a" } })).await;
    assert_eq!(error_code(&response), -32002, "{response}");
    assert!(response["error"]["message"].as_str().unwrap().contains("query"), "{response}");
    let response =
        api.rpc("query", json!({ "context": context, "method": "set", "args": { "key": "a", "value": "b" } })).await;
    assert_eq!(error_code(&response), -32002, "{response}");
    assert_eq!(api.query(&context, "len", json!({})).await, json!(0), "the refused mutation did not run");
    let response = api.rpc("execute", json!({ "context": context, "method": "init" })).await;
    assert_eq!(error_code(&response), -32002, "{response}");

    // Bad arguments make the guest fail: an internal error carrying the node's code.
    let response = api.rpc("execute", json!({ "context": context, "method": "set", "args": { "key": "a" } })).await;
    assert_eq!(error_code(&response), -32603, "{response}");
    assert_eq!(response["error"]["data"]["code"], "runtime_error");

    api.node.shutdown().await.unwrap();
    let response = api.rpc("query", json!({ "context": context, "method": "len" })).await;
    assert_eq!(error_code(&response), -32003, "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_status_lists_every_context_or_one() {
    let api = Api::start(1).await;
    let first = kv_context(&api).await;
    let app = api.install(weft_apps::COUNTER_HANDLERS).await;
    let second = api.create_context(&app).await;
    let all = api.rpc("sync_status", json!({})).await["result"].clone();
    let mut ids: Vec<&str> = all.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let (_, without_params) = api.post("/jsonrpc", json!({ "jsonrpc": "2.0", "id": 3, "method": "sync_status" })).await;
    assert_eq!(without_params["result"].as_array().unwrap().len(), 2);
    let one = api.rpc("sync_status", json!({ "context": second })).await;
    assert_eq!(one["result"].as_array().unwrap().len(), 1);
    assert_eq!(one["result"][0]["id"], json!(second));
    assert!(one["result"][0]["stats"]["syncs_started"].is_u64());
    let response = api.rpc("sync_status", json!({ "context": NOWHERE })).await;
    assert_eq!(error_code(&response), -32001);

    // The counter app through the API: a handler-emitting mutation and views.
    api.execute(&second, "trigger", json!({ "note": "hi" })).await;
    assert_eq!(api.query(&second, "triggers", json!({})).await, json!(1));
    let response =
        api.rpc("execute", json!({ "context": second, "method": "on_event", "args": { "note": "x" } })).await;
    assert_eq!(error_code(&response), -32002, "handlers are not callable: {response}");
}
